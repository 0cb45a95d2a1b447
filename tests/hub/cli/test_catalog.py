"""``hub catalog ...``, ``hub lineage`` and ``hub status`` run as a steward would: the real ``hub``
executable, its metadata in a temporary hub home, stewards registered with ``hub people add``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import rdflib
from rdflib import namespace as ns

from tests.hub.conftest import run_hub

HUB = str(Path(sys.executable).with_name("hub"))


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_hub(*args, env=env)


def ok(*args: str, env: dict[str, str]) -> str:
    result = hub(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.lstrip().startswith("error: ")
    message = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in message


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A hub home with keys, a hub-wide steward (li) and a person who is no steward (zhou)."""
    tmp = tmp_path_factory.mktemp("catalog-cli")
    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=str(tmp / "home"),
        HUB_MASKING__KEYRING_PATH=str(tmp / "keys" / "keyring.json"),
        COLUMNS="220",
    )
    ok("keys", "init", env=values)
    ok("people", "add", "li", "--role", "steward", "--hub-wide", env=values)
    ok("people", "add", "zhou", "--as", "li", env=values)
    yield values


def test_a_steward_publishes_the_three_datasets(env: dict[str, str]) -> None:
    listed = ok("catalog", "list", env=env)
    for code in ("101001/000001", "102001/000001", "105001/000001"):
        assert code in listed
    assert "published" not in listed

    refused(hub("catalog", "publish", "population", "--as", "zhou", env=env), 5, "zhou")
    for dataset in ("population", "legal_entity", "certificate"):
        out = ok("catalog", "publish", dataset, "--as", "li", "--note", "first release", env=env)
        assert f"catalogue entry {dataset}" in out and "published" in out

    entries = json.loads(ok("catalog", "list", "--json", env=env))
    assert {e["dataset"]: e["status"] for e in entries} == {
        "certificate": "published",
        "legal_entity": "published",
        "population": "published",
    }
    shown = json.loads(ok("catalog", "show", "population", "--json", env=env))
    assert shown["content"]["resource_code"] == "101001/000001"
    assert shown["published_by"] == "li" and shown["content"]["publication_date"]
    assert shown["content"]["message_schema"]["properties"]["person_token"]["type"] == "string"

    table = ok("catalog", "show", "legal_entity", env=env)
    assert "统一社会信用代码" in table and "有条件开放" in table and "法定代表人" in table


def test_exports_validate_as_json_and_json_ld(env: dict[str, str], tmp_path: Path) -> None:
    for dataset in ("population", "legal_entity", "certificate"):
        ok("catalog", "publish", dataset, "--as", "li", env=env)
    ok("catalog", "export", "--format", "json", "--out", str(tmp_path / "catalogue.json"), env=env)
    document = json.loads((tmp_path / "catalogue.json").read_text(encoding="utf-8"))
    from catalog.entries import json_schema

    jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker()).validate(
        document
    )
    assert len(document["entries"]) == 3

    printed = ok(
        "catalog", "export", "--format", "dcat", "--base-uri", "https://data.example.gov.cn/", env=env
    )
    graph = rdflib.Graph().parse(data=printed, format="json-ld")
    datasets = set(graph.subjects(ns.RDF.type, ns.DCAT.Dataset))
    assert len(datasets) == 3
    assert {str(graph.value(d, ns.DCTERMS.identifier)) for d in datasets} == {
        "101001/000001",
        "102001/000001",
        "105001/000001",
    }


def test_edits_history_and_search(env: dict[str, str]) -> None:
    out = ok(
        "catalog", "edit", "certificate",
        "--set", "keywords=电子证照,证照核验,licence check",
        "--set", "format=数据库、接口",
        "--note", "portal keywords", "--as", "li",
        env=env,
    )  # fmt: skip
    assert "certificate" in out
    history = ok("catalog", "history", "certificate", env=env)
    assert "portal keywords" in history and "generated" in history and "edited" in history
    shown = json.loads(ok("catalog", "show", "certificate", "--json", env=env))
    assert shown["content"]["keywords"] == ["电子证照", "证照核验", "licence check"]
    assert shown["steward_edited"] == ["format", "keywords"]
    first = json.loads(ok("catalog", "show", "certificate", "--version", "1", "--json", env=env))
    assert first["content"]["format"] == "数据库" and first["change"] == "generated"

    assert "certificate" in ok("catalog", "search", "licence check", env=env)
    found = ok("catalog", "search", "Mobile phone", env=env)
    assert "population" in found and "item mobile" in found
    assert "no entry mentions" in ok("catalog", "search", "火星", env=env)


def test_refusals_are_one_clear_line(env: dict[str, str]) -> None:
    refused(hub("catalog", "show", "people", env=env), 3, "'people'", "certificate, legal_entity, population")
    refused(
        hub(
            "catalog",
            "edit",
            "population",
            "--set",
            "share_type=无条件共享",
            "--note",
            "x",
            "--as",
            "li",
            env=env,
        ),
        3,
        "share_type is not a catalogue field",
        "schemas/population.yaml",
    )
    refused(
        hub(
            "catalog", "edit", "population", "--set", "share_condition=", "--note", "x", "--as", "li", env=env
        ),
        3,
        "有条件共享 (conditional) needs share_condition",
    )
    refused(
        hub("catalog", "edit", "population", "--set", "format=接口", "--note", "x", "--as", "zhou", env=env),
        5,
        "zhou",
    )
    refused(hub("catalog", "show", "population", "--version", "99", env=env), 3, "no version 99")
    refused(hub("lineage", "people", env=env), 3, "'people'")


def test_lineage_and_status_read_the_batch_records(env: dict[str, str]) -> None:
    from catalog.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{Path(env['HUB_HOME']) / 'hub.db'}")
    now = datetime.now(UTC)
    store.start_batch("population-1", dataset="population", source="population", contract_version="1.0.0")
    store.update_batch(
        "population-1",
        status="registered",
        rows_in=10,
        rows_valid=9,
        rows_quarantined=1,
        snapshot_id=424242,
        registered_at=now - timedelta(hours=2),
    )
    store.start_batch(
        "legal_entity-1", dataset="legal_entity", source="legal_entity", contract_version="1.0.0"
    )
    store.update_batch(
        "legal_entity-1", status="registered", snapshot_id=7, registered_at=now - timedelta(days=3)
    )
    store.dispose()

    tree = ok("lineage", "population", env=env)
    assert "source population" in tree and "batch population-1" in tree and "snapshot 424242" in tree
    graph = json.loads(ok("lineage", "population", "--json", env=env))
    assert graph["sources"][0]["batches"][0]["snapshot"]["snapshot_id"] == 424242

    report = ok("status", env=env)
    assert "connection rate" in report and "2/3" in report
    data = json.loads(ok("status", "--json", env=env))
    states = {d["dataset"]: d["state"] for d in data["datasets"]}
    assert states == {"population": "fresh", "legal_entity": "stale", "certificate": "never"}
    assert data["departments_connected"] == 2 and data["departments_with_entries"] == 3
