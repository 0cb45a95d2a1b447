"""Re-identification check: k-anonymity of a view on its quasi-identifiers (GB/T 42460).

A view is k-anonymous when every combination of quasi-identifier values it contains
(e.g. gender, age band, prefecture) is shared by at least k rows, so no row can be singled
out by someone who knows those facts about a person. :func:`measure` reports the achieved
k; :func:`enforce` generalises the quasi-identifiers further, then suppresses the rows of
groups still below k. Run it on a dataset's unconditional view before sharing it::

    view = mask_table(valid_rows, contract, keyring, batch_id=b, level="unconditional")
    view, result = enforce(view, contract.published_quasi_identifiers, contract.k_anonymity, contract)

Groups are found with one integer id per row (dictionary codes of each column combined),
so nulls form a group of their own instead of vanishing as they would in a join.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.errors import MaskingInputError
from masking.rules import band_labels
from schemas.contract import Contract, MaskRule, ShareLevel

DEFAULT_MAX_SUPPRESSED = 0.05
"""Share of rows that may be suppressed instead of generalising a whole column further.
Five percent is the usual suppression limit of de-identification tools (e.g. ARX): beyond
it, dropping rows biases the view more than coarser values would."""
MAX_AGE_BAND_WIDTH = 40
"""Bands are doubled up to this width; wider bands say little more than "adult"."""

Step = Callable[[pa.ChunkedArray], pa.ChunkedArray]


@dataclass(frozen=True)
class KResult:
    """What a k-anonymity measurement found."""

    k: int
    """Smallest group size (0 for an empty view)."""
    threshold: int
    groups: int
    small_groups: int
    """Groups with fewer rows than ``threshold``."""
    rows: int
    rows_in_small_groups: int
    suppressed_rows: int = 0
    generalised: tuple[str, ...] = field(default=())
    """Extra generalisations applied by :func:`enforce`, e.g. ``"division_code: province"``."""

    @property
    def satisfied(self) -> bool:
        return self.rows == 0 or self.k >= self.threshold


def measure(table: pa.Table, quasi_identifiers: Sequence[str], threshold: int = 5) -> KResult:
    """Group sizes of ``table`` on the quasi-identifiers (published column names)."""
    sizes = _group_sizes(table, quasi_identifiers)
    if not len(sizes.group):
        return KResult(k=0, threshold=threshold, groups=0, small_groups=0, rows=0, rows_in_small_groups=0)
    per_group = np.unique(sizes.group, return_counts=True)[1]
    small = per_group < threshold
    return KResult(
        k=int(per_group.min()),
        threshold=threshold,
        groups=len(per_group),
        small_groups=int(small.sum()),
        rows=table.num_rows,
        rows_in_small_groups=int(per_group[small].sum()),
    )


def enforce(
    table: pa.Table,
    quasi_identifiers: Sequence[str],
    k: int,
    contract: Contract,
    *,
    max_suppressed: float = DEFAULT_MAX_SUPPRESSED,
) -> tuple[pa.Table, KResult]:
    """Make ``table`` (a view at the unconditional level) k-anonymous.

    While more than ``max_suppressed`` of the rows sit in groups below ``k``, the
    quasi-identifier with the most distinct values that can still be generalised is
    (age band doubled, prefecture to province, year to decade, month to year). Then the
    rows of the groups still below ``k`` are suppressed. The result says what was done.
    """
    ladders = {q: _ladder(contract, q) for q in quasi_identifiers}
    done: list[str] = []
    result = measure(table, quasi_identifiers, k)
    while result.rows_in_small_groups > max_suppressed * result.rows:
        open_ = [q for q in quasi_identifiers if ladders[q]]
        if not open_:
            break
        column = max(open_, key=lambda q: pc.count_distinct(table.column(q)).as_py())
        name, step = ladders[column].pop(0)
        position = table.schema.get_field_index(column)
        generalised = step(table.column(column))
        table = table.set_column(position, pa.field(column, generalised.type), generalised)
        done.append(f"{column}: {name}")
        result = measure(table, quasi_identifiers, k)
    suppressed = 0
    if result.small_groups:
        sizes = _group_sizes(table, quasi_identifiers)
        keep = sizes.size >= k
        suppressed = int((~keep).sum())
        table = table.filter(pa.array(keep))
        result = measure(table, quasi_identifiers, k)
    return table, KResult(
        k=result.k,
        threshold=k,
        groups=result.groups,
        small_groups=result.small_groups,
        rows=result.rows,
        rows_in_small_groups=result.rows_in_small_groups,
        suppressed_rows=suppressed,
        generalised=tuple(done),
    )


@dataclass(frozen=True)
class _Sizes:
    group: np.ndarray
    size: np.ndarray


def _group_sizes(table: pa.Table, quasi_identifiers: Sequence[str]) -> _Sizes:
    missing = [q for q in quasi_identifiers if q not in table.column_names]
    if missing:
        raise MaskingInputError(f"quasi-identifier column(s) {', '.join(missing)} not in the view")
    n = table.num_rows
    ids = np.zeros(n, dtype=np.int64)
    for name in quasi_identifiers:
        encoded = pc.dictionary_encode(table.column(name).combine_chunks())
        codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)
        ids = ids * (len(encoded.dictionary) + 1) + codes.astype(np.int64)
        ids = np.unique(ids, return_inverse=True)[1].astype(np.int64)  # keeps ids small
    _unique, group, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return _Sizes(group=group, size=counts[group])


def _ladder(contract: Contract, column: str) -> list[tuple[str, Step]]:
    """Further generalisations of a published column, by its rule at the unconditional level."""
    by_published = {f.published_name: f for f in contract.fields}
    source = by_published.get(column)
    if source is None:
        raise MaskingInputError(f"dataset {contract.name}: {column!r} is not a published column")
    spec = source.mask.at(ShareLevel.UNCONDITIONAL)
    if spec.rule is MaskRule.AGE_BAND:
        width = spec.width or 10
        steps: list[tuple[str, Step]] = []
        while width * 2 <= MAX_AGE_BAND_WIDTH:
            width *= 2
            steps.append((f"age band {width}", _rebander(width)))
        return steps
    if spec.rule is MaskRule.KEEP and "gb2260" in source.checks:
        return [("prefecture", _division(4)), ("province", _division(2))]
    if spec.rule is MaskRule.PREFECTURE:
        return [("province", _division(2))]
    if spec.rule is MaskRule.YEAR:
        return [("decade", lambda c: pc.cast(pc.multiply(pc.divide(c, 10), 10), c.type))]
    if spec.rule is MaskRule.MONTH:
        return [("year", lambda c: pc.utf8_slice_codeunits(c, 0, 4))]
    return []


def _rebander(width: int) -> Step:
    def step(column: pa.ChunkedArray) -> pa.ChunkedArray:
        lower = pc.cast(pc.struct_field(pc.extract_regex(column, r"^(?P<lo>\d+)-"), [0]), pa.int64())
        return band_labels(pc.multiply(pc.divide(lower, width), width), width)

    return step


def _division(kept: int) -> Step:
    def step(column: pa.ChunkedArray) -> pa.ChunkedArray:
        general = pc.binary_join_element_wise(pc.utf8_slice_codeunits(column, 0, kept), "0" * (6 - kept), "")
        return pc.if_else(pc.equal(pc.utf8_length(column), 6), general, column)

    return step
