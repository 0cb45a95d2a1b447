"""The Great Expectations suite of a dataset, derived from its contract alone.

Which expectation a contract word turns into, and the rule code and bilingual message a
failure is reported under, are tables here (:data:`FIELD_CHECKS`, :data:`ROW_CHECKS`,
:data:`MESSAGES`), so a new dataset needs a contract, not code. Every expectation carries
its rule code, field and messages in ``meta``; :mod:`quality.validate` reads them back.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import great_expectations as gx
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
)

from quality import expectations as hub
from quality.errors import UnknownCheckError
from schemas.contract import Contract, ContractField, FieldType

KEY_COLUMN = "_key"
"""Column the validator adds for a composite key (parts joined by :data:`KEY_SEPARATOR`)."""
KEY_SEPARATOR = "\x1f"
"""ASCII unit separator: cannot occur in a printable key part, so joined keys stay unique."""
REPEATED_KEY_COLUMN = "_key_repeated"
"""Boolean column the validator adds: the row's key occurs more than once in the whole batch."""

MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("必填字段「{field}」为空", "required field {field} is missing or empty"),
    "code_list": ("字段「{field}」的值不在代码表内", "field {field} has a value outside its code list"),
    "gb11643.format": (
        "字段「{field}」不符合公民身份号码格式（17位数字加数字或X）",
        "field {field} is not 17 digits followed by a digit or X (GB 11643)",
    ),
    "gb11643.check_digit": (
        "字段「{field}」的公民身份号码校验码错误",
        "field {field} has a wrong GB 11643 check character",
    ),
    "gb11643.birth_date": (
        "字段「{field}」中的出生日期不存在、早于1880年或晚于今天",
        "field {field} embeds a birth date that does not exist, is before 1880 or is in the future",
    ),
    "gb11643.division": (
        "字段「{field}」中的行政区划代码未知或在出生前已撤销",
        "field {field} embeds a division code that is unknown or was abolished before the birth year",
    ),
    "gb2260": (
        "字段「{field}」不是已知的行政区划代码（GB/T 2260）",
        "field {field} is not a known GB/T 2260 division code",
    ),
    "mobile_cn": (
        "字段「{field}」不是有效的手机号码",
        "field {field} is not an 11-digit mainland mobile number",
    ),
    "id_birth_date": (
        "公民身份号码中的出生日期与字段「{field}」不一致",
        "the birth date in the identity number disagrees with field {field}",
    ),
    "id_gender": (
        "公民身份号码的顺序码奇偶与字段「{field}」不一致",
        "the sequence parity of the identity number disagrees with field {field}",
    ),
    "gb32100.format": (
        "字段「{field}」不符合统一社会信用代码格式（18位代码字符，第3-8位为数字）",
        "field {field} is not 18 GB 32100 code characters with a 6-digit division part",
    ),
    "gb32100.check": (
        "字段「{field}」的统一社会信用代码校验码错误",
        "field {field} has a wrong GB 32100 check character",
    ),
    "gb32100.org_code": (
        "字段「{field}」中的组织机构代码（GB 11714）校验码错误",
        "field {field} embeds an organisation code with a wrong GB 11714 check character",
    ),
    "gb32100.division": (
        "字段「{field}」中的登记管理机关行政区划代码未知",
        "field {field} embeds an unknown division code",
    ),
    "certificate_type_code": (
        "字段「{field}」不是统一社会信用代码加3位顺序码构成的证照类型代码",
        "field {field} is not a valid social credit code followed by a 3-character sequence",
    ),
    "gb36904.format": (
        "字段「{field}」不符合电子证照标识格式（GB/T 36904）",
        "field {field} is not a GB/T 36904 certificate identifier",
    ),
    "gb36904.check": (
        "字段「{field}」的电子证照标识校验位错误",
        "field {field} has a wrong GB/T 36904 (ISO 7064 MOD 37,36) check character",
    ),
    "validity_window": (
        "有效期起始日期晚于字段「{field}」",
        "the first day of validity is after field {field}",
    ),
    "validity_status": (
        "有效期已过但字段「{field}」仍为有效",
        "field {field} says 有效 (valid) although the validity ended before today",
    ),
    "holder_code": (
        "字段「{field}」与持证主体代码类型不符（111须为公民身份号码，001须为统一社会信用代码）",
        "field {field} is not valid for its code type (111 needs a GB 11643 number, 001 a GB 32100 code)",
    ),
    "key.duplicate": (
        "主键字段「{field}」的值在本批次中出现多次",
        "key {field} occurs more than once in this batch",
    ),
    "holder_exists": (
        "字段「{field}」所指的持证主体在人口库和法人库中均不存在",
        "the holder in field {field} is in neither the shared population nor the legal-entity register",
    ),
}
"""Rule code -> (Chinese, English) message templates; they name fields, never values."""

