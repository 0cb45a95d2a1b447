"""Great Expectations custom expectations over the checks in :mod:`quality.checks`.

Each single-column rule is a ``ColumnMapMetricProvider`` (registered when this module is
imported) plus a ``ColumnMapExpectation`` naming it; the cross-field rules are
``ColumnPairMapMetricProvider`` / ``ColumnPairMapExpectation`` pairs. Only the pandas
engine is implemented: chunks arrive as Arrow tables and are validated in memory.

The validator hands GE an Arrow-backed frame, so a metric gets its column without a copy
and passes it to the vectorised Arrow code as it is. Nulls are not filtered out first
(``filter_column_isnull = False``, ``ignore_row_if = "neither"``): every check here passes
a missing value (that is the ``required`` rule's concern), and filtering would copy the
whole frame once per expectation, the largest cost of a suite on a million rows.

Each expectation renders in Data Docs as one line in Chinese and English (:class:`_Described`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

from quality import checks

ArrowArray: TypeAlias = pa.Array | pa.ChunkedArray


def _arrow(column: pd.Series) -> ArrowArray:
    """The column as Arrow: zero-copy for the Arrow-backed frames the validator builds."""
    values: ArrowArray = pa.array(column, from_pandas=True)
    return values


def _series(result: pa.BooleanArray, like: pd.Series) -> pd.Series:
    return pd.Series(result.to_numpy(zero_copy_only=False), index=like.index, dtype=bool)


def _single(check: Callable[[ArrowArray], pa.BooleanArray], column: pd.Series) -> pd.Series:
    return _series(check(_arrow(column)), column)


# --- metrics -------------------------------------------------------------------------


class _ColumnMetric(ColumnMapMetricProvider):
    """Base of the hub's column metrics: they judge missing values themselves (as passing)."""

    filter_column_isnull = False


class ColumnValuesNotBlank(_ColumnMetric):
    condition_metric_name = "column_values.hub_not_blank"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        values = _arrow(column)
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), False)
        return _series(pc.invert(blank), column)


class ColumnValuesInCodeList(_ColumnMetric):
    condition_metric_name = "column_values.hub_in_code_list"
    condition_value_keys = ("value_set",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, value_set: list[str], **kwargs: Any) -> pd.Series:
        values = _arrow(column)
        inside = pc.is_in(values, value_set=pa.array(value_set, type=values.type))
        return _series(pc.or_(pc.is_null(values), inside), column)


class ColumnValuesOnceInBatch(_ColumnMetric):
    """Reads the flag column the validator sets from the batch-wide duplicate-key scan."""

    condition_metric_name = "column_values.hub_once_in_batch"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        repeated = np.asarray(column.to_numpy(dtype=bool, na_value=False), dtype=bool)
        return pd.Series(~repeated, index=column.index, dtype=bool)


class ColumnValuesGb11643Format(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb11643_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_format, column)


