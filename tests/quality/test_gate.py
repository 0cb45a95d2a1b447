"""The batch gate: figures, the held batch's message and what the scheduler does with it."""

from __future__ import annotations

import pytest

from quality.errors import BatchHeldError
from quality.gate import TOP_RULES, GateVerdict, held_error, judge
from schemas.errors import QualityError


def test_a_share_above_the_threshold_is_held_exactly_at_it_is_not() -> None:
    assert judge(1_000, 51, 0.05).held
    assert not judge(1_000, 50, 0.05).held
    assert not judge(0, 0, 0.05).held, "an empty batch has nothing to hold"
    assert judge(10, 1, 0.0).held, "a zero threshold holds any quarantined row"
    assert not judge(10, 10, 1.0).held


def test_impossible_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="impossible"):
        judge(10, 11, 0.05)
    with pytest.raises(ValueError, match="impossible"):
        judge(-1, 0, 0.05)


def test_the_verdict_keeps_the_most_frequent_rules_only() -> None:
    summary = [(f"rule{i}", "field", 100 - i) for i in range(10)]
    verdict = judge(1_000, 120, 0.05, summary)
    assert verdict.top_rules == tuple(summary[:TOP_RULES])
    assert verdict.share == pytest.approx(0.12)


def test_the_held_error_gives_the_figures_the_rules_and_the_command() -> None:
    verdict = GateVerdict(2_000, 240, 0.05, (("key.duplicate", "id_number", 80), ("required", "name", 40)))
    error = held_error(verdict, batch_id="population-1", dataset="population", source="pop", watermark="W1")
    message = str(error)
    for needle in (
        "population-1",
        "240 of 2,000 rows quarantined (12.00%)",
        "threshold of 5.00%",
        "key.duplicate on id_number 80",
        "required on name 40",
        "watermark of source pop stays at W1",
        "hub batches release population-1 --reason TEXT --as STEWARD",
    ):
        assert needle in message
    assert "\n" not in message
    assert isinstance(error, QualityError) and error.exit_code == 4 and not error.retriable
    full = held_error(verdict, batch_id="b", dataset="d", source="s", watermark=None)
    assert "no watermark moves" in str(full)


def test_airflow_fails_a_held_batch_without_retrying() -> None:
    from airflow.sdk import RetryAction

    from hub.assets import RETRY_POLICY

    decision = RETRY_POLICY.evaluate(BatchHeldError("held"), 1, 3)
    assert decision.action is RetryAction.FAIL


def test_of_two_stewards_releasing_at_once_exactly_one_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from catalog.errors import ReleaseRefusedError
    from catalog.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.start_batch("b1", dataset="population", source="population", contract_version="1.0.0")
    store.hold_batch("b1", "held by the quality gate")

    def release(name: str) -> str:
        try:
            store.release_batch("b1", steward=name, reason=f"by {name}")
        except ReleaseRefusedError:
            return "refused"
        return "released"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(release, ["li.police", "wang.hub"]))
    assert outcomes == ["refused", "released"]
    batch = store.get_batch("b1")
    assert batch.status == "validated" and batch.release_reason == f"by {batch.released_by}"
    assert batch.error is None and batch.held_at is not None
