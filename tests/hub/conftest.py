"""Fixtures and helpers of the command tests.

``hub`` (a fixture) and :func:`run_hub` run the command in this process: what the ``hub``
executable runs (``hub.cli.main``), without starting an interpreter and importing the hub
for every command. A few tests per module still run the real executable.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from hub.cli import main
from hub.settings import get_settings
from tests.support.commands import Result, calendar_file


def run_hub(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``hub ARGS`` in this process with exactly ``env`` as the environment."""
    from hub.cli import main

    saved_env, saved_argv = dict(os.environ), sys.argv
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["hub", *args]
    get_settings.cache_clear()
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        get_settings.cache_clear()
    return subprocess.CompletedProcess(["hub", *args], code, out.getvalue().decode(), err.getvalue().decode())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``hub`` process with its own hub home and keyring."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    values.update(
        HUB_HOME=str(tmp_path / "home"),
        HUB_MASKING__KEYRING_PATH=str(tmp_path / "keys" / "keyring.json"),
        COLUMNS="200",
    )
    return values


@pytest.fixture
def hub(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``hub`` in this process (``hub.cli.main``): what the executable runs, faster."""

    monkeypatch.setenv("HUB_SHARING__CALENDAR_FILE", str(calendar_file(tmp_path)))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("HUB_USER", raising=False)
    get_settings.cache_clear()

    def run(*args: str, user: str | None = None) -> Result:
        if user:
            monkeypatch.setenv("HUB_USER", user)
        else:
            monkeypatch.delenv("HUB_USER", raising=False)
        monkeypatch.setattr(sys, "argv", ["hub", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