FIELD_CHECKS: dict[str, tuple[tuple[type[ColumnMapExpectation], str], ...]] = {
    "gb11643": (
        (hub.ExpectColumnValuesToHaveGb11643Format, "gb11643.format"),
        (hub.ExpectColumnValuesToHaveGb11643CheckDigit, "gb11643.check_digit"),
        (hub.ExpectColumnValuesToHaveGb11643BirthDate, "gb11643.birth_date"),
        (hub.ExpectColumnValuesToHaveGb11643Division, "gb11643.division"),
    ),
    "gb2260": ((hub.ExpectColumnValuesToBeGb2260Code, "gb2260"),),
    "mobile_cn": ((hub.ExpectColumnValuesToBeMobileCn, "mobile_cn"),),
    "gb32100": (
        (hub.ExpectColumnValuesToHaveGb32100Format, "gb32100.format"),
        (hub.ExpectColumnValuesToHaveGb32100Check, "gb32100.check"),
        (hub.ExpectColumnValuesToHaveGb32100OrgCode, "gb32100.org_code"),
        (hub.ExpectColumnValuesToHaveGb32100Division, "gb32100.division"),
    ),
    "certificate_type_code": ((hub.ExpectColumnValuesToBeCertificateTypeCode, "certificate_type_code"),),
    "gb36904": (
        (hub.ExpectColumnValuesToHaveGb36904Format, "gb36904.format"),
        (hub.ExpectColumnValuesToHaveGb36904Check, "gb36904.check"),
    ),
}
"""Contract field ``checks`` name -> expectations it expands to, each with its rule code."""

ROW_CHECKS: dict[str, type[ColumnPairMapExpectation]] = {
    "id_birth_date": hub.ExpectIdNumberToMatchBirthDate,
    "id_gender": hub.ExpectIdNumberToMatchGender,
    "validity_window": hub.ExpectValidityWindowToBeOrdered,
    "validity_status": hub.ExpectStatusToAgreeWithValidity,
    "holder_code": hub.ExpectHolderCodeToMatchItsType,
}
"""Contract ``row_checks`` rule -> pair expectation over its two fields (column_A, column_B)."""

REFERENCE_CHECKS: frozenset[str] = frozenset({"holder_exists"})
"""Row checks that read other shared datasets: not expectations of the suite, but run by
:mod:`quality.references` in the pipeline's validate step, which has the shared tables."""

REPORTED_FIELD: dict[str, int] = {"holder_code": 0}
"""Which of a row check's two fields a violation names; the second unless listed here.

The field named is the one a correction request asks the source to fix: for the identity
number checks that is the other field (the number has its own rules), for ``holder_code``
the code itself, whose type is checked against the code list on its own."""

_NEEDS_TODAY = (
    hub.ExpectColumnValuesToHaveGb11643BirthDate,
    hub.ExpectStatusToAgreeWithValidity,
    hub.ExpectHolderCodeToMatchItsType,
)