class ColumnValuesGb11643CheckDigit(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb11643_check_digit"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_check_digit, column)


class ColumnValuesGb11643BirthDate(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb11643_birth_date"
    condition_value_keys = ("today",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, today: str, **kwargs: Any) -> pd.Series:
        return _series(checks.gb11643_birth_date(_arrow(column), date.fromisoformat(today)), column)


class ColumnValuesGb11643Division(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb11643_division"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb11643_division, column)


class ColumnValuesGb2260(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb2260"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb2260, column)


class ColumnValuesMobileCn(_ColumnMetric):
    condition_metric_name = "column_values.hub_mobile_cn"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.mobile_cn, column)


class ColumnValuesGb32100Format(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb32100_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_format, column)


class ColumnValuesGb32100Check(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb32100_check"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_check, column)


class ColumnValuesGb32100OrgCode(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb32100_org_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_org_code, column)


class ColumnValuesGb32100Division(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb32100_division"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb32100_division, column)


class ColumnValuesCertificateTypeCode(_ColumnMetric):
    condition_metric_name = "column_values.hub_certificate_type_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.certificate_type_code, column)


class ColumnValuesGb36904Format(_ColumnMetric):
    condition_metric_name = "column_values.hub_gb36904_format"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _single(checks.gb36904_format, column)


class ColumnValuesGb36904Check(_ColumnMetric):
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


_CONFIGURATIONS: dict[int, tuple[Any, Any]] = {}
"""Expectation instance id -> (the instance, its configuration); see :class:`_Described`."""
_CONFIGURATIONS_KEPT = 4096


class _Described:
    """Base of the hub's expectations.

    Renders the expectation in Data Docs as ``_text`` (Chinese, English) after its
    column(s), and computes ``configuration`` once per instance: GE rebuilds it from the
    pydantic fields on every access, about a hundred times per expectation per validation
    run, which was half of GE's fixed cost per chunk. The cache holds the instance itself,
    so an id is never reused while it is cached; setting a field forgets the entry.
    """

    _text: ClassVar[tuple[str, str]] = ("", "")

    @property
    def configuration(self) -> Any:
        hit = _CONFIGURATIONS.get(id(self))
        if hit is not None and hit[0] is self:
            return hit[1]
        config = super().configuration  # type: ignore[misc]
        if len(_CONFIGURATIONS) >= _CONFIGURATIONS_KEPT:
            _CONFIGURATIONS.clear()
        _CONFIGURATIONS[id(self)] = (self, config)
        return config

    def __setattr__(self, name: str, value: Any) -> None:
        _CONFIGURATIONS.pop(id(self), None)
        super().__setattr__(name, value)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        config = configuration if configuration is not None else getattr(result, "expectation_config", None)
        params: dict[str, Any] = dict(config.kwargs) if config is not None else {}
        rule = ((config.meta or {}) if config is not None else {}).get("rule", "")
        subject = "$column_A, $column_B" if "column_A" in params else "$column"
        zh, en = cls._text
        params["rule"] = rule
        template = f"{subject}: {zh} / {en}" + (" [$rule]" if rule else "")
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": template,
                    "params": params,
                    "styling": (runtime_configuration or {}).get("styling"),
                },
            )
        ]


class ExpectColumnValuesToNotBeBlank(_Described, ColumnMapExpectation):
    """Values are not empty or whitespace only (nulls are ExpectColumnValuesToNotBeNull's)."""

    _text = ("不为空字符串", "not empty or blank")
    map_metric = "column_values.hub_not_blank"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeInCodeList(_Described, ColumnMapExpectation):
    """Values are codes of the field's code list (``value_set``); missing values pass.

    GE's own ``ExpectColumnValuesToBeInSet`` filters the nulls out of the whole frame
    first, a copy of every column per code list; this one judges the column as it is.
    """

    _text = ("取值在代码表内", "a code of its code list")
    value_set: list[str]
    map_metric = "column_values.hub_in_code_list"
    success_keys = ("value_set", "mostly")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        config = configuration if configuration is not None else getattr(result, "expectation_config", None)
        params: dict[str, Any] = dict(config.kwargs) if config is not None else {}
        codes = list(params.pop("value_set", []) or [])
        params.update({f"v__{i}": code for i, code in enumerate(codes)})
        params["rule"] = ((config.meta or {}) if config is not None else {}).get("rule", "")
        listed = " ".join(f"$v__{i}" for i in range(len(codes)))
        zh, en = cls._text
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": f"$column: {zh} / {en}: {listed} [$rule]",
                    "params": params,
                    "styling": (runtime_configuration or {}).get("styling"),
                },
            )
        ]


class ExpectKeyToOccurOnceInBatch(_Described, ColumnMapExpectation):
    """No other row of the whole batch has this row's key.

    ``column`` is the flag the validator sets from the duplicate-key scan of the staged
    batch (:func:`quality.validate.find_duplicate_keys`): a chunk alone cannot see the
    rows of other chunks, and the key values themselves stay out of the suite.
    """

    _text = ("主键在整个批次中唯一", "the key occurs once in the whole batch")
    map_metric = "column_values.hub_once_in_batch"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643Format(_Described, ColumnMapExpectation):
    """Resident identity numbers are 17 digits then a digit or X (GB 11643-1999)."""

    _text = ("公民身份号码为17位数字加数字或X（GB 11643）", "17 digits then a digit or X (GB 11643)")
    map_metric = "column_values.hub_gb11643_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643CheckDigit(_Described, ColumnMapExpectation):
    """Resident identity numbers carry the right ISO 7064 MOD 11-2 check character."""

    _text = ("公民身份号码校验码正确", "the GB 11643 (ISO 7064 MOD 11-2) check character is right")
    map_metric = "column_values.hub_gb11643_check_digit"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb11643BirthDate(_Described, ColumnMapExpectation):
    """The embedded birth date is a real date from 1880 up to ``today`` (ISO string).

    ``today`` is a parameter, not the clock, so that a replayed batch is judged as it was.
    """

    _text = ("出生日期真实存在且不晚于 $today", "the embedded birth date exists and is not after $today")
    today: str
    map_metric = "column_values.hub_gb11643_birth_date"
    success_keys = ("today", "mostly")


