"""``hub batches release``, ``hub batches quarantine`` and ``hub corrections ...`` as a steward
and a consumer department meet them: the real ``hub`` executable, one line per error."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.context import HubContext
from tests.hub.conftest import run_hub

HUB = str(Path(sys.executable).with_name("hub"))
POLICE = "11100000000013338W"
SOCIAL = "111000000000130127"


class Hub:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_hub(*args, env=self.env)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The command on a fresh home; this process uses the same home to set people up."""
    from hub.settings import get_settings

    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=str(tmp_path / "home"),
        HUB_MASKING__KEYRING_PATH=str(tmp_path / "keys" / "keyring.json"),
        COLUMNS="250",
    )
    for name in ("HUB_HOME", "HUB_MASKING__KEYRING_PATH"):
        monkeypatch.setenv(name, values[name])
    monkeypatch.delenv("HUB_USER", raising=False)
    get_settings.cache_clear()
    command = Hub(values)
    assert command("keys", "init").returncode == 0
    return command


def _store() -> Any:
    from hub.settings import get_settings

    return HubContext(get_settings()).store


def _people() -> Any:
    from catalog.sharing import add_department, add_person

    store = _store()
    add_person(store, "wang.hub", roles=["steward"], hub_wide=True, actor=None)
    add_department(store, POLICE, "公安厅", actor="wang.hub")
    add_department(store, SOCIAL, "人力资源和社会保障厅", actor="wang.hub")
    add_person(store, "li.police", department=POLICE, roles=["steward"], actor="wang.hub")
    add_person(store, "zhao.social", department=SOCIAL, roles=["steward"], actor="wang.hub")
    return store


def _error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "\nerror: " in "\n" + result.stderr  # after any progress bars
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_held_batch_is_released_by_its_steward_and_its_requests_handled(hub: Hub, tmp_path: Path) -> None:
    from catalog.corrections import Corrections

    assert (
        hub("simulate", "population", "--rows", "1000", "--seed", "3", "--defect-rate", "0.02").returncode
        == 0
    )
    held = hub("run", "population", "--no-publish")
    _error(
        held, 4, "held by the quality gate", "120 of 1,000 rows quarantined (12.00%)", "hub batches release"
    )
    store = _people()
    batch = store.latest_batch("population")
    assert batch is not None and batch.status == "held"

    _error(hub("batches", "release", batch.id, "--reason", "checked"), 5, "--as NAME")
    _error(
        hub("batches", "release", batch.id, "--reason", "checked", "--as", "zhao.social"), 5, "not of 公安厅"
    )
    released = hub(
        "batches", "release", batch.id, "--reason", "defects confirmed", "--as", "li.police", "--no-publish"
    )
    assert released.returncode == 0, released.stderr
    assert "released by li.police" in released.stdout and "registered as snapshot" in released.stdout
    shown = hub("batches", "show", batch.id)
    assert "li.police: defects confirmed" in shown.stdout and "registered" in shown.stdout

    listed = hub("corrections", "list", "--dataset", "population")
    assert listed.returncode == 0 and "open 120" in listed.stdout

    corrections = Corrections(store)
    request = next(r for r in corrections.find(limit=None) if r.rules == "required")
    assert request.batch_id is not None and request.row is not None
    (entry,) = store.quarantined_records(request.batch_id, rows=[request.row])
    raw_id = entry.record["id_number"]
    masked = hub("corrections", "show", str(request.id))
    assert masked.returncode == 0 and raw_id not in masked.stdout
    assert "masked" in masked.stdout and (request.key_token or "") in masked.stdout
    _error(hub("corrections", "show", str(request.id), "--as", "zhao.social"), 5, "not of 公安厅")
    raw = hub("corrections", "show", str(request.id), "--as", "li.police")
    assert raw.returncode == 0 and raw_id in raw.stdout and "(raw)" in raw.stdout
    listing = hub("batches", "quarantine", batch.id, "--rule", "required", "--limit", "2")
    assert listing.returncode == 0 and raw_id not in listing.stdout and listing.stdout.count("(masked)") == 2

    reply = hub("corrections", "reply", str(request.id), "--message", "已转户籍窗口核查", "--as", "li.police")
    assert reply.returncode == 0, reply.stderr
    resolved = hub("corrections", "resolve", str(request.id), "--note", "姓名已补录", "--as", "li.police")
    assert resolved.returncode == 0, resolved.stderr
    after = hub("corrections", "show", str(request.id))
    assert "resolved" in after.stdout and "已转户籍窗口核查" in after.stdout and "姓名已补录" in after.stdout
    _error(
        hub("corrections", "resolve", str(request.id), "--note", "x", "--as", "li.police"),
        7,
        "already resolved",
    )

    out = tmp_path / "公安厅.csv"
    exported = hub("corrections", "export", "--department", POLICE, "--out", str(out))
    assert exported.returncode == 0 and "120 correction requests" in exported.stdout
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 120 and {r["数源部门代码"] for r in rows} == {POLICE}
    assert raw_id not in out.read_text(encoding="utf-8-sig")


def test_a_consumer_system_files_a_request_against_a_shared_record(hub: Hub) -> None:
    from catalog.sharing import add_system, approve_request, submit_request
    from hub.settings import get_settings

    assert hub("simulate", "population", "--rows", "300", "--seed", "5").returncode == 0
    assert hub("run", "population", "--no-publish").returncode == 0
    store = _people()
    add_system(store, "shebao-core", "社保核心业务系统", SOCIAL, actor="wang.hub")
    add_system(store, "shebao-other", "社保其他系统", SOCIAL, actor="wang.hub")
    request, _ = submit_request(
        store, "population", system="shebao-core", purpose="社保待遇资格认证", actor="zhao.social"
    )
    approve_request(store, request.id, actor="li.police")
    rows = HubContext(get_settings()).tables.scan("population", selected_fields=("person_token",))
    token = next(b for b in rows if b.num_rows).column(0)[0].as_py()

    filed = hub(
        "corrections", "file", "population", "--token", token, "--field", "address",
        "--reason", "户籍地址与社保登记不一致", "--system", "shebao-core",
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    assert "filed with 公安厅" in filed.stdout and "due" in filed.stdout
    _error(
        hub("corrections", "file", "population", "--token", token, "--field", "address",
            "--reason", "x", "--system", "shebao-other"),
        5, "no grant",
    )  # fmt: skip
    _error(
        hub("corrections", "file", "population", "--token", "k1_nobody", "--field", "address",
            "--reason", "x", "--system", "shebao-core"),
        7, "no shared record of dataset population",
    )  # fmt: skip
    _error(
        hub("corrections", "file", "population", "--token", token, "--field", "shoe_size",
            "--reason", "x", "--system", "shebao-core"),
        7, "no field 'shoe_size'",
    )  # fmt: skip
    listed = hub("corrections", "list", "--status", "open")
    assert listed.returncode == 0 and "shebao-core" in listed.stdout and "address" in listed.stdout
    number = filed.stdout.split("correction request ", 1)[1].split()[0]
    reply = hub("corrections", "reply", number, "--message", "请提供社保登记地址", "--as", "zhao.social")
    assert reply.returncode == 0, reply.stderr
