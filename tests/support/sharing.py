"""A world of departments, systems, people and grants for the sharing, API and audit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from catalog.metadata import MetadataStore
from catalog.sharing import (
    add_department,
    add_owner_departments,
    add_person,
    add_system,
)
from schemas.contract import load_contract

POLICE = "11100000000013338W"  # owns population


MARKET = "11100000000013127D"  # owns legal_entity (无条件共享)


SOCIAL = "111000000000130127"


HOUSING = "12100000000013020Y"


NOW = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
"""Friday 18 September 2026, 10:00 in China: ten working days later is 9 October, past the
National Day holidays and counting Sunday 20 September, a weekend worked."""


def log_entries(store: MetadataStore) -> list[dict[str, Any]]:
    from catalog.audit import AccessLog

    return list(AccessLog(store).entries())


def build_world(store: MetadataStore) -> dict[str, str]:
    """Register the departments, systems and people; returns the systems' credentials."""
    add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor=None)
    contracts = [load_contract(n) for n in ("population", "legal_entity", "certificate")]
    add_owner_departments(store, contracts, actor="wang.hub")
    add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
    add_department(store, HOUSING, "住房公积金管理中心", actor="wang.hub")
    add_person(store, "li.police", department=POLICE, roles=["steward"], actor="wang.hub")
    add_person(store, "zhao.social", department=SOCIAL, roles=["steward"], actor="wang.hub")
    add_person(store, "zhang.clerk", department=SOCIAL, actor="wang.hub")
    add_person(store, "sun.housing", department=HOUSING, actor="wang.hub")
    credentials = {}
    for system, name, department in (
        ("shebao-core", "社会保险核心业务系统", SOCIAL),
        ("gjj-core", "住房公积金业务系统", HOUSING),
    ):
        credentials[system] = add_system(store, system, name, department, actor="wang.hub")[1]
    return credentials


def prepare_home() -> None:
    """The hub home and a keyring (the access log's keys live in it)."""
    from hub.settings import get_settings
    from masking.keys import Keyring

    settings = get_settings()
    settings.ensure_home()
    if not settings.masking.keyring_path.exists():
        Keyring.init(settings.masking.keyring_path)
