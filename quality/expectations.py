"""Great Expectations custom expectations over the checks in :mod:`quality.checks`.

Each single-column rule is a ``ColumnMapMetricProvider`` (registered when this module is
imported) plus a ``ColumnMapExpectation`` naming it; the two cross-field rules are
``ColumnPairMapMetricProvider`` / ``ColumnPairMapExpectation`` pairs. Only the pandas
engine is implemented: chunks arrive as Arrow tables and are validated in memory.

GE hands the metric a pandas Series with nulls already filtered out; it is converted to
Arrow (cheap for Arrow-backed pandas strings) so the same vectorised code serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar, Literal

import pandas as pd
import pyarrow as pa
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)

from quality import checks


def _arrow(column: pd.Series) -> pa.Array:
    return pa.array(column, from_pandas=True)


def _series(result: pa.BooleanArray, like: pd.Series) -> pd.Series:
    return pd.Series(result.to_numpy(zero_copy_only=False), index=like.index, dtype=bool)


def _single(check: Callable[[pa.Array], pa.BooleanArray], column: pd.Series) -> pd.Series:
    return _series(check(_arrow(column)), column)


# --- metrics -------------------------------------------------------------------------


class ColumnValuesNotBlank(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_not_blank"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return column.astype(str).str.strip() != ""


class ColumnValuesGb11643Format(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb11643_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_format, column)


class ColumnValuesGb11643CheckDigit(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb11643_check_digit"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_check_digit, column)


class ColumnValuesGb11643BirthDate(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb11643_birth_date"
    condition_value_keys = ("today",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, today: str, **kwargs: Any) -> pd.Series:
        return _series(checks.gb11643_birth_date(_arrow(column), date.fromisoformat(today)), column)


class ColumnValuesGb11643Division(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb11643_division"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_division, column)


class ColumnValuesGb2260(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb2260"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb2260, column)


class ColumnValuesMobileCn(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_mobile_cn"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.mobile_cn, column)


class ColumnPairIdBirthDate(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.hub_id_birth_date"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _series(checks.id_birth_date_matches(_arrow(column_A), _arrow(column_B)), column_A)


class ColumnPairIdGender(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.hub_id_gender"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _series(checks.id_gender_matches(_arrow(column_A), _arrow(column_B)), column_A)


# --- expectations --------------------------------------------------------------------


class ExpectColumnValuesToNotBeBlank(ColumnMapExpectation):
    """Values are not empty or whitespace only (nulls are ExpectColumnValuesToNotBeNull's)."""

    map_metric = "column_values.hub_not_blank"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643Format(ColumnMapExpectation):
    """Resident identity numbers are 17 digits then a digit or X (GB 11643-1999)."""

    map_metric = "column_values.hub_gb11643_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643CheckDigit(ColumnMapExpectation):
    """Resident identity numbers carry the right ISO 7064 MOD 11-2 check character."""

    map_metric = "column_values.hub_gb11643_check_digit"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643BirthDate(ColumnMapExpectation):
    """The embedded birth date is a real date from 1880 up to ``today`` (ISO string).

    ``today`` is a parameter, not the clock, so that a replayed batch is judged as it was.
    """

    today: str
    map_metric = "column_values.hub_gb11643_birth_date"
    success_keys = ("today", "mostly")


class ExpectColumnValuesToHaveGb11643Division(ColumnMapExpectation):
    """The embedded division code is a GB/T 2260 code not abolished before the birth year."""

    map_metric = "column_values.hub_gb11643_division"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeGb2260Code(ColumnMapExpectation):
    """Values are GB/T 2260 administrative division codes."""

    map_metric = "column_values.hub_gb2260"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeMobileCn(ColumnMapExpectation):
    """Values are mainland mobile numbers (11 digits, 13-19 prefix)."""

    map_metric = "column_values.hub_mobile_cn"
    success_keys = ("mostly",)


IgnoreRowIf = Literal["both_values_are_missing", "either_value_is_missing", "neither"]


class ExpectIdNumberToMatchBirthDate(ColumnPairMapExpectation):
    """column_A (identity number) embeds the date in column_B (birth date).

    Rows with either value missing are ignored: absence is the ``required`` rule's concern.
    """

    ignore_row_if: IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.hub_id_birth_date"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectIdNumberToMatchGender(ColumnPairMapExpectation):
    """The sequence parity of column_A (identity number) agrees with column_B (gender code)."""

    ignore_row_if: IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.hub_id_gender"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")
