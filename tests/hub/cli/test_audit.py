"""``hub audit ...`` as an auditor meets it, through the real ``hub`` executable."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from tests.hub.conftest import run_hub
from tests.support.commands import HUB, assert_clean_error

AUDITOR = "审计员"


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_hub(*args, env=env)


def ok(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = hub(*args, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=str(tmp_path / "home"),
        HUB_MASKING__KEYRING_PATH=str(tmp_path / "keys" / "keyring.json"),
        HUB_AUDIT__CHECKPOINT_EVERY="4",
        COLUMNS="200",
    )
    return values


@pytest.fixture
def logged(env: dict[str, str]) -> dict[str, str]:
    """A hub with a keyring, an auditor, and a few accesses on record (one denied)."""
    ok("keys", "init", env=env)
    ok("people", "add", AUDITOR, "--role", "auditor", env=env)
    script = (
        "from catalog.audit import record_access\n"
        "from hub.context import HubContext\n"
        "from hub.settings import get_settings\n"
        "store = HubContext(get_settings()).store\n"
        "for i in range(5):\n"
        "    record_access(store, action='query', outcome='allowed', system='tax-portal', department='税务局',\n"
        "                  dataset='population', columns=['person_token'], purpose='资格核验', rows=10 + i)\n"
        "record_access(store, action='query', outcome='denied', system='tax-portal', dataset='population',\n"
        "              reason='column id_number is outside grant 3', client='203.0.113.9')\n"
    )
    subprocess.run([str(Path(HUB).with_name("python")), "-c", script], env=env, check=True, timeout=120)
    return env


def _db(env: dict[str, str]) -> str:
    return f"sqlite:///{Path(env['HUB_HOME']) / 'hub.db'}"


def _sql(env: dict[str, str], statement: str) -> None:
    engine = create_engine(_db(env))
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def _entries(env: dict[str, str]) -> list[dict[str, object]]:
    engine = create_engine(_db(env))
    with engine.connect() as connection:
        rows = [
            dict(r._mapping) for r in connection.execute(text("SELECT * FROM hub_access_log ORDER BY seq"))
        ]
    engine.dispose()
    return rows


def test_verify_passes_then_names_the_first_bad_entry(logged: dict[str, str]) -> None:
    passed = ok("audit", "verify", env=logged)
    assert "access log verified" in passed.stdout and "entries 1-" in passed.stdout
    assert _entries(logged)[-1]["action"] == "audit.verify"

    _sql(logged, "UPDATE hub_access_log SET outcome = 'allowed', reason = NULL WHERE seq = 7")
    failed = hub("audit", "verify", env=logged)
    assert_clean_error(failed, 7, "entry 7 was altered")
    assert "does NOT verify" in failed.stdout

    as_json = hub("audit", "verify", "--json", env=logged)
    assert as_json.returncode == 7
    document = json.loads(as_json.stdout)
    assert document["ok"] is False and document["problems"][0]["seq"] == 7


def test_verify_detects_truncation_of_the_tail(logged: dict[str, str]) -> None:
    last = int(str(_entries(logged)[-1]["seq"]))
    _sql(logged, f"DELETE FROM hub_access_log WHERE seq >= {last - 1}")
    assert_clean_error(hub("audit", "verify", env=logged), 7, f"entries {last - 1}-{last} missing at the end")


def test_public_key_lets_an_auditor_verify_without_the_master_key(
    logged: dict[str, str], tmp_path: Path
) -> None:
    pem = ok("audit", "public-key", "--all", env=logged).stdout
    assert pem.count("BEGIN PUBLIC KEY") == 1 and "audit-sign version 1" in pem
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem)
    before = len(_entries(logged))
    no_master = {**logged, "HUB_MASKING__KEYRING_PATH": str(tmp_path / "nowhere" / "keyring.json")}
    checked = ok("audit", "verify", "--public-key", str(key_file), env=no_master)
    assert "access log verified" in checked.stdout and "no MAC key" in checked.stdout
    assert len(_entries(logged)) == before  # nothing recorded without the keys

    ok("keys", "rotate", "--kind", "audit-sign", env=logged)
    assert ok("audit", "public-key", env=logged).stdout.count("BEGIN PUBLIC KEY") == 1
    assert ok("audit", "public-key", "--all", env=logged).stdout.count("BEGIN PUBLIC KEY") == 2


def test_report_flags_denied_attempts_and_is_itself_recorded(logged: dict[str, str], tmp_path: Path) -> None:
    report = ok("audit", "report", "--as", AUDITOR, env=logged)
    assert "tax-portal" in report.stdout and "column id_number is outside grant 3" in report.stdout
    assert "1 denied" in report.stdout
    read = _entries(logged)[-1]
    assert (read["action"], read["actor"], read["outcome"]) == ("audit.report", AUDITOR, "allowed")

    as_json = json.loads(
        ok("audit", "report", "--json", "--outcome", "denied", env={**logged, "HUB_USER": AUDITOR}).stdout
    )
    assert as_json["calls"] == 1 and as_json["denied_entries"][0]["client"] == "203.0.113.9"

    page = tmp_path / "report.html"
    ok("audit", "report", "--as", AUDITOR, "--system", "tax-portal", "--html", str(page), env=logged)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "The log verifies" in html
    assert "column id_number is outside grant 3" in html
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(charts) >= 3
    for chart in charts:
        ElementTree.fromstring(chart)  # well-formed, drawable without any script
    for external in ("<script", "http://", "https://", "<link", "@import", "url("):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_reports_and_exports_need_an_auditor_and_refusals_are_recorded(logged: dict[str, str]) -> None:
    assert_clean_error(hub("audit", "report", env=logged), 5, "--as NAME")
    assert_clean_error(hub("audit", "export", "--out", "x.csv", "--as", "nobody", env=logged), 5, "nobody")
    ok("people", "add", "li.steward", "--role", "steward", "--hub-wide", env=logged)
    assert_clean_error(
        hub("audit", "report", "--as", "li.steward", env=logged), 5, "li.steward is not an auditor"
    )
    refused = [
        e for e in _entries(logged) if e["outcome"] == "denied" and str(e["action"]).startswith("audit.")
    ]
    assert [(e["action"], e["actor"]) for e in refused] == [
        ("audit.report", None),
        ("audit.export", "nobody"),
        ("audit.report", "li.steward"),
    ]


def test_export_csv_and_parquet(logged: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "log.csv"
    done = ok("audit", "export", "--format", "csv", "--out", str(out), "--as", AUDITOR, env=logged)
    assert "entries written" in done.stdout
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["seq"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
    query = next(r for r in rows if r["action"] == "query")
    assert (
        query["department"] == "税务局"
        and query["at"].endswith("Z")
        and query["columns"] == '["person_token"]'
    )
    assert {"prev_hash", "entry_hash", "entry_mac"} <= set(query)

    parquet = tmp_path / "denied.parquet"
    ok(
        "audit", "export", "--format", "parquet", "--out", str(parquet), "--outcome", "denied",
        "--since", "2000-01-01", "--as", AUDITOR, env=logged,
    )  # fmt: skip
    table = pq.read_table(parquet)
    assert table.num_rows == 1 and table.column("reason").to_pylist() == [
        "column id_number is outside grant 3"
    ]
    actions = [e["action"] for e in _entries(logged)]
    assert actions.count("audit.export") == 2


def test_purge_refuses_young_entries_and_bad_dates(logged: dict[str, str]) -> None:
    assert_clean_error(
        hub("audit", "purge", "--before", "2999-01-01", "--as", AUDITOR, env=logged), 5, "180 days"
    )
    assert _entries(logged)[-1]["outcome"] == "denied"
    bad = hub("audit", "purge", "--before", "yesterday", "--as", AUDITOR, env=logged)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr
    nothing = ok("audit", "purge", "--before", "2001-01-01", "--as", AUDITOR, env=logged)
    assert "no entries before 2001-01-01" in nothing.stdout
    ok("audit", "verify", env=logged)


def test_checkpoints_list_write_and_json(logged: dict[str, str]) -> None:
    listed = ok("audit", "checkpoints", env=logged)
    assert "periodic" in listed.stdout
    written = ok("audit", "checkpoints", "--write", "--as", AUDITOR, env=logged)
    assert "written at entry" in written.stdout and "demand" in written.stdout
    documents = json.loads(ok("audit", "checkpoints", "--json", env=logged).stdout)
    assert "demand" in [d["document"]["reason"] for d in documents]
    assert all(len(d["signature"]) == 128 for d in documents)
    ok("audit", "verify", env=logged)


def test_keys_upgrade_adds_the_audit_keys_to_an_older_keyring(env: dict[str, str]) -> None:
    ok("keys", "init", env=env)
    path = Path(env["HUB_MASKING__KEYRING_PATH"])
    document = json.loads(path.read_text())
    document["keys"] = [k for k in document["keys"] if k["kind"] in ("token", "encrypt")]
    document["current"] = {"token": 1, "encrypt": 1}
    path.write_text(json.dumps(document))
    upgraded = ok("keys", "upgrade", env=env)
    assert "audit v1, audit-sign v1 added" in upgraded.stdout
    assert "nothing to do" in ok("keys", "upgrade", env=env).stdout
    assert "4 keys" in ok("keys", "verify", env=env).stdout  # one of each kind


def test_no_key_material_in_any_output(logged: dict[str, str], tmp_path: Path) -> None:
    from masking.keys import Keyring, MasterKey

    outputs = [
        ok("audit", "verify", env=logged),
        ok("audit", "report", "--json", "--as", AUDITOR, env=logged),
        ok("audit", "checkpoints", "--json", env=logged),
        ok("audit", "public-key", "--all", env=logged),
        hub("audit", "purge", "--before", "2999-01-01", "--as", AUDITOR, env=logged),
    ]
    out = tmp_path / "all.csv"
    ok("audit", "export", "--out", str(out), "--as", AUDITOR, env=logged)
    seen = "".join(o.stdout + o.stderr for o in outputs) + out.read_text(encoding="utf-8")

    path = Path(logged["HUB_MASKING__KEYRING_PATH"])
    keyring = Keyring.load(path, master=MasterKey.from_file(path.parent / "master.key"))
    for info in keyring.versions():
        material = keyring.key(info.kind, info.version).secret.reveal()
        for form in (
            material.hex(),
            base64.b64encode(material).decode(),
            base64.urlsafe_b64encode(material).decode(),
        ):
            assert form not in seen


def test_decryptions_and_their_refusals_are_in_the_access_log(env: dict[str, str]) -> None:
    import pyarrow as pa

    from masking.crypto import encrypt_array
    from masking.keys import Keyring, MasterKey

    ok("keys", "init", env=env)
    ok("people", "add", "li.steward", "--role", "steward", "--hub-wide", env=env)
    path = Path(env["HUB_MASKING__KEYRING_PATH"])
    keyring = Keyring.load(path, master=MasterKey.from_file(path.parent / "master.key"))
    values = encrypt_array(
        pa.array(["110105194912310021", "440305199001011234"]),
        keyring.current_key("encrypt"),
        aad="population.id_number",
    )
    cipher = [str(v) for v in values.to_pylist()]

    refused = hub("decrypt", *cipher, "--steward", "li.steward", env=env)
    assert refused.returncode == 5
    done = ok(
        "decrypt",
        *cipher,
        "--aad",
        "population.id_number",
        "--steward",
        "li.steward",
        "--reason",
        "案件 42",
        env=env,
    )
    assert "110105194912310021" in done.stdout

    logged = [e for e in _entries(env) if e["action"] == "decryption"]
    assert [(e["outcome"], e["actor"], e["rows"]) for e in logged] == [
        ("denied", "li.steward", 0),
        ("allowed", "li.steward", 2),
    ]
    assert (logged[1]["dataset"], logged[1]["columns"], logged[1]["purpose"]) == (
        "population",
        '["id_number"]',
        "案件 42",
    )
    assert json.loads(str(logged[1]["detail"])) == {"key_versions": [1], "result": "decrypted", "values": 2}
    for entry in logged:  # the values never reach the log
        assert "110105194912310021" not in json.dumps(entry, default=str)
    ok("audit", "verify", env=env)
