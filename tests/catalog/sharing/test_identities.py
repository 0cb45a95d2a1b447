"""The registry: departments by credit code, systems and their credentials, people and roles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.metadata import DepartmentKind, MetadataStore, System
from catalog.sharing import (
    WHO,
    RegistryError,
    SharingError,
    add_department,
    add_owner_departments,
    add_person,
    add_system,
    authenticate_system,
    check_department_code,
    list_departments,
    list_people,
    remove_person,
    require_steward,
    revoke_system,
    rotate_credential,
    set_roles,
)
from schemas.contract import load_contract
from tests.support.sharing import HOUSING, MARKET, POLICE, SOCIAL, build_world, log_entries, prepare_home


@pytest.fixture
def store(hub_home: Path, tmp_path: Path) -> Iterator[MetadataStore]:
    prepare_home()
    store = MetadataStore(f"sqlite:///{tmp_path / 'registry.db'}")
    yield store
    store.dispose()


@pytest.fixture
def credentials(store: MetadataStore) -> dict[str, str]:
    return build_world(store)


# -- departments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("", "a department code is required"),
        ("1110000000001333", "its 18 code characters is wrong"),
        ("11100000000013338X", "its check character is wrong"),
        ("11100000000013339W", "its check character is wrong"),  # the organisation code's check too
        ("91990000600037341L", "wrong"),
    ],
)
def test_a_department_code_must_be_a_valid_credit_code(code: str, why: str) -> None:
    with pytest.raises(RegistryError, match=why) as caught:
        check_department_code(code)
    assert caught.value.exit_code == 2


def test_codes_are_upper_cased_and_the_kind_comes_from_the_code() -> None:
    assert check_department_code(" 11100000000013338w ") == POLICE
    assert DepartmentKind.from_code(POLICE) is DepartmentKind.AGENCY
    assert DepartmentKind.from_code(HOUSING) is DepartmentKind.INSTITUTION
    assert DepartmentKind.from_code("91110000600037341L") is DepartmentKind.ENTERPRISE
    assert DepartmentKind.from_code("51100000500000000X") is DepartmentKind.OTHER


def test_owner_departments_come_from_the_contracts_in_one_step(store: MetadataStore) -> None:
    contracts = [load_contract(n) for n in ("population", "legal_entity", "certificate")]
    first = add_owner_departments(store, contracts, actor=None)
    assert [(code, added) for code, _, _, added in first] == [
        (MARKET, True),
        (POLICE, True),
        ("11100000MB0143028R", True),
    ]
    assert dict((code, datasets) for code, _, datasets, _ in first)[POLICE] == ["population"]
    again = add_owner_departments(store, contracts, actor=None)
    assert [added for *_, added in again] == [False, False, False]
    assert {d.code: d.kind for d in list_departments(store)}[POLICE] is DepartmentKind.AGENCY
    with pytest.raises(RegistryError, match=f"department {POLICE} is already registered as 公安厅"):
        add_department(store, POLICE, "公安厅", actor=None)


# -- who may change the registry ------------------------------------------------------------


def test_until_the_first_steward_the_hub_is_being_set_up_then_stewards_decide(store: MetadataStore) -> None:
    add_department(store, SOCIAL, "人力资源和社会保障厅", actor=None)  # nobody to ask yet
    add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor=None)
    with pytest.raises(SharingError, match="who is acting"):
        add_department(store, HOUSING, "住房公积金管理中心", actor=None)
    add_person(store, "zhao.social", department=SOCIAL, roles=["steward"], actor="wang.hub")
    with pytest.raises(
        SharingError, match=r"zhao.social is a steward of 人力资源和社会保障厅 .* not a hub-wide steward"
    ):
        add_department(store, HOUSING, "住房公积金管理中心", actor="zhao.social")
    add_department(store, HOUSING, "住房公积金管理中心", actor="wang.hub")
    # a department's steward registers that department's systems, not another's
    add_system(store, "shebao-core", "社保核心系统", SOCIAL, actor="zhao.social")
    with pytest.raises(SharingError, match="not of 住房公积金管理中心"):
        add_system(store, "gjj-core", "公积金系统", HOUSING, actor="zhao.social")
    denied = [e for e in log_entries(store) if e["outcome"] == "denied"]
    assert [(e["action"], e["actor"]) for e in denied] == [
        ("department.add", None),
        ("department.add", "zhao.social"),
        ("system.add", "zhao.social"),
    ]
    assert all(e["reason"] for e in denied)


def test_people_and_their_roles(store: MetadataStore, credentials: dict[str, str]) -> None:
    people = {person.name: labels for person, labels in list_people(store)}
    assert people["wang.hub"] == ["steward of the whole hub"]
    assert people["li.police"] == ["steward of 公安厅 (11100000000013338W)"]
    assert people["zhang.clerk"] == []
    with pytest.raises(RegistryError, match="a steward needs a department, or --hub-wide"):
        add_person(store, "qian", roles=["steward"], actor="wang.hub")
    with pytest.raises(RegistryError, match="--hub-wide applies to the steward role"):
        add_person(store, "qian", roles=["auditor"], hub_wide=True, actor="wang.hub")
    with pytest.raises(RegistryError, match="without spaces"):
        add_person(store, "qian ming", actor="wang.hub")
    with pytest.raises(RegistryError, match="already registered"):
        add_person(store, "zhang.clerk", department=SOCIAL, actor="wang.hub")
    with pytest.raises(SharingError, match="no department 'X' is registered"):
        add_person(store, "qian", department="X", actor="wang.hub")
    add_person(store, "qian.audit", roles=["auditor"], actor="wang.hub")
    assert set_roles(store, "zhang.clerk", ["steward", "auditor"], actor="wang.hub") == [
        "steward of 人力资源和社会保障厅 (111000000000130127)",
        "auditor",
    ]
    assert require_steward(store, "zhang.clerk", SOCIAL) == "zhang.clerk"
    with pytest.raises(RegistryError, match=r"wang.hub is the last hub-wide steward"):
        set_roles(store, "wang.hub", [], actor="wang.hub")
    with pytest.raises(RegistryError, match="last hub-wide steward"):
        remove_person(store, "wang.hub", actor="wang.hub")
    remove_person(store, "li.police", actor="wang.hub")
    assert "li.police" not in {p.name for p, _ in list_people(store)}
    assert "li.police" in {p.name for p, _ in list_people(store, include_removed=True)}
    with pytest.raises(SharingError, match=r"person 'li.police' was removed on"):
        require_steward(store, "li.police", POLICE)


def test_require_steward_names_why_not(store: MetadataStore, credentials: dict[str, str]) -> None:
    assert require_steward(store, "li.police", POLICE) == "li.police"
    assert require_steward(store, " li.police ") == "li.police"
    assert require_steward(store, "wang.hub", SOCIAL) == "wang.hub"
    for name, department, why in (
        (None, None, WHO),
        ("  ", POLICE, WHO),
        ("ghost", POLICE, "no person 'ghost' is registered"),
        ("zhang.clerk", None, "zhang.clerk is not a data steward"),
        (
            "zhao.social",
            POLICE,
            "zhao.social is a steward of 人力资源和社会保障厅 (111000000000130127), not of 公安厅",
        ),
    ):
        with pytest.raises(SharingError) as caught:
            require_steward(store, name, department)
        assert why in str(caught.value) and caught.value.exit_code == 5
    before = len(log_entries(store))
    with pytest.raises(SharingError):
        require_steward(store, "zhang.clerk", POLICE, action="catalog.publish", dataset="population")
    assert len(log_entries(store)) == before + 1
    entry = log_entries(store)[-1]
    assert (entry["action"], entry["outcome"], entry["actor"], entry["dataset"], entry["department"]) == (
        "catalog.publish",
        "denied",
        "zhang.clerk",
        "population",
        POLICE,
    )


# -- systems and credentials ----------------------------------------------------------------


def test_a_credential_is_shown_once_and_only_its_hash_is_kept(
    store: MetadataStore, credentials: dict[str, str], tmp_path: Path
) -> None:
    credential = credentials["shebao-core"]
    assert credential.startswith("hub_sys_") and len(credential) == 8 + 12 + 1 + 43
    with store.session() as session:
        row = session.scalars(select(System).where(System.id == "shebao-core")).one()
        assert row.credential_hash == hashlib.sha256(credential.encode()).hexdigest()
        assert credential.startswith(f"hub_sys_{row.credential_id}_")
    secret = credential[21:]
    assert secret.encode() not in (tmp_path / "registry.db").read_bytes()
    assert all(credential not in str(entry) for entry in log_entries(store))

    ref = authenticate_system(store, credential)
    assert (ref.id, ref.name, ref.department) == ("shebao-core", "社会保险核心业务系统", SOCIAL)
    assert authenticate_system(store, credentials["gjj-core"]).department == HOUSING


def _forged(credential: str) -> list[str]:
    head, last = credential[:-1], credential[-1]
    other = "A" if last != "A" else "B"
    return [
        head + other,  # right id, wrong secret
        "hub_sys_000000000000_" + credential[21:],  # unknown id
        "hub_sys_short",
        "",
        credential + "x",
    ]


def test_a_wrong_credential_is_refused_without_echoing_it(
    store: MetadataStore, credentials: dict[str, str]
) -> None:
    before = len(log_entries(store))
    for forged in _forged(credentials["shebao-core"]):
        with pytest.raises(SharingError) as caught:
            authenticate_system(store, forged)
        message = str(caught.value)
        assert caught.value.exit_code == 5
        assert "not valid" in message or "not a hub system credential" in message
        assert (forged[21:] or "hub_sys_short") not in message
    entries = log_entries(store)[before:]
    assert [(e["action"], e["outcome"]) for e in entries] == [("system.authenticate", "denied")] * 5
    assert entries[0]["system"] is None  # nothing is attributed to a credential that did not match
    assert all(credentials["shebao-core"][21:] not in str(e) for e in entries)


def test_rotation_replaces_the_credential_and_revocation_ends_it(
    store: MetadataStore, credentials: dict[str, str]
) -> None:
    old = credentials["shebao-core"]
    with pytest.raises(SharingError, match="not of 人力资源和社会保障厅"):
        rotate_credential(store, "shebao-core", actor="li.police")
    new = rotate_credential(store, "shebao-core", actor="zhao.social")
    assert new != old and authenticate_system(store, new).id == "shebao-core"
    with pytest.raises(SharingError, match="is not valid"):
        authenticate_system(store, old)
    revoke_system(store, "shebao-core", "系统下线", actor="zhao.social")
    with pytest.raises(SharingError, match=r"system shebao-core was revoked on .*: 系统下线"):
        authenticate_system(store, new)
    with pytest.raises(SharingError, match="was revoked"):
        rotate_credential(store, "shebao-core", actor="zhao.social")
    with pytest.raises(SharingError, match="no system 'tax-core' is registered"):
        rotate_credential(store, "tax-core", actor="wang.hub")


@pytest.mark.parametrize("system_id", ["A", "Shebao", "shebao core", "-x", "x" * 70])
def test_system_ids_are_short_slugs(
    store: MetadataStore, credentials: dict[str, str], system_id: str
) -> None:
    with pytest.raises(RegistryError, match="lower-case letters, digits or '-'"):
        add_system(store, system_id, "x", SOCIAL, actor="wang.hub")


def test_a_system_id_is_taken_once(store: MetadataStore, credentials: dict[str, str]) -> None:
    with pytest.raises(RegistryError, match="system shebao-core is already registered"):
        add_system(store, "shebao-core", "x", SOCIAL, actor="wang.hub")
    with pytest.raises(SharingError, match="no department 'X1' is registered"):
        add_system(store, "tax-core", "税收征管系统", "X1", actor="wang.hub")
