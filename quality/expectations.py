"""Great Expectations custom expectations over the checks in :mod:`quality.checks`.

Each single-column rule is a ``ColumnMapMetricProvider`` (registered when this module is
imported) plus a ``ColumnMapExpectation`` naming it; the cross-field rules are
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


class ColumnValuesGb32100Format(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb32100_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_format, column)


class ColumnValuesGb32100Check(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb32100_check"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_check, column)


class ColumnValuesGb32100OrgCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb32100_org_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_org_code, column)


class ColumnValuesGb32100Division(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb32100_division"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_division, column)


class ColumnValuesCertificateTypeCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_certificate_type_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.certificate_type_code, column)


class ColumnValuesGb36904Format(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb36904_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb36904_format, column)


class ColumnValuesGb36904Check(ColumnMapMetricProvider):
    condition_metric_name = "column_values.hub_gb36904_check"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb36904_check, column)


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


class ColumnPairValidityWindow(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.hub_validity_window"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _series(checks.validity_window_ordered(_arrow(column_A), _arrow(column_B)), column_A)


class ColumnPairValidityStatus(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.hub_validity_status"
    condition_value_keys = ("today",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, today: str, **kwargs: Any) -> pd.Series:
        result = checks.validity_status_consistent(
            _arrow(column_A), _arrow(column_B), date.fromisoformat(today)
        )
        return _series(result, column_A)


class ColumnPairHolderCode(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.hub_holder_code"
    condition_value_keys = ("today",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, today: str, **kwargs: Any) -> pd.Series:
        result = checks.holder_code_matches(_arrow(column_A), _arrow(column_B), date.fromisoformat(today))
        return _series(result, column_A)


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


class ExpectColumnValuesToHaveGb32100Format(ColumnMapExpectation):
    """Unified social credit codes are 18 code characters with a 6-digit division part."""

    map_metric = "column_values.hub_gb32100_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100Check(ColumnMapExpectation):
    """Unified social credit codes carry the right GB 32100 (mod 31) check character."""

    map_metric = "column_values.hub_gb32100_check"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100OrgCode(ColumnMapExpectation):
    """The embedded GB 11714 organisation code carries the right check character."""

    map_metric = "column_values.hub_gb32100_org_code"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100Division(ColumnMapExpectation):
    """The embedded division part is a GB/T 2260 code or the central-level 100000."""

    map_metric = "column_values.hub_gb32100_division"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeCertificateTypeCode(ColumnMapExpectation):
    """Values are a valid unified social credit code followed by a 3-character sequence."""

    map_metric = "column_values.hub_certificate_type_code"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb36904Format(ColumnMapExpectation):
    """Values are dot-separated GB/T 36904 electronic certificate identifiers."""

    map_metric = "column_values.hub_gb36904_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb36904Check(ColumnMapExpectation):
    """GB/T 36904 identifiers carry the right ISO 7064 MOD 37,36 check character."""

    map_metric = "column_values.hub_gb36904_check"
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


class ExpectValidityWindowToBeOrdered(ColumnPairMapExpectation):
    """column_A (valid from) is not after column_B (valid until).

    A missing end means long-term validity (长期有效) and passes, as does a missing start.
    """

    ignore_row_if: IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.hub_validity_window"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectStatusToAgreeWithValidity(ColumnPairMapExpectation):
    """column_B (status) is not 有效 when column_A (valid until) is before ``today`` (ISO string)."""

    today: str
    ignore_row_if: IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.hub_validity_status"
    success_keys = ("column_A", "column_B", "today", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectHolderCodeToMatchItsType(ColumnPairMapExpectation):
    """column_A (holder code) is valid for column_B (type): 111 GB 11643, 001 GB 32100.

    ``today`` bounds birth dates in identity numbers, as for the population's id_number.
    """

    today: str
    ignore_row_if: IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.hub_holder_code"
    success_keys = ("column_A", "column_B", "today", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")
