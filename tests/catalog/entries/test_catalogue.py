"""Catalogue entries: generated from the contracts, edited and published by stewards, versioned,
and kept in step with new contract versions (SQLite metadata, a real Iceberg catalog)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.entries import (
    Catalogue,
    CatalogueError,
    ConcurrentEditError,
    UnknownDatasetError,
    all_contracts,
    contract_digest,
)
from schemas.contract import CONTRACT_DIR, Contract, load_contract, load_contract_file
from schemas.errors import AccessDeniedError, ContractError
from tests.support.catalogue import PROVIDER_STEWARD, STEWARD, Hub


def contract_copy(tmp: Path, name: str, change: Any) -> Contract:
    """A changed copy of a contract, loaded from its own file as a new version would be."""
    raw = yaml.safe_load((CONTRACT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    change(raw)
    folder = tmp / f"contracts-{raw['version']}-{len(list(tmp.glob('contracts-*')))}"
    folder.mkdir()
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_contract_file(path)


def with_contract(contract: Contract) -> dict[str, Contract]:
    return {**all_contracts(), contract.name: contract}


# -- generation ---------------------------------------------------------------------------


def test_every_contract_gives_a_draft_entry_with_the_core_metadata(hub: Hub) -> None:
    views = {v.dataset: v for v in Catalogue(hub.store, tables=hub.tables).entries()}
    assert set(views) == {"population", "legal_entity", "certificate"}
    assert {v.status for v in views.values()} == {"draft"}

    population = views["population"].content
    contract = load_contract("population")
    assert population.resource_code == "101001/000001"
    assert (population.class_code, population.item_code, population.catalogue_code) == ("1", "01", "001")
    assert population.provider == "公安厅" and population.provider_code == "11100000000013338W"
    assert population.share_type == "有条件共享" and population.share_condition == contract.share_condition
    assert population.update_cycle.value == "daily"
    assert [m.value for m in population.share_methods] == ["system_interface", "online_query", "service_call"]
    assert population.open_attribute.value == "不予开放"
    assert population.related_codes == ("102001/000001", "105001/000001")
    assert population.message_schema == contract.message_schema()
    assert population.keys == ("person_token",)

    items = {i.column: i for i in population.items}
    assert [i.field for i in population.items] == [f.name for f in contract.fields]
    assert items["person_token"].key and items["person_token"].name == "公民身份号码"
    assert items["person_token"].masks == {
        "unconditional": "token",
        "conditional": "token",
        "steward": "token",
    }
    assert (items["birth_year"].data_type, items["birth_year"].published_type) == ("I", "int32")
    assert items["updated_at"].data_type == "T"
    assert items["name"].masks["unconditional"] == "null"
    assert views["legal_entity"].content.open_condition  # 有条件开放 needs its condition
    assert views["certificate"].content.resource_code == "105001/000001"


def test_generation_is_recorded_once_as_version_one(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    catalogue.entries()
    catalogue.entries()
    history = catalogue.history("population")
    assert [(h.version, h.change, h.author, h.contract_version) for h in history] == [
        (1, "generated", "hub", "1.0.0")
    ]
    assert catalogue.contract_of("population", 1)["name"] == "population"


def test_unknown_dataset_names_the_known_ones(hub: Hub) -> None:
    with pytest.raises(UnknownDatasetError) as caught:
        Catalogue(hub.store).entry("people")
    assert "'people'" in str(caught.value)
    assert "certificate, legal_entity, population" in str(caught.value)


# -- contract checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda raw: raw.update(update_cycle="hourly"), "update_cycle"),
        (lambda raw: raw["catalogue"]["classification"]["item"].update(code="1"), "item code '1' must be 2"),
        (lambda raw: raw["catalogue"].update(related=["10100/1"]), "related resource code '10100/1'"),
        (lambda raw: raw["catalogue"].update(open_attribute="有条件开放"), "needs open_condition"),
        (lambda raw: raw["catalogue"].update(share_methods=["fax"]), "share_methods"),
        (lambda raw: raw.update(share_attribute="不予共享"), "needs legal_basis"),
        (lambda raw: raw.update(share_condition=None), "needs share_condition"),
    ],
)
def test_contract_catalogue_metadata_is_checked_when_loaded(tmp_path: Path, change: Any, needle: str) -> None:
    with pytest.raises(ContractError) as caught:
        contract_copy(tmp_path, "population", change)
    assert needle in str(caught.value)


# -- stewards' edits ------------------------------------------------------------------------


def test_an_edit_is_a_new_version_with_its_note_author_and_contract_version(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    view = catalogue.edit(
        "population",
        {"abstract_en": "Residents registered by public security", "share_methods": "系统接口, download"},
        by=STEWARD,
        note="clearer English abstract; downloads agreed",
    )
    assert view.current_version == 2
    assert view.content.abstract_en == "Residents registered by public security"
    assert [m.value for m in view.content.share_methods] == ["system_interface", "download"]
    assert view.edited == ("abstract_en", "share_methods")
    last = catalogue.history("population")[-1]
    assert (last.change, last.author, last.contract_version) == ("edited", STEWARD, "1.0.0")
    assert last.note == "clearer English abstract; downloads agreed"
    assert catalogue.entry("population", 1).content.abstract_en != view.content.abstract_en

    reset = catalogue.edit("population", {}, by=STEWARD, note="back to the contract", reset=["abstract_en"])
    assert reset.content.abstract_en == load_contract("population").catalogue.abstract.en  # type: ignore[union-attr]
    assert reset.edited == ("share_methods",)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        (
            {"share_type": "无条件共享"},
            "share_type is not a catalogue field stewards edit; share_type come(s) from the contract",
        ),
        ({"colour": "blue"}, "colour is not a catalogue field"),
        ({"resource_code": "1/1"}, "resource_code is the classification code and sequence code: set those"),
        ({"share_condition": " "}, "有条件共享 (conditional) needs share_condition"),
        ({"open_attribute": "有条件开放"}, "needs open_condition"),
        ({"open_attribute": "half-open"}, "open_attribute: 'half-open' is not one of"),
        ({"share_methods": "fax"}, "unknown method(s) fax"),
        ({"item_code": "1"}, "item_code"),
        ({"related_codes": "101001000001"}, "related code '101001000001' is not a resource code"),
    ],
)
def test_bad_edits_are_refused_naming_the_field(hub: Hub, changes: dict[str, str], needle: str) -> None:
    catalogue = Catalogue(hub.store)
    with pytest.raises(CatalogueError) as caught:
        catalogue.edit("population", changes, by=STEWARD, note="try")
    assert needle in str(caught.value)
    assert "population" in str(caught.value)
    assert catalogue.entry("population").current_version == 1


def test_a_not_shared_dataset_needs_its_legal_basis(hub: Hub, tmp_path: Path) -> None:
    basis = "《中华人民共和国居民身份证法》第六条"
    closed = contract_copy(
        tmp_path,
        "population",
        lambda raw: raw.update(share_attribute="不予共享", legal_basis=basis, share_condition=None),
    )
    catalogue = Catalogue(hub.store, {"population": closed})
    assert catalogue.entry("population").content.legal_basis == basis
    with pytest.raises(CatalogueError, match="不予共享 \\(not shared\\) needs legal_basis"):
        catalogue.edit("population", {"legal_basis": ""}, by=STEWARD, note="drop it")
    assert (
        catalogue.edit(
            "population", {"legal_basis": basis + "、第十九条"}, by=STEWARD, note="cite both"
        ).current_version
        == 2
    )


def test_only_stewards_of_the_provider_edit_and_publish(hub: Hub) -> None:
    from catalog.sharing import add_department, add_person

    add_department(hub.store, "11100000000013127D", "市场监督管理局", actor=STEWARD)
    add_person(hub.store, "qian", roles=["steward"], department="11100000000013127D", actor=STEWARD)
    add_person(hub.store, "sun", department="11100000000013338W", actor=STEWARD)
    catalogue = Catalogue(hub.store)
    for who, needle in (("qian", "11100000000013338W"), ("sun", "sun"), ("nobody", "nobody")):
        with pytest.raises(AccessDeniedError) as caught:
            catalogue.publish("population", by=who)
        assert needle in str(caught.value)
        with pytest.raises(AccessDeniedError):
            catalogue.edit("population", {"format": "接口"}, by=who, note="x")
    assert catalogue.entry("population").current_version == 1
    assert catalogue.publish("population", by=PROVIDER_STEWARD).status == "published"


def test_concurrent_edits_give_one_version_each_or_a_clear_refusal(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    view = catalogue.entry("population")
    catalogue.edit("population", {"format": "数据库（Iceberg）"}, by=STEWARD, note="first")
    with pytest.raises(ConcurrentEditError, match="another change was saved first"):
        catalogue._save(
            load_contract("population"),
            view.content,
            edited=(),
            change="edited",
            note="second, from the old version",
            author=STEWARD,
            digest=None,
            expected_version=view.current_version,
        )
    assert [h.note for h in catalogue.history("population")][-1] == "first"


# -- publishing ---------------------------------------------------------------------------


def test_publishing_dates_the_entry_and_consumers_see_the_published_version(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    published = catalogue.publish("population", by=STEWARD, note="first release")
    assert published.status == "published" and published.published_version == 2
    assert published.content.publication_date == datetime.now(UTC).date()
    assert published.published_by == STEWARD

    edited = catalogue.edit("population", {"format": "数据库、接口"}, by=STEWARD, note="both")
    assert edited.status == "published, draft changes"
    seen = {v.dataset: v for v in catalogue.published()}
    assert set(seen) == {"population"}
    assert seen["population"].version == 2 and seen["population"].content.format == "数据库"

    again = catalogue.publish("population", by=STEWARD)
    assert again.published_version == 4 and again.content.format == "数据库、接口"
    assert again.content.publication_date == published.content.publication_date  # first publication
    assert catalogue.publish("population", by=STEWARD).published_version == 4  # nothing new: no version
    assert [h.change for h in catalogue.history("population")] == [
        "generated",
        "published",
        "edited",
        "published",
    ]


def test_an_entry_without_catalogue_metadata_is_published_once_a_steward_fills_it_in(
    hub: Hub, tmp_path: Path
) -> None:
    bare = contract_copy(tmp_path, "population", lambda raw: raw.pop("catalogue"))
    catalogue = Catalogue(hub.store, {"population": bare})
    assert catalogue.entry("population").content.resource_code is None
    with pytest.raises(CatalogueError) as caught:
        catalogue.publish("population", by=STEWARD)
    for name in ("class_code", "sequence_code", "abstract", "format", "share_methods"):
        assert name in str(caught.value)
    catalogue.edit(
        "population",
        {
            "class_code": "1",
            "item_code": "01",
            "catalogue_code": "001",
            "sub_item_code": "11100000000013338W",
            "sequence_code": "000007",
            "abstract": "人口",
            "format": "数据库",
            "share_methods": "system_interface",
        },
        by=STEWARD,
        note="classified",
    )
    view = catalogue.publish("population", by=STEWARD)
    assert view.content.resource_code == "10100111100000000013338W/000007"


# -- search -------------------------------------------------------------------------------


def test_search_finds_names_abstracts_and_items_in_both_languages(hub: Hub) -> None:
    catalogue = Catalogue(hub.store)
    assert {h.dataset for h in catalogue.search("手机号码")} == {"population"}
    assert "item mobile" in catalogue.search("MOBILE phone")[0].matched
    assert {h.dataset for h in catalogue.search("统一社会信用代码")} >= {"legal_entity"}
    assert [h.dataset for h in catalogue.search("Electronic certificates")] == ["certificate"]
    assert {h.dataset for h in catalogue.search("101001/000001")} == {"population"}
    assert catalogue.search("no such words anywhere") == []
    with pytest.raises(CatalogueError):
        catalogue.search("  ")


# -- following the contracts --------------------------------------------------------------


def _add_email(raw: dict[str, Any], version: str = "1.1.0") -> None:
    raw["version"] = version
    raw["fields"].insert(
        8,
        {
            "name": "email",
            "type": "string",
            "required": False,
            "description": {"zh": "电子邮箱", "en": "Email address"},
            "sensitivity": "personal",
            "mask": {"rule": "mask_keep", "first": 1, "last": 4},
        },
    )


def test_a_new_contract_version_regenerates_the_entry_and_keeps_steward_edits(
    hub: Hub, tmp_path: Path
) -> None:
    Catalogue(hub.store).edit("population", {"abstract_en": "Steward's words"}, by=STEWARD, note="mine")
    newer = contract_copy(tmp_path, "population", _add_email)
    catalogue = Catalogue(hub.store, with_contract(newer))
    view = catalogue.entry("population")
    assert view.content.contract_version == "1.1.0"
    assert "email" in [i.column for i in view.content.items]
    assert view.content.abstract_en == "Steward's words"
    assert view.content.message_schema == newer.message_schema()
    last = catalogue.history("population")[-1]
    assert (last.change, last.contract_version, last.author) == ("regenerated", "1.1.0", "hub")
    assert "adds email" in last.note
    assert catalogue.contract_of("population", last.version)["version"] == "1.1.0"


def test_a_contract_changed_without_a_new_version_is_not_taken_in(hub: Hub, tmp_path: Path) -> None:
    Catalogue(hub.store).entries()
    same_version = contract_copy(tmp_path, "population", lambda raw: _add_email(raw, "1.0.0"))
    catalogue = Catalogue(hub.store, with_contract(same_version))
    view = catalogue.entry("population")
    assert view.content.contract_version == "1.0.0" and "email" not in [i.column for i in view.content.items]
    assert view.pending and "its version did not" in view.pending
    with pytest.raises(CatalogueError, match="its version did not"):
        catalogue.publish("population", by=STEWARD)
    # A steward may still work on the entry; a reset takes the entry's own contract, not the pending one.
    edited = catalogue.edit("population", {"format": "接口"}, by=STEWARD, note="x")
    reset = catalogue.edit("population", {}, by=STEWARD, note="y", reset=["format"])
    assert (edited.content.format, reset.content.format) == ("接口", "数据库")
    assert reset.content.contract_version == "1.0.0"


def _drop_mobile(version: str) -> Any:
    def change(raw: dict[str, Any]) -> None:
        raw["version"] = version
        raw["fields"] = [f for f in raw["fields"] if f["name"] != "mobile"]

    return change


def test_dropping_a_column_needs_a_major_version(hub: Hub, tmp_path: Path) -> None:
    Catalogue(hub.store).entries()
    minor = contract_copy(tmp_path, "population", _drop_mobile("1.2.0"))
    report = Catalogue(hub.store, with_contract(minor)).sync(steward=STEWARD)
    assert "drops mobile" in report.pending["population"]
    assert "needs a major version, not a minor one" in report.pending["population"]


def test_a_breaking_change_waits_for_a_steward_and_then_evolves_the_table(
    hub: Hub, tmp_path: Path, published_rows: Any, population: Contract
) -> None:
    hub.tables.commit(population, published_rows(20, "b1"), batch_id="b1", mode="upsert")
    Catalogue(hub.store).entries()

    def rename_and_drop(raw: dict[str, Any]) -> None:
        _drop_mobile("2.0.0")(raw)
        next(f for f in raw["fields"] if f["name"] == "address")["mask"]["as"] = "address_masked"

    major = contract_copy(tmp_path, "population", rename_and_drop)
    catalogue = Catalogue(hub.store, with_contract(major), tables=hub.tables)
    pending = catalogue.entry("population").pending
    assert pending and "hub catalog sync population --as NAME" in pending
    assert "drops mobile" in pending and "renames address -> address_masked" in pending

    report = catalogue.sync("population", steward=STEWARD, note="mobile moves to its own dataset")
    assert "population" in report.done and not report.pending
    view = catalogue.entry("population")
    assert view.content.contract_version == "2.0.0" and view.pending is None
    assert catalogue.history("population")[-1].author == STEWARD
    table = hub.tables.load("population")
    names = [f.name for f in table.schema().fields]
    assert "mobile" not in names and "address_masked" in names and "address" not in names
    rows = table.scan().to_arrow()
    assert set(rows.column("address_masked").to_pylist()) == {
        "北京市朝阳区"
    }  # the renamed column kept its data


def test_a_column_some_grant_includes_is_not_dropped_and_the_grants_are_named(
    hub: Hub, tmp_path: Path
) -> None:
    from catalog.sharing import add_department, add_system, submit_request

    add_department(hub.store, "111000000000132589", "人力资源和社会保障厅", actor=STEWARD)
    add_system(hub.store, "shebao-core", "社保核心系统", "111000000000132589", actor=STEWARD)
    _, grant = submit_request(
        hub.store,
        "legal_entity",
        system="shebao-core",
        purpose="社保登记核验",
        columns=["uscc", "name", "business_scope"],
        actor=STEWARD,
    )
    assert grant is not None
    Catalogue(hub.store).entries()

    def drop_scope(raw: dict[str, Any]) -> None:
        raw["version"] = "2.0.0"
        raw["fields"] = [f for f in raw["fields"] if f["name"] != "business_scope"]

    major = contract_copy(tmp_path, "legal_entity", drop_scope)
    catalogue = Catalogue(hub.store, with_contract(major))
    report = catalogue.sync("legal_entity", steward=STEWARD)
    message = report.pending["legal_entity"]
    assert f"grant #{grant.id}" in message and "shebao-core" in message and "business_scope" in message
    assert catalogue.entry("legal_entity").content.contract_version == "1.0.0"


def test_digest_follows_content(tmp_path: Path) -> None:
    same = contract_copy(tmp_path, "population", lambda raw: None)
    assert contract_digest(same) == contract_digest(load_contract("population"))
    assert contract_digest(contract_copy(tmp_path, "population", _add_email)) != contract_digest(same)


# -- facts ----------------------------------------------------------------------------------


def test_facts_show_the_snapshot_rows_last_batch_and_achieved_k(
    hub: Hub, published_rows: Any, population: Contract
) -> None:
    catalogue = Catalogue(hub.store, tables=hub.tables)
    assert catalogue.entry("population").facts.last_batch is None  # type: ignore[union-attr]
    snapshot = hub.tables.commit(population, published_rows(30, "b1"), batch_id="b1", mode="upsert")
    hub.store.start_batch(
        "b1", dataset="population", source="population", contract_version="1.0.0", rows_in=31
    )
    hub.store.update_batch(
        "b1",
        status="registered",
        snapshot_id=snapshot,
        rows_valid=30,
        rows_quarantined=1,
        k_anonymity=7,
        k_suppressed_rows=3,
    )
    hub.store.start_batch("b2", dataset="population", source="population", contract_version="1.0.0")
    hub.store.update_batch("b2", status="failed", error="source unreachable")
    facts = catalogue.entry("population").facts
    assert facts is not None
    assert (facts.snapshot_id, facts.rows) == (snapshot, 30)
    assert (facts.last_batch, facts.last_batch_source) == ("b1", "population")
    assert (facts.k_anonymity, facts.k_suppressed_rows) == (7, 3)
    assert catalogue.entry("legal_entity").facts == type(facts)()
