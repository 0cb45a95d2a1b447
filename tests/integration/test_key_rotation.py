"""Token-key rotation end to end: re-tokenised tables and a mapping that keeps joins working."""

from __future__ import annotations

from hub.context import HubContext


def test_token_rotation_retokenises_and_publishes_the_mapping(ready_hub) -> None:  # type: ignore[no-untyped-def]
    from catalog.tables import QueryEngine
    from hub import pipeline
    from hub.simulate import simulate
    from masking.keys import Keyring

    simulate(HubContext(ready_hub).source("population"), ready_hub, rows=600, seed=9)
    pipeline.run("population", settings=ready_hub, publish_rows=False)
    engine = QueryEngine(HubContext(ready_hub).tables)
    before = engine.run("SELECT person_token FROM population ORDER BY person_token").column(0).to_pylist()
    assert before and all(t.startswith("k1_") for t in before)
    assert "token_map" not in HubContext(ready_hub).tables.datasets()

    Keyring.load(ready_hub.masking.keyring_path).rotate("token")
    result = pipeline.run("population", settings=ready_hub, full=True, publish_rows=False)
    assert HubContext(ready_hub).store.get_batch(result.batch_id).rows_in == 600

    engine = QueryEngine(HubContext(ready_hub).tables)
    after = engine.run("SELECT person_token FROM population").column(0).to_pylist()
    assert len(after) == len(before) and all(t.startswith("k2_") for t in after)
    # a consumer holding yesterday's tokens joins through the mapping to today's rows
    joined = engine.run(
        "SELECT count(*) AS n FROM token_map m JOIN population p ON p.person_token = m.new_token "
        "WHERE m.old_version = 1 AND m.new_version = 2"
    ).to_pylist()[0]["n"]
    assert joined == len(before)
    old = set(engine.run("SELECT old_token FROM token_map").column(0).to_pylist())
    assert set(before) <= old
