"""The demo's shared outputs pass the leak scan: a real pipeline run, its table and its topic."""

from __future__ import annotations

from hub.context import HubContext
from masking.scan import name_columns, scan_messages, scan_table

ROWS = 600


def test_population_table_and_topic_pass_the_leak_scan(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.deliveries import grant_topic, read_messages
    from catalog.tables import QueryEngine
    from hub import pipeline
    from hub.simulate import simulate
    from schemas.contract import load_contract
    from tests.integration.conftest import subscribe

    grant = subscribe(ready_hub)
    simulate(HubContext(ready_hub).source("population"), ready_hub, rows=ROWS, seed=11)
    result = pipeline.run("population", settings=ready_hub)
    names = name_columns(load_contract("population"))

    table = QueryEngine(HubContext(ready_hub).tables).run("SELECT * FROM population")
    assert table.num_rows > 0
    assert scan_table(table, source="population", names=names) == []

    topic = grant_topic(ready_hub.kafka.topic_prefix, grant)
    messages = read_messages(ready_hub.kafka.bootstrap_servers, topic, 10 * ROWS, batch_id=result.batch_id)
    assert len(messages) == table.num_rows
    assert scan_messages(messages, source=topic, names=names) == []

    # The scan is not blind on this data: the same rows with raw names and a raw mobile fail.
    leaked = table.append_column("raw_mobile", [["13812348000"] * table.num_rows])
    assert {f.rule for f in scan_table(leaked, source="population", names=names)} == {"mobile"}

    from typer.testing import CliRunner

    from hub.cli import app

    runner = CliRunner()
    clean = runner.invoke(app, ["scan", "--topics"])
    assert clean.exit_code == 0, clean.output
    export = ready_hub.home / "export.csv"
    export.write_text("who,id\n张*,11010519491231002X\n", encoding="utf-8")
    dirty = runner.invoke(app, ["scan", "--no-tables", "--path", str(export)])
    assert dirty.exit_code == 1 and "id_number" in dirty.output
    assert "11010519491231002X" not in dirty.output
