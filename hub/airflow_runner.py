"""Run the hub's DAGs through real Airflow from the ``hub`` command.

The repository root is AIRFLOW_HOME (its ``airflow.cfg`` expands ``${AIRFLOW_HOME}``), and
the hub's own settings are passed to task processes through ``HUB_*`` variables with
absolute paths, so a task finds the same home whatever its working directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hub.settings import HubSettings
from schemas.errors import ConfigurationError, FatalError

_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")


def project_root() -> Path:
    """The checkout holding ``airflow.cfg`` and ``dags/`` (the package is installed editable)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "airflow.cfg").is_file() or not (root / "dags").is_dir():
        raise ConfigurationError(
            f"no airflow.cfg and dags/ beside the hub package in {root}: "
            "install the hub from its repository with `pip install -e .`"
        )
    return root


def airflow_env(settings: HubSettings) -> dict[str, str]:
    """Environment for Airflow commands: repo root as AIRFLOW_HOME, the effective hub settings.

    Task processes rebuild their settings from ``HUB_*`` variables, so the values this
    process resolved (arguments included) are passed on explicitly, with absolute paths.
    """
    root = project_root()
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = str(root)
    for key, value in _flatten("HUB", settings.model_dump(mode="json")):
        env[key] = value
    (settings.home / "airflow").mkdir(parents=True, exist_ok=True)
    if settings.home != (root / ".hub").resolve():
        # A hub home elsewhere keeps its own Airflow metadata and logs beside it.
        env.setdefault(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{settings.home / 'airflow' / 'airflow.db'}"
        )
        env.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(settings.home / "airflow" / "logs"))
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    from catalog.entries import openlineage_file

    # OpenLineage events of every task go to a file under the hub home (airflow.cfg [openlineage]).
    env.setdefault(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(openlineage_file(settings.home)), "append": True}),
    )
    return env


def _flatten(prefix: str, value: object) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [
            pair
            for key, item in value.items()
            for pair in _flatten(f"{prefix}_{'_' if prefix != 'HUB' else ''}{key.upper()}", item)
        ]
    if value is None:
        return []
    return [(prefix, str(value))]


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow(
    args: list[str],
    settings: HubSettings,
    *,
    log_path: Path,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run one ``airflow`` command, its output to ``log_path``; raise with the log's tail on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("a", encoding="utf-8") as log,
        subprocess.Popen(
            [_airflow_bin(), *args],
            env=airflow_env(settings),
            cwd=project_root(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    if code != 0:
        tail = _error_lines(log_path)
        raise FatalError(
            f"`airflow {' '.join(args)}` failed (exit {code}); full log: {log_path}"
            + (f"\n{tail}" if tail else "")
        )


def _error_lines(log_path: Path, limit: int = 6) -> str:
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    hub_errors = [ln.strip() for ln in lines if "schemas.errors." in ln or "Error:" in ln]
    return "\n".join(hub_errors[-limit:])


def migrate(settings: HubSettings, *, log_path: Path) -> None:
    """Create or upgrade Airflow's metadata database (idempotent)."""
    airflow(["db", "migrate"], settings, log_path=log_path)


def run_dag(
    dag_id: str, settings: HubSettings, *, log_path: Path, on_task: Callable[[str], None] | None = None
) -> None:
    """Run one DAG run in-process with ``airflow dags test``, reporting each task as it starts."""

    def watch(line: str) -> None:
        match = _TASK_START.search(line)
        if match and on_task is not None:
            on_task(match.group(1))

    airflow(["dags", "test", dag_id], settings, log_path=log_path, on_line=watch)
