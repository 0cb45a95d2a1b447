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
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout

from tests.hub.test_sharing_cli import hub  # noqa: F401 (a fixture, shared with every command test)


def run_hub(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``hub ARGS`` in this process with exactly ``env`` as the environment."""
    from hub.cli import main
    from hub.settings import get_settings

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
