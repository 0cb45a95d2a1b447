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
    assert [o.uri for o in register.outlets if hasattr(o, "uri")] == ["hub://shared/population"]
    # OpenLineage datasets (lineage Tables) beside the asset: the source read, the table written.
    assert [(o.cluster, o.database, o.name) for o in register.outlets if not hasattr(o, "uri")] == [
        ("hub", "shared", "population")
    ]
    extract = dagbag.dags["population"].get_task("extract")
    assert [(i.cluster, i.name) for i in extract.inlets] == [("hub-source:11100000000013338W", "population")]


def test_dag_file_parse_does_no_heavy_imports() -> None:
    """Parsing must not import the pipeline's heavy libraries (they load inside tasks)."""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('great_expectations', 'pyiceberg', 'duckdb', 'kafka', 'pyarrow') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "sources.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_one_dag_per_source_file_and_dependent_sources_wait_for_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from hub.settings import get_settings

    original = (ROOT / "connectors" / "sources" / "population.yaml").read_text(encoding="utf-8")
    (tmp_path / "registry_a.yaml").write_text(
        original.replace("name: population", "name: registry_a"), "utf-8"
    )
    dependent = original.replace("name: population", "name: registry_b") + "depends_on: [population]\n"
    (tmp_path / "registry_b.yaml").write_text(dependent, encoding="utf-8")
    monkeypatch.setenv("HUB_CONNECTORS__SOURCES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    assert set(bag.dags) == {"registry_a", "registry_b"}
    assert "AssetOrTimeSchedule" not in type(bag.dags["registry_a"].timetable).__name__
    dependent_schedule = bag.dags["registry_b"].timetable
    assert type(dependent_schedule).__name__ == "AssetOrTimeSchedule"
    assert "population" in str(dependent_schedule.asset_condition)


def test_a_broken_source_file_is_an_import_error_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from hub.settings import get_settings

    (tmp_path / "broken.yaml").write_text("name: broken\nconnector: {kind: ftp}\n", encoding="utf-8")
    monkeypatch.setenv("HUB_CONNECTORS__SOURCES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        get_settings.cache_clear()
    message = " ".join(bag.import_errors.values())
    assert "broken.yaml" in message and "connector" in message
