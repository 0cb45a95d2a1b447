"""Masking throughput, each rule timed beside its baseline in the same run.

Targets (issue 5): display masks at least 5M values/s; tokenisation at least 80% of a bare
``hmac.new(key, value, sha256).digest()`` loop over the same values. The display masks'
baseline is the earlier pyarrow.compute version of ``mask_name``, for comparison.

    python -m bench.masking [rows]
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking import rules
from masking.keys import DataKey, Secret

DISPLAY_TARGET = 5_000_000
TOKEN_TARGET = 0.8


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _data(n: int) -> dict[str, pa.Array]:
    rng = np.random.default_rng(5)
    surnames = np.array(["王", "李", "张", "刘", "陈", "欧阳", "司马", "诸葛"])
    given = np.array(["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军洋"])
    names = np.char.add(surnames[rng.integers(0, len(surnames), n)], given[rng.integers(0, len(given), n)])
    mobiles = np.char.add("1", rng.integers(3_000_000_000, 9_999_999_999, n).astype(str))
    ids = np.char.add(
        rng.integers(110_000, 660_000, n).astype(str), rng.integers(10**11, 10**12 - 1, n).astype(str)
    )
    return {
        "name": pa.array(names.tolist(), type=pa.string()),
        "mobile": pa.array(mobiles.tolist(), type=pa.string()),
        "id": pa.array(ids.tolist(), type=pa.string()),
    }


_COMPOUND = pa.array(sorted(rules.COMPOUND_SURNAMES), type=pa.string())


def _compute_mask_name(values: pa.Array) -> pa.Array:
    """The earlier pyarrow.compute ``mask_name`` (same output): the baseline it replaced."""
    length = pc.utf8_length(values)
    compound = pc.fill_null(
        pc.and_(pc.is_in(pc.utf8_slice_codeunits(values, 0, 2), value_set=_COMPOUND), pc.greater(length, 2)),
        False,
    )
    kept = pc.if_else(compound, 2, pc.if_else(pc.greater(length, 1), 1, 0))
    head = pc.if_else(compound, pc.utf8_slice_codeunits(values, 0, 2), pc.utf8_slice_codeunits(values, 0, 1))
    head = pc.if_else(pc.equal(kept, 0), "", head)
    return pc.binary_join_element_wise(head, pc.binary_repeat("*", pc.subtract(length, kept)), "")


def run(n: int = 1_000_000) -> list[dict[str, Any]]:
    """Rows of (what, values/s, baseline, baseline values/s, ratio, target met)."""
    data = _data(n)
    secret = secrets.token_bytes(32)
    key = DataKey(kind="token", version=1, secret=Secret(secret))
    raw = data["id"].cast(pa.binary()).to_pylist()

    def bare_hmac() -> None:
        for value in raw:
            hmac.new(secret, value, hashlib.sha256).digest()

    results: list[dict[str, Any]] = []
    baseline_name = n / _best(lambda: _compute_mask_name(data["name"]))
    display: list[tuple[str, Callable[[pa.Array], Any], pa.Array]] = [
        ("mask_name", rules.mask_name, data["name"]),
        ("mask_mobile", rules.mask_mobile, data["mobile"]),
        ("mask_id", rules.mask_id, data["id"]),
    ]
    for what, fn, values in display:
        rate = n / _best(partial(fn, values))
        results.append(
            {
                "what": what,
                "values_per_s": rate,
                "baseline": "pyarrow.compute mask_name",
                "baseline_per_s": baseline_name,
                "ratio": rate / baseline_name,
                "target": f">= {DISPLAY_TARGET / 1e6:.0f}M/s",
                "met": rate >= DISPLAY_TARGET,
            }
        )
    hmac_rate = n / _best(bare_hmac)
    token_rate = n / _best(lambda: rules.token(data["id"], key))
    results.append(
        {
            "what": "token",
            "values_per_s": token_rate,
            "baseline": "hmac.new(...).digest() loop",
            "baseline_per_s": hmac_rate,
            "ratio": token_rate / hmac_rate,
            "target": f">= {TOKEN_TARGET:.0%} of baseline",
            "met": token_rate >= TOKEN_TARGET * hmac_rate,
        }
    )
    return results


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    print(f"masking throughput over {n:,} values (best of 3)")
    print(f"{'rule':<12} {'values/s':>12} {'baseline':<28} {'values/s':>12} {'ratio':>6}  target")
    for r in run(n):
        print(
            f"{r['what']:<12} {r['values_per_s']:>12,.0f} {r['baseline']:<28} {r['baseline_per_s']:>12,.0f} "
            f"{r['ratio']:>6.2f}  {r['target']} {'ok' if r['met'] else 'MISSED'}"
        )


if __name__ == "__main__":
    main(sys.argv)
