"""The sharing workflow on SQLite: requests, decisions, deadlines, grants and refusals.

``world`` registers what a province starts with: the three owner departments (from the
contracts), a social-security and a housing-fund department with one system each, a
hub-wide steward, a steward of the police (population's owner) and of social security,
and two clerks. Everything is checked against the access log as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.metadata import MetadataStore, RequestStatus
from catalog.settings import SharingSettings
from catalog.sharing import (
    SharingError,
    WorkCalendar,
    active_grant,
    answer_material,
    approve_request,
    ask_material,
    deny_request,
    get_request,
    grants_including,
    list_grants,
    list_requests,
    require_grant,
    revoke_grant,
    revoke_system,
    submit_request,
)
from schemas.contract import load_contract
from tests.support.sharing import NOW, SOCIAL, build_world, log_entries, prepare_home

POPULATION_COLUMNS = ("person_token", "name", "birth_year")


@dataclass
class World:
    store: MetadataStore
    credentials: dict[str, str]
    settings: SharingSettings
    calendar: WorkCalendar

    def request(self, dataset: str = "population", **options: Any) -> Any:
        options.setdefault("system", "shebao-core")
        options.setdefault("purpose", "养老保险待遇资格认证")
        options.setdefault("columns", list(POPULATION_COLUMNS) if dataset == "population" else None)
        options.setdefault("actor", "zhang.clerk")
        options.setdefault("now", NOW)
        return submit_request(self.store, dataset, settings=self.settings, calendar=self.calendar, **options)


@pytest.fixture
def world(hub_home: Path, tmp_path: Path) -> Iterator[World]:
    prepare_home()
    store = MetadataStore(f"sqlite:///{tmp_path / 'sharing.db'}")
    try:
        yield World(store, build_world(store), SharingSettings(), WorkCalendar.load())
    finally:
        store.dispose()


def refusal(call: Any, *needles: str) -> str:
    with pytest.raises(SharingError) as caught:
        call()
    message = str(caught.value)
    assert caught.value.exit_code == 5
    for needle in needles:
        assert needle in message, message
    return message


# -- unconditional and conditional ----------------------------------------------------------


def test_an_unconditional_dataset_is_granted_at_once(world: World) -> None:
    ref, grant = world.request("legal_entity", purpose="参保单位登记信息核验")
    assert ref.status is RequestStatus.APPROVED and ref.level == "unconditional"
    assert ref.deadline == date(2026, 9, 20)  # one working day: the Sunday worked
    assert grant is not None and ref.grant_id == grant.id
    terms = load_contract("legal_entity")
    shared = [f.published_name for f in terms.fields if f.name != "legal_rep_name"]
    assert list(grant.columns) == shared  # the name of the representative is null at this level
    assert (grant.system, grant.department, grant.dataset, grant.level) == (
        "shebao-core",
        SOCIAL,
        "legal_entity",
        "unconditional",
    )
    assert grant.expires_at == NOW + timedelta(days=365) and grant.request_id == ref.id
    assert grant.granted_by is None
    assert active_grant(world.store, "shebao-core", "legal_entity", now=NOW) == grant
    (entry,) = [e for e in log_entries(world.store) if e["action"] == "grant"]
    assert (entry["outcome"], entry["actor"], entry["system"], entry["dataset"]) == (
        "allowed",
        "zhang.clerk",
        "shebao-core",
        "legal_entity",
    )


def test_a_conditional_request_waits_for_a_steward_of_the_owner(world: World) -> None:
    ref, grant = world.request(days=180)
    assert grant is None and ref.status is RequestStatus.PENDING and ref.level == "conditional"
    assert ref.deadline == date(2026, 10, 9)
    assert ref.columns == POPULATION_COLUMNS and ref.requested_by == "zhang.clerk"
    assert active_grant(world.store, "shebao-core", "population", now=NOW) is None

    refusal(
        lambda: approve_request(world.store, ref.id, actor="zhang.clerk"), "zhang.clerk is not a data steward"
    )
    refusal(
        lambda: approve_request(world.store, ref.id, actor="zhao.social"),
        "zhao.social is a steward of 人力资源和社会保障厅 (111000000000130127), not of 公安厅 (11100000000013338W)",
    )
    refusal(
        lambda: approve_request(world.store, ref.id, actor=None),
        "who is acting? pass --as NAME or set HUB_USER",
    )
    refusal(
        lambda: approve_request(world.store, ref.id, actor="li.police", columns=["person_token", "mobile"]),
        "approve a subset of the columns asked for",
        "mobile given",
    )
    refusal(
        lambda: approve_request(world.store, ref.id, actor="li.police", days=365),
        "asked for 180 days; approve 1 to 180, not 365",
    )
    assert get_request(world.store, ref.id).status is RequestStatus.PENDING

    later = NOW + timedelta(days=3)
    grant = approve_request(
        world.store, ref.id, actor="li.police", columns=["person_token", "birth_year"], days=90, now=later
    )
    assert grant.columns == ("person_token", "birth_year") and grant.level == "conditional"
    assert grant.purpose == "养老保险待遇资格认证" and grant.granted_by == "li.police"
    assert grant.expires_at == later + timedelta(days=90) and grant.request_id == ref.id
    decided = get_request(world.store, ref.id)
    assert decided.status is RequestStatus.APPROVED and decided.decided_by == "li.police"
    assert decided.grant_id == grant.id and not decided.answered_late()
    assert active_grant(world.store, "shebao-core", "population", now=later) == grant
    assert grants_including(world.store, "population", ["birth_year", "mobile"], now=later) == [grant]
    assert grants_including(world.store, "population", ["name"], now=later) == []

    refusal(
        lambda: approve_request(world.store, ref.id, actor="wang.hub"),
        f"request {ref.id} was already approved by li.police",
    )
    denials = [e for e in log_entries(world.store) if e["action"] == "approve" and e["outcome"] == "denied"]
    assert [e["actor"] for e in denials] == [
        "zhang.clerk",
        "zhao.social",
        None,
        "li.police",
        "li.police",
        "wang.hub",
    ]
    assert all(e["dataset"] == "population" and e["reason"] for e in denials)
    (approved,) = [
        e for e in log_entries(world.store) if e["action"] == "approve" and e["outcome"] == "allowed"
    ]
    assert approved["actor"] == "li.police" and '"grant":' in approved["detail"]
    assert approved["columns"] == '["person_token","birth_year"]'


def test_a_hub_wide_steward_may_answer_for_any_owner_and_a_denial_needs_a_reason(world: World) -> None:
    ref, _ = world.request()
    refusal(lambda: deny_request(world.store, ref.id, actor="wang.hub", reason="  "), "needs a reason")
    denied = deny_request(world.store, ref.id, actor="wang.hub", reason="用途超出共享条件", now=NOW)
    assert denied.status is RequestStatus.DENIED and denied.reason == "用途超出共享条件"
    refusal(lambda: approve_request(world.store, ref.id, actor="li.police"), "was already denied by wang.hub")
    entry = [e for e in log_entries(world.store) if e["action"] == "deny"][-1]
    assert (entry["outcome"], entry["actor"], entry["reason"]) == ("denied", "wang.hub", "用途超出共享条件")


def test_a_dataset_not_shared_is_refused_with_its_legal_basis(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import schemas.contract as contracts

    folder = tmp_path / "schemas"
    folder.mkdir()
    for path in contracts.CONTRACT_DIR.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    sealed = yaml.safe_load((folder / "population.yaml").read_text(encoding="utf-8"))
    sealed.update(name="sealed_register", share_attribute="不予共享", share_condition=None)
    sealed["legal_basis"] = "《中华人民共和国反间谍法》第X条（示例）"
    (folder / "sealed_register.yaml").write_text(yaml.safe_dump(sealed, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(contracts, "CONTRACT_DIR", folder)
    contracts.load_contract.cache_clear()
    try:
        message = refusal(
            lambda: world.request("sealed_register", columns=None),
            "dataset sealed_register is not shared (不予共享)",
            "legal basis: 《中华人民共和国反间谍法》第X条（示例）",
        )
    finally:
        contracts.load_contract.cache_clear()
    (kept,) = list_requests(world.store, status=["refused"])
    assert kept.dataset == "sealed_register" and kept.reason and kept.reason in message


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"dataset": "people"}, ["no dataset 'people'", "known: certificate, legal_entity, population"]),
        (
            {"columns": ["person_token", "id_number", "shoe_size"]},
            [
                "has no column 'id_number', 'shoe_size' shared at the conditional level",
                "'id_number' is published as 'person_token'",
                "allowed: person_token, name, gender",
            ],
        ),
        ({"columns": [" "]}, ["no columns named"]),
        ({"purpose": "   "}, ["the purpose is empty"]),
        ({"days": 0}, ["a grant must last at least one day, not 0"]),
        ({"system": "tax-core"}, ["no system 'tax-core' is registered (known: gjj-core, shebao-core)"]),
        (
            {"actor": "sun.housing"},
            ["sun.housing (of 住房公积金管理中心 (12100000000013020Y)) cannot act for 人力"],
        ),
        ({"actor": None}, ["who is acting?"]),
        ({"actor": "nobody"}, ["no person 'nobody' is registered"]),
    ],
)
def test_bad_requests_are_refused_kept_and_recorded(
    world: World, options: dict[str, Any], needles: list[str]
) -> None:
    dataset = options.pop("dataset", "population")
    message = refusal(lambda: world.request(dataset, **options), "refused:", *needles)
    (kept,) = list_requests(world.store, status=["refused"])
    assert kept.status is RequestStatus.REFUSED and kept.reason and kept.reason in message
    assert message.startswith(f"request {kept.id} refused")
    entry = log_entries(world.store)[-1]
    assert (entry["action"], entry["outcome"], entry["reason"]) == ("request", "denied", message)
    assert list_grants(world.store, include_inactive=True) == []


def test_every_problem_of_a_request_is_named_at_once(world: World) -> None:
    message = refusal(
        lambda: world.request(system="tax-core", columns=["shoe_size"], purpose="", actor=None),
        "who is acting?",
        "no system 'tax-core'",
        "no column 'shoe_size'",
        "the purpose is empty",
    )
    assert message.count(";") >= 3


def test_a_revoked_system_can_no_longer_request_or_use_its_grants(world: World) -> None:
    _, grant = world.request("legal_entity")
    pending, _ = world.request()
    assert grant is not None
    refusal(lambda: revoke_system(world.store, "shebao-core", "", actor="zhao.social"), "needs a reason")
    revoke_system(world.store, "shebao-core", "系统下线", actor="zhao.social")
    assert active_grant(world.store, "shebao-core", "legal_entity") is None
    refusal(lambda: approve_request(world.store, pending.id, actor="li.police"), "shebao-core was revoked")
    refusal(lambda: world.request("legal_entity"), "system shebao-core was revoked on", "系统下线")
    refusal(lambda: require_grant(world.store, "shebao-core", "legal_entity"), "was revoked", "系统下线")


# -- asking for material --------------------------------------------------------------------


def test_material_is_asked_once_for_everything_and_the_answer_restarts_the_clock(world: World) -> None:
    ref, _ = world.request()
    refusal(lambda: ask_material(world.store, ref.id, actor="li.police", material=[" "]), "name the material")
    refusal(
        lambda: ask_material(world.store, ref.id, actor="zhang.clerk", material=["授权书"]),
        "not a data steward",
    )
    asked = ask_material(
        world.store, ref.id, actor="li.police", material=["部门授权书", "系统安全等级保护备案证明"], now=NOW
    )
    assert asked.status is RequestStatus.MATERIAL_REQUESTED and asked.deadline is None
    assert asked.asked_material == "部门授权书\n系统安全等级保护备案证明" and asked.asked_by == "li.police"
    assert not asked.overdue(date(2026, 12, 31))
    refusal(
        lambda: approve_request(world.store, ref.id, actor="li.police"),
        f"request {ref.id} is waiting for material asked on 2026-09-18 by li.police, not pending",
    )
    refusal(
        lambda: answer_material(world.store, ref.id, actor="sun.housing", material=["x"]),
        "sun.housing (of 住房公积金管理中心",
    )
    refusal(
        lambda: answer_material(world.store, ref.id, actor="zhang.clerk", material=[]), "material is empty"
    )

    answered_at = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # Tuesday, 10:00 in China
    answered = answer_material(
        world.store,
        ref.id,
        actor="zhang.clerk",
        material=["授权书已上传", "备案证明编号 11010099"],
        settings=world.settings,
        calendar=world.calendar,
        now=answered_at,
    )
    assert answered.status is RequestStatus.PENDING
    assert answered.deadline == date(2026, 10, 19)  # ten working days again, from the answer
    assert answered.answered_material == "授权书已上传\n备案证明编号 11010099"
    refusal(
        lambda: answer_material(world.store, ref.id, actor="zhang.clerk", material=["again"]),
        "is pending, not material_requested",
    )
    refusal(
        lambda: ask_material(world.store, ref.id, actor="li.police", material=["one more thing"]),
        "material was already asked for on 2026-09-18 by li.police; everything must be asked at once",
    )
    assert [e["action"] for e in log_entries(world.store) if e["outcome"] == "allowed"][-3:] == [
        "request",
        "ask",
        "answer",
    ]


def test_overdue_requests_are_flagged_and_late_answers_told(world: World) -> None:
    ref, _ = world.request()
    other, _ = world.request(system="gjj-core", actor="sun.housing", purpose="公积金贷款审核")
    assert [r.id for r in list_requests(world.store, overdue=True, today=date(2026, 10, 9))] == []
    overdue = list_requests(world.store, overdue=True, today=date(2026, 10, 10))
    assert {r.id for r in overdue} == {ref.id, other.id}
    assert all(r.overdue(date(2026, 10, 10)) for r in overdue)

    late = approve_request(world.store, ref.id, actor="li.police", now=datetime(2026, 10, 12, 2, tzinfo=UTC))
    assert late is not None and get_request(world.store, ref.id).answered_late()
    assert [r.id for r in list_requests(world.store, overdue=True, today=date(2026, 10, 12))] == [other.id]
    assert [r.id for r in list_requests(world.store, system="gjj-core")] == [other.id]
    assert [r.id for r in list_requests(world.store, status=["approved"])] == [ref.id]


# -- grants ---------------------------------------------------------------------------------


def test_a_revoked_or_expired_grant_gives_nothing(world: World) -> None:
    ref, _ = world.request(days=30)
    grant = approve_request(world.store, ref.id, actor="li.police", now=NOW)
    at = NOW + timedelta(days=1)
    assert require_grant(world.store, "shebao-core", "population", ["person_token"], now=at) == grant
    refusal(
        lambda: require_grant(world.store, "shebao-core", "population", ["mobile"], now=at),
        f"grant {grant.id} of system shebao-core for population does not include mobile",
    )
    refusal(
        lambda: require_grant(world.store, "gjj-core", "population", now=at),
        "system gjj-core has no grant for dataset population",
    )
    expired_at = NOW + timedelta(days=31)
    assert active_grant(world.store, "shebao-core", "population", now=expired_at) is None
    assert grants_including(world.store, "population", ["name"], now=expired_at) == []
    refusal(
        lambda: require_grant(world.store, "shebao-core", "population", now=expired_at),
        f"grant {grant.id} of system shebao-core for population expired on 2026-10-18",
    )
    refusal(
        lambda: revoke_grant(world.store, grant.id, actor="li.police", reason="r", now=expired_at),
        "expired on 2026-10-18; it gives nothing",
    )

    refusal(lambda: revoke_grant(world.store, grant.id, actor="li.police", reason=""), "needs a reason")
    refusal(
        lambda: revoke_grant(world.store, grant.id, actor="zhang.clerk", reason="r"), "not a data steward"
    )
    refusal(lambda: revoke_grant(world.store, 999, actor="li.police", reason="r"), "no grant 999")
    # a steward of the receiving department may end its own grant
    revoked = revoke_grant(world.store, grant.id, actor="zhao.social", reason="业务系统不再需要", now=at)
    assert revoked.state(at) == "revoked" and revoked.revoked_by == "zhao.social"
    assert active_grant(world.store, "shebao-core", "population", now=at) is None
    refusal(
        lambda: require_grant(world.store, "shebao-core", "population", now=at),
        "was revoked on 2026-09-19: 业务系统不再需要",
    )
    refusal(
        lambda: revoke_grant(world.store, grant.id, actor="li.police", reason="again", now=at),
        "was already revoked on 2026-09-19 by zhao.social: 业务系统不再需要",
    )
    assert list_grants(world.store, now=at) == []
    assert [g.id for g in list_grants(world.store, include_inactive=True, now=at)] == [grant.id]
    actions = [(e["action"], e["outcome"]) for e in log_entries(world.store)]
    assert ("revoke", "allowed") in actions and actions.count(("query", "denied")) == 4


def test_a_new_grant_supersedes_the_systems_earlier_one(world: World) -> None:
    first, _ = world.request()
    old = approve_request(world.store, first.id, actor="li.police", now=NOW)
    second, _ = world.request(columns=["person_token", "gender"], purpose="参保登记信息比对")
    new = approve_request(world.store, second.id, actor="li.police", now=NOW + timedelta(hours=1))
    assert active_grant(world.store, "shebao-core", "population", now=NOW + timedelta(hours=2)) == new
    (previous,) = [g for g in list_grants(world.store, include_inactive=True) if g.id == old.id]
    assert previous.revoke_reason == f"superseded by grant {new.id}" and previous.revoked_by == "li.police"


def test_grants_including_names_only_active_grants_with_those_columns(world: World) -> None:
    a, _ = world.request(columns=["person_token", "birth_year"])
    b, _ = world.request(system="gjj-core", actor="sun.housing", columns=["person_token", "name"])
    ga = approve_request(world.store, a.id, actor="li.police", now=NOW)
    gb = approve_request(world.store, b.id, actor="li.police", now=NOW)
    assert grants_including(world.store, "population", ["person_token"], now=NOW) == [ga, gb]
    assert grants_including(world.store, "population", ["name", "gender"], now=NOW) == [gb]
    assert grants_including(world.store, "legal_entity", ["name"], now=NOW) == []
    revoke_grant(world.store, gb.id, actor="li.police", reason="r", now=NOW)
    assert grants_including(world.store, "population", ["name"], now=NOW) == []
