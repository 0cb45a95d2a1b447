"""Every DAG file imports cleanly, cheaply, and has the shape the pipeline relies on."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_population_dag_steps_in_order(dagbag) -> None:
    dag = dagbag.dags["population"]
    assert dag is not None
    order = ["extract", "validate", "mask", "register", "publish"]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_register_updates_the_dataset_asset(dagbag) -> None:
    register = dagbag.dags["population"].get_task("register")
    assert [o.uri for o in register.outlets] == ["hub://shared/population"]


def test_dag_file_parse_does_no_heavy_imports() -> None:
    """Parsing must not import the pipeline's heavy libraries (they load inside tasks)."""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('great_expectations', 'pyiceberg', 'duckdb', 'kafka', 'pyarrow') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "population.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""