class ExpectColumnValuesToHaveGb11643Division(_Described, ColumnMapExpectation):
    """The embedded division code is a GB/T 2260 code not abolished before the birth year."""

    _text = (
        "行政区划代码有效且出生前未撤销（港澳台居民居住证号码另为一类）",
        "the division code is known and not abolished before the birth year (HK/Macao/Taiwan permits apart)",
    )
    map_metric = "column_values.hub_gb11643_division"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeGb2260Code(_Described, ColumnMapExpectation):
    """Values are GB/T 2260 administrative division codes."""

    _text = ("行政区划代码（GB/T 2260）", "a GB/T 2260 division code")
    map_metric = "column_values.hub_gb2260"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeMobileCn(_Described, ColumnMapExpectation):
    """Values are mainland mobile numbers (11 digits, 13-19 prefix)."""

    _text = ("11位手机号码", "an 11-digit mainland mobile number")
    map_metric = "column_values.hub_mobile_cn"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100Format(_Described, ColumnMapExpectation):
    """Unified social credit codes are 18 code characters with a 6-digit division part."""

    _text = ("统一社会信用代码为18位代码字符（GB 32100）", "18 GB 32100 code characters")
    map_metric = "column_values.hub_gb32100_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100Check(_Described, ColumnMapExpectation):
    """Unified social credit codes carry the right GB 32100 (mod 31) check character."""

    _text = ("统一社会信用代码校验码正确", "the GB 32100 check character is right")
    map_metric = "column_values.hub_gb32100_check"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100OrgCode(_Described, ColumnMapExpectation):
    """The embedded GB 11714 organisation code carries the right check character."""

    _text = ("组织机构代码校验码正确（GB 11714）", "the embedded GB 11714 organisation code checks")
    map_metric = "column_values.hub_gb32100_org_code"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb32100Division(_Described, ColumnMapExpectation):
    """The embedded division part is a GB/T 2260 code or the central-level 100000."""

    _text = ("登记管理机关行政区划代码有效", "the embedded division code is known")
    map_metric = "column_values.hub_gb32100_division"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeCertificateTypeCode(_Described, ColumnMapExpectation):
    """Values are a valid unified social credit code followed by a 3-character sequence."""

    _text = ("证照类型代码为统一社会信用代码加3位顺序码", "a valid credit code plus a 3-character sequence")
    map_metric = "column_values.hub_certificate_type_code"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb36904Format(_Described, ColumnMapExpectation):
    """Values are dot-separated GB/T 36904 electronic certificate identifiers."""

    _text = ("电子证照标识格式（GB/T 36904）", "a GB/T 36904 certificate identifier")
    map_metric = "column_values.hub_gb36904_format"
    success_keys = ("mostly",)


class ExpectColumnValuesToHaveGb36904Check(_Described, ColumnMapExpectation):
    """GB/T 36904 identifiers carry the right ISO 7064 MOD 37,36 check character."""

    _text = ("电子证照标识校验位正确", "the ISO 7064 MOD 37,36 check character is right")
    map_metric = "column_values.hub_gb36904_check"
    success_keys = ("mostly",)


IgnoreRowIf = Literal["both_values_are_missing", "either_value_is_missing", "neither"]


class ExpectIdNumberToMatchBirthDate(_Described, ColumnPairMapExpectation):
    """column_A (identity number) embeds the date in column_B (birth date).

    Rows with either value missing pass: absence is the ``required`` rule's concern.
    """

    _text = ("公民身份号码中的出生日期与出生日期一致", "the identity number embeds the birth date")
    ignore_row_if: IgnoreRowIf = "neither"
    map_metric = "column_pair_values.hub_id_birth_date"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectIdNumberToMatchGender(_Described, ColumnPairMapExpectation):
    """The sequence parity of column_A (identity number) agrees with column_B (gender code)."""

    _text = ("公民身份号码顺序码奇偶与性别一致", "the sequence parity agrees with the gender")
    ignore_row_if: IgnoreRowIf = "neither"
    map_metric = "column_pair_values.hub_id_gender"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectValidityWindowToBeOrdered(_Described, ColumnPairMapExpectation):
    """column_A (valid from) is not after column_B (valid until).

    A missing end means long-term validity (长期有效) and passes, as does a missing start.
    """

    _text = ("有效期起始不晚于截止", "validity starts no later than it ends")
    ignore_row_if: IgnoreRowIf = "neither"
    map_metric = "column_pair_values.hub_validity_window"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectStatusToAgreeWithValidity(_Described, ColumnPairMapExpectation):
    """column_B (status) is not 有效 when column_A (valid until) is before ``today`` (ISO string)."""

    _text = ("有效期截止早于 $today 的证照状态不为有效", "not 有效 (valid) when validity ended before $today")
    today: str
    ignore_row_if: IgnoreRowIf = "neither"
    map_metric = "column_pair_values.hub_validity_status"
    success_keys = ("column_A", "column_B", "today", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")


class ExpectHolderCodeToMatchItsType(_Described, ColumnPairMapExpectation):
    """column_A (holder code) is valid for column_B (type): 111 GB 11643, 001 GB 32100.

    ``today`` bounds birth dates in identity numbers, as for the population's id_number.
    """

    _text = (
        "持证主体代码符合其类型（111 公民身份号码，001 统一社会信用代码）",
        "the holder code is valid for its type (111 GB 11643, 001 GB 32100)",
    )
    today: str
    ignore_row_if: IgnoreRowIf = "neither"
    map_metric = "column_pair_values.hub_holder_code"
    success_keys = ("column_A", "column_B", "today", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")