def key_column(contract: Contract) -> str:
    """Column holding the key: a single string key field itself, else :data:`KEY_COLUMN`.

    Other keys are encoded as text the same way by the validator (pyarrow) and the
    duplicate scan (DuckDB): integers as digits, dates as days and timestamps as
    microseconds since 1970, parts joined by :data:`KEY_SEPARATOR`.
    """
    (first, *rest) = contract.key_fields
    return first.name if not rest and first.type is FieldType.STRING else KEY_COLUMN


def _meta(rule: str, field: str) -> dict[str, Any]:
    zh, en = MESSAGES[rule]
    return {
        "rule": rule,
        "field": field,
        "message_zh": zh.format(field=field),
        "message_en": en.format(field=field),
    }


def _field_expectations(field: ContractField, today: date) -> list[Expectation]:
    found: list[Expectation] = []
    if field.required:
        found.append(
            gx.expectations.ExpectColumnValuesToNotBeNull(
                column=field.name, meta=_meta("required", field.name)
            )
        )
        if field.type is FieldType.STRING:
            found.append(
                hub.ExpectColumnValuesToNotBeBlank(column=field.name, meta=_meta("required", field.name))
            )
    if field.values is not None:
        found.append(
            hub.ExpectColumnValuesToBeInCodeList(
                column=field.name, value_set=list(field.values), meta=_meta("code_list", field.name)
            )
        )
    for check in field.checks:
        for expectation_class, rule in FIELD_CHECKS[check]:
            extra: dict[str, Any] = {"today": today.isoformat()} if expectation_class in _NEEDS_TODAY else {}
            found.append(expectation_class(column=field.name, meta=_meta(rule, field.name), **extra))
    return found


def _unknown_checks(contract: Contract) -> list[str]:
    problems = [
        f"field {f.name!r} names unknown check {c!r}"
        for f in contract.fields
        for c in f.checks
        if c not in FIELD_CHECKS
    ]
    for row_check in contract.row_checks:
        if row_check.rule not in ROW_CHECKS and row_check.rule not in REFERENCE_CHECKS:
            problems.append(f"unknown row check {row_check.rule!r}")
        elif len(row_check.fields) != 2:
            problems.append(
                f"row check {row_check.rule!r} needs exactly 2 fields, got {len(row_check.fields)}"
            )
    return problems


def build_suite(contract: Contract, *, today: date) -> gx.ExpectationSuite:
    """The suite of ``contract`` data; the same for every chunk of every batch judged on ``today``.

    ``today`` bounds birth dates and decides which certificates have expired. Key
    uniqueness across the whole batch is one expectation on :data:`REPEATED_KEY_COLUMN`,
    which the validator fills from the batch's duplicate-key scan: every row whose key
    occurs more than once is rejected, since the hub cannot tell which copy the source
    meant, and no key value is written into the suite (nor into its Data Docs).
    """
    problems = _unknown_checks(contract)
    if problems:
        row_checks = sorted([*ROW_CHECKS, *REFERENCE_CHECKS])
        known = ", ".join(sorted(FIELD_CHECKS)) + "; row checks: " + ", ".join(row_checks)
        raise UnknownCheckError(
            f"contract {contract.name} {contract.version}: {'; '.join(problems)} (known checks: {known})"
        )
    found: list[Expectation] = []
    for field in contract.fields:
        found += _field_expectations(field, today)
    for row_check in contract.row_checks:
        if row_check.rule in REFERENCE_CHECKS:
            continue
        first, second = row_check.fields
        expectation_class = ROW_CHECKS[row_check.rule]
        reported = row_check.fields[REPORTED_FIELD.get(row_check.rule, 1)]
        extra: dict[str, Any] = {"today": today.isoformat()} if expectation_class in _NEEDS_TODAY else {}
        found.append(
            expectation_class(column_A=first, column_B=second, meta=_meta(row_check.rule, reported), **extra)
        )
    found.append(
        hub.ExpectKeyToOccurOnceInBatch(
            column=REPEATED_KEY_COLUMN, meta=_meta("key.duplicate", ",".join(contract.keys))
        )
    )
    return gx.ExpectationSuite(name=f"{contract.name}-{contract.version}", expectations=found)
