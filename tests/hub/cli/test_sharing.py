"""The sharing commands as a steward and a consumer department meet them: one line and exit
code 5 for every refusal, never a traceback. Most run ``hub.cli.main`` in this process (what
the executable runs, without starting an interpreter per command); the last test runs the
real ``hub`` executable."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from catalog.sharing import today_cst
from hub.settings import get_settings
from tests.support.commands import CREDENTIAL, Hub, calendar_file, ok, refused, set_up

HUB = str(Path(sys.executable).with_name("hub"))


def test_registry_commands(hub: Hub) -> None:
    credential = set_up(hub)
    again = ok(hub("departments", "add-owners", "--as", "wang.hub"))
    assert "already registered" in again
    refused(
        hub("departments", "add", "11100000000013338X", "--name", "x", "--as", "wang.hub"),
        2,
        "not a valid unified social credit code",
        "check character",
    )
    refused(
        hub("departments", "add", "12100000000013020Y", "--name", "住房公积金管理中心"),
        5,
        "who is acting? pass --as NAME or set HUB_USER",
    )
    refused(
        hub("people", "add", "qian", "--role", "owner", "--as", "wang.hub"),
        2,
        "unknown role(s) owner",
    )
    listed = ok(hub("departments", "list"))
    assert "人力资源和社会保障厅" in listed and "shebao-core" in listed and "population" in listed
    people = ok(hub("people", "list"))
    assert "steward of the whole hub" in people and "steward of 公安厅" in people

    systems = ok(hub("systems", "list"))
    assert "shebao-core" in systems and credential not in systems and credential[21:] not in systems
    database = get_settings().home / "hub.db"
    assert credential[21:].encode() not in database.read_bytes()

    rotated = ok(hub("systems", "rotate-credential", "shebao-core", "--as", "wang.hub"))
    (new,) = CREDENTIAL.findall(rotated)
    assert new != credential and "no longer works" in rotated
    refused(
        hub("systems", "revoke", "shebao-core", "--reason", " ", "--as", "wang.hub"),
        5,
        "needs a reason",
    )
    ok(hub("systems", "revoke", "shebao-core", "--reason", "系统下线", "--as", "wang.hub"))
    assert "shebao-core" not in ok(hub("systems", "list"))
    assert "系统下线" in ok(hub("systems", "list", "--all"))
    ok(hub("people", "remove", "zhang.clerk", "--as", "wang.hub"))
    assert "zhang.clerk" not in ok(hub("people", "list"))


def test_a_consumer_requests_and_a_steward_decides(hub: Hub) -> None:
    set_up(hub)
    refused(
        hub("request", "population", "--system", "shebao-core", "--purpose", "养老金资格认证"),
        5,
        "refused",
        "who is acting? pass --as NAME or set HUB_USER",
    )
    refused(
        hub(
            "request",
            "population",
            "--system",
            "shebao-core",
            "--columns",
            "id_number,mobile",
            "--purpose",
            " ",
            user="zhang.clerk",
        ),
        5,
        "no column 'id_number'",
        "'id_number' is published as 'person_token'",
        "allowed: person_token",
        "the purpose is empty",
    )
    refused(
        hub("request", "people", "--system", "shebao-core", "--purpose", "x", "--as", "zhang.clerk"),
        5,
        "no dataset 'people' (known: certificate, legal_entity, population)",
    )

    unconditional = ok(
        hub(
            "request",
            "legal_entity",
            "--system",
            "shebao-core",
            "--purpose",
            "参保单位核验",
            user="zhang.clerk",
        )
    )
    assert "shared unconditionally" in unconditional and "grant 1" in unconditional

    pending = ok(
        hub(
            "request",
            "population",
            "--system",
            "shebao-core",
            "--columns",
            "person_token,birth_year,name",
            "--purpose",
            "养老金资格认证",
            "--days",
            "180",
            user="zhang.clerk",
        )
    )
    (request_id,) = re.findall(r"request (\d+): waiting", pending)
    assert "answer due by" in pending
    refused(hub("approve", request_id, user="zhang.clerk"), 5, "zhang.clerk is not a data steward")

    ok(
        hub(
            "ask",
            request_id,
            "--material",
            "部门授权书",
            "--material",
            "等保备案证明",
            "--as",
            "li.police",
        )
    )
    refused(hub("ask", request_id, "--material", "more", "--as", "li.police"), 5, "already asked for")
    shown = ok(hub("requests", "show", request_id))
    assert "部门授权书" in shown and "material_requested" in shown and "paused" in shown
    answered = ok(hub("requests", "answer", request_id, "--material", "见附件", "--as", "zhang.clerk"))
    assert "answer due by" in answered

    approved = ok(
        hub(
            "approve",
            request_id,
            "--columns",
            "person_token,birth_year",
            "--days",
            "90",
            "--as",
            "li.police",
        )
    )
    (grant_id,) = re.findall(r"grant (\d+) gives", approved)
    refused(
        hub("deny", request_id, "--reason", "x", "--as", "li.police"),
        5,
        "was already approved by li.police",
    )
    refused(hub("deny", "999", "--reason", "x", "--as", "li.police"), 5, "no request 999")

    listed = ok(hub("requests"))
    assert listed.count("approved") >= 2 and "refused" in listed
    assert "refused" in ok(hub("requests", "--status", "refused"))
    refused(hub("requests", "--status", "lost"), 2, "unknown status lost")
    grants = ok(hub("grants", "--system", "shebao-core"))
    assert "person_token, birth_year" in grants and "养老金资格认证" in grants and "population" in grants

    ok(hub("revoke", grant_id, "--reason", "项目结束", "--as", "li.police"))
    assert "population" not in ok(hub("grants"))
    assert "项目结束" in ok(hub("grants", "--all"))
    refused(
        hub("revoke", grant_id, "--reason", "again", "--as", "li.police"),
        5,
        "already revoked",
        "项目结束",
    )


def test_overdue_requests_are_flagged(hub: Hub, hub_home: Path) -> None:
    set_up(hub)
    ok(
        hub(
            "request",
            "population",
            "--system",
            "shebao-core",
            "--purpose",
            "养老金资格认证",
            "--as",
            "zhang.clerk",
        )
    )
    assert "OVERDUE" not in ok(hub("requests"))
    with sqlite3.connect(hub_home / "hub.db") as db:
        db.execute("UPDATE hub_requests SET deadline = '2026-01-05' WHERE status = 'pending'")
    overdue = hub("requests", "--overdue")
    assert "OVERDUE" in ok(overdue) and "2026-01-05" in overdue.stdout
    end = date(2026, 12, 31)
    assert ("add 2027" in overdue.stderr) is (end - today_cst() <= timedelta(days=45))


def test_the_real_executable_refuses_in_one_line(tmp_path: Path) -> None:
    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=str(tmp_path / "home"),
        HUB_MASKING__KEYRING_PATH=str(tmp_path / "keys" / "keyring.json"),
        HUB_SHARING__CALENDAR_FILE=str(calendar_file(tmp_path)),
        COLUMNS="200",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HUB, *args], env=values, capture_output=True, text=True, timeout=120)

    ok(run("keys", "init"))
    ok(run("people", "add", "wang.hub", "--role", "steward", "--hub-wide"))
    refused(
        run("departments", "add", "11100000000013338X", "--name", "x", "--as", "wang.hub"),
        2,
        "check character",
    )
    result = run("approve", "1", "--as", "nobody")
    refused(result, 5, "no request 1 is recorded")
    assert len(result.stderr.strip().splitlines()) <= 2
