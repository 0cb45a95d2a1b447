"""Running the ``hub`` command in tests: the real executable or in this process, and checks
that a refusal is one clean message with its exit code."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from catalog.sharing import DEFAULT_CALENDAR
from tests.support.sharing import POLICE, SOCIAL

HUB = str(Path(sys.executable).with_name("hub"))


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=120)


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.lstrip().startswith("error: ")
    for needle in needles:
        assert needle in result.stderr


CREDENTIAL = re.compile(r"^hub_sys_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def calendar_file(folder: Path) -> Path:
    """The shipped calendar, counting Monday to Friday beyond its years: these tests run on
    the real date and must keep working once its last year is over."""
    calendar = folder / "calendar.yaml"
    text = DEFAULT_CALENDAR.read_text(encoding="utf-8")
    calendar.write_text(text.replace("outside_years: error", "outside_years: weekdays"), encoding="utf-8")
    return calendar


Hub = Callable[..., Result]


def ok(result: Result | subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result: Result | subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr and result.stderr.lstrip().startswith("error: ")
    message = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in message, message
    return message


def set_up(hub: Hub) -> str:
    """A hub with owners, the social-security department, a clerk, stewards and a system."""
    ok(hub("keys", "init"))
    ok(hub("people", "add", "wang.hub", "--role", "steward", "--hub-wide"))
    owners = ok(hub("departments", "add-owners", "--as", "wang.hub"))
    assert POLICE in owners and "population" in owners and "added" in owners
    ok(hub("departments", "add", SOCIAL, "--name", "人力资源和社会保障厅", user="wang.hub"))
    ok(
        hub(
            "people",
            "add",
            "li.police",
            "--department",
            POLICE,
            "--role",
            "steward",
            "--as",
            "wang.hub",
        )
    )
    ok(hub("people", "add", "zhang.clerk", "--department", SOCIAL, "--as", "wang.hub"))
    added = hub(
        "systems",
        "add",
        "shebao-core",
        "--department",
        SOCIAL,
        "--name",
        "社保核心系统",
        "--as",
        "wang.hub",
    )
    (credential,) = CREDENTIAL.findall(ok(added))
    assert "shown this once" in added.stderr
    return credential
