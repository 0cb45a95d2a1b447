"""Dataset contracts: one YAML file per shared dataset, everything else derived from it.

A contract names the fields (type, required, bilingual description, sensitivity class,
quality checks, masking rule), the key, the owner department and the share attribute.
From it come the canonical Arrow schema records arrive in, the published (masked)
Arrow schema, the Iceberg schema of the shared table and the JSON schema of Kafka
messages, so that adding a dataset is adding a file, not code.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.errors import ContractError

CONTRACT_DIR = Path(__file__).resolve().parent
BATCH_ID_COLUMN = "_batch_id"
"""Column added to every published row: which batch registered it (lineage, replay)."""


class FieldType(StrEnum):
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"
    INTEGER = "integer"
    DECIMAL = "decimal"

    def arrow(self) -> pa.DataType:
        return _ARROW_TYPES[self]


_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STRING: pa.string(),
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us"),
    FieldType.INTEGER: pa.int64(),
    FieldType.DECIMAL: pa.decimal128(20, 4),
}
"""``decimal`` is 20 digits with 4 after the point: amounts such as registered capital in
万元 are recorded to 4 places (one yuan = 0.0001 万元), and 16 integer digits hold any
amount a register keeps without the rounding a float would bring."""


class Sensitivity(StrEnum):
    """Sensitivity class of a field, from least to most protected."""

    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE_PERSONAL = "sensitive_personal"


class ShareLevel(StrEnum):
    """Who receives a view: the three share levels a field's masking can differ by.

    The shared Iceberg tables and the Kafka topics hold the ``conditional`` level (what a
    granted department receives); ``unconditional`` is the view any department may read
    and ``steward`` the one data stewards work with.
    """

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    STEWARD = "steward"


DEFAULT_LEVEL = ShareLevel.CONDITIONAL
"""Levels a per-level mask leaves out take the conditional rule: it is the one every
contract must state, and the level the shared tables hold."""


class MaskRule(StrEnum):
    """Masking rules a contract may name; :mod:`masking.rules` implements each one."""

    KEEP = "keep"
    TOKEN = "token"
    MASK_KEEP = "mask_keep"
    MASK_NAME = "mask_name"
    MASK_MOBILE = "mask_mobile"
    MASK_ID = "mask_id"
    MASK_ADDRESS = "mask_address"
    YEAR = "year"
    MONTH = "month"
    AGE_BAND = "age_band"
    PREFECTURE = "prefecture"
    PROVINCE = "province"
    ENCRYPT = "encrypt"
    NULL = "null"

    def output_type(self, source: FieldType) -> pa.DataType:
        """Arrow type of the published column; raises if the rule does not fit the field."""
        allowed = _RULE_INPUTS[self]
        if allowed is not None and source not in allowed:
            raise ValueError(f"rule {self.value!r} cannot apply to a {source.value} field")
        if self is MaskRule.YEAR:
            return pa.int32()
        if self in (MaskRule.KEEP, MaskRule.NULL):
            return source.arrow()
        return pa.string()


_STRING = frozenset({FieldType.STRING})
_DATES = frozenset({FieldType.DATE, FieldType.TIMESTAMP})
_RULE_INPUTS: dict[MaskRule, frozenset[FieldType] | None] = {
    MaskRule.KEEP: None,
    MaskRule.NULL: None,
    MaskRule.TOKEN: _STRING,
    MaskRule.MASK_KEEP: _STRING,
    MaskRule.MASK_NAME: _STRING,
    MaskRule.MASK_MOBILE: _STRING,
    MaskRule.MASK_ID: _STRING,
    MaskRule.MASK_ADDRESS: _STRING,
    MaskRule.YEAR: _DATES,
    MaskRule.MONTH: _DATES,
    MaskRule.AGE_BAND: _DATES,
    MaskRule.PREFECTURE: _STRING,
    MaskRule.PROVINCE: _STRING,
    MaskRule.ENCRYPT: _STRING,
}

RULE_PARAMS: dict[MaskRule, frozenset[str]] = {
    MaskRule.MASK_KEEP: frozenset({"first", "last"}),
    MaskRule.MASK_NAME: frozenset(),
    MaskRule.MASK_MOBILE: frozenset({"first", "last"}),
    MaskRule.MASK_ID: frozenset({"first", "last"}),
    MaskRule.AGE_BAND: frozenset({"width", "reference"}),
    MaskRule.TOKEN: frozenset({"only_prefixes"}),
}
"""Parameters each rule takes; any other parameter is a contract error."""
_REQUIRED_PARAMS: dict[MaskRule, frozenset[str]] = {
    MaskRule.MASK_KEEP: frozenset({"first", "last"}),
    MaskRule.AGE_BAND: frozenset({"reference"}),
}
"""``age_band`` needs its reference date stated: ages computed against "today" would give a
different view every day and make a batch impossible to reproduce."""


class RuleSpec(BaseModel):
    """One rule with its parameters, as a contract names it for one share level.

    Parameters: ``first`` / ``last`` (characters kept at each end by ``mask_keep``,
    ``mask_mobile``, ``mask_id``; the latter two default to the conventions 3+4 and 6+4),
    ``width`` (years per ``age_band``, default 10) and ``reference`` (the date ages are
    computed at), ``only_prefixes`` (``token`` only values starting with one of these
    prefixes, the others are kept: an individual business's credit code identifies its
    operator, a company's does not).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: MaskRule
    first: int | None = Field(default=None, ge=0, le=64)
    last: int | None = Field(default=None, ge=0, le=64)
    width: int | None = Field(default=None, ge=1, le=100)
    reference: date | None = None
    only_prefixes: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _params_fit(self) -> RuleSpec:
        allowed = RULE_PARAMS.get(self.rule, frozenset())
        given = {name for name in _PARAM_NAMES if getattr(self, name) is not None}
        problems = [
            f"rule {self.rule.value!r} takes no parameter {name!r}" for name in sorted(given - allowed)
        ]
        problems += [
            f"rule {self.rule.value!r} needs parameter {name!r}"
            for name in sorted(_REQUIRED_PARAMS.get(self.rule, frozenset()) - given)
        ]
        if self.only_prefixes is not None and (not self.only_prefixes or not all(self.only_prefixes)):
            problems.append("'only_prefixes' must list non-empty prefixes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def params(self) -> dict[str, Any]:
        """The parameters given, by name (what :mod:`masking.rules` receives as keywords)."""
        return {name: getattr(self, name) for name in _PARAM_NAMES if getattr(self, name) is not None}


_PARAM_NAMES = ("first", "last", "width", "reference", "only_prefixes")


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str


class Mask(BaseModel):
    """A field's masking: one rule for every level, or one rule per share level.

    Single form ``{rule: token, as: person_token}`` (plus the rule's parameters) applies the
    same rule at every level. Per-level form ``{as: birth_year, conditional: {rule: year},
    unconditional: {rule: age_band, reference: 2025-01-01}, steward: {rule: keep}}``:
    ``conditional`` is required, the other levels default to it. The published name is
    the same at every level, so a consumer's column does not change name with its grant.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    as_: str | None = Field(default=None, alias="as")
    unconditional: RuleSpec
    conditional: RuleSpec
    steward: RuleSpec

    @model_validator(mode="before")
    @classmethod
    def _levels(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        data = dict(raw)
        alias = {k: data.pop(k) for k in ("as", "as_") if k in data}
        levels = [level.value for level in ShareLevel]
        if "rule" in data:
            mixed = sorted(set(data) & set(levels))
            if mixed:
                raise ValueError(
                    f"give either 'rule' or per-level rules, not both (found {', '.join(mixed)})"
                )
            try:
                spec = RuleSpec.model_validate(data)
            except ValidationError as exc:
                raise ValueError(_problems(exc)) from None
            return {**alias, **{level: spec for level in levels}}
        if DEFAULT_LEVEL.value not in data:
            raise ValueError("needs 'rule', or per-level rules including 'conditional'")
        return {
            **alias,
            **{level: data.get(level, data[DEFAULT_LEVEL.value]) for level in levels},
            **{k: v for k, v in data.items() if k not in levels},
        }

    def at(self, level: ShareLevel | str = DEFAULT_LEVEL) -> RuleSpec:
        """The rule applied for a share level."""
        return getattr(self, ShareLevel(level).value)

    @property
    def rule(self) -> MaskRule:
        """The conditional rule: what the shared tables hold."""
        return self.conditional.rule

    @property
    def specs(self) -> tuple[RuleSpec, ...]:
        return (self.unconditional, self.conditional, self.steward)


class ContractField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    required: bool = False
    description: Text
    sensitivity: Sensitivity
    checks: tuple[str, ...] = ()
    values: tuple[str, ...] | None = None
    mask: Mask

    @property
    def published_name(self) -> str:
        return self.mask.as_ or self.name

    @property
    def published_type(self) -> pa.DataType:
        return self.published_type_at(DEFAULT_LEVEL)

    def published_type_at(self, level: ShareLevel | str) -> pa.DataType:
        """Arrow type of the published column at a share level."""
        return self.mask.at(level).rule.output_type(self.type)


class RowCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    fields: tuple[str, ...]


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str


class UpdateCycle(StrEnum):
    """Update cycles (更新周期) of the catalogue compilation guide; a contract names one."""

    REAL_TIME = "real_time"
    DAILY = "daily"
    WEEKLY = "weekly"
    TEN_DAYS = "ten_days"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"

    @property
    def zh(self) -> str:
        return _CYCLE_ZH[self]


_CYCLE_ZH = {
    UpdateCycle.REAL_TIME: "实时",
    UpdateCycle.DAILY: "每日",
    UpdateCycle.WEEKLY: "每周",
    UpdateCycle.TEN_DAYS: "每旬",
    UpdateCycle.MONTHLY: "每月",
    UpdateCycle.QUARTERLY: "每季度",
    UpdateCycle.YEARLY: "每年",
}


class ShareMethod(StrEnum):
    """How consumers receive a shared resource (共享方式)."""

    SYSTEM_INTERFACE = "system_interface"
    ONLINE_QUERY = "online_query"
    ONLINE_BROWSING = "online_browsing"
    SERVICE_CALL = "service_call"
    DOWNLOAD = "download"
    COPY = "copy"

    @property
    def zh(self) -> str:
        return _METHOD_ZH[self]


_METHOD_ZH = {
    ShareMethod.SYSTEM_INTERFACE: "系统接口",
    ShareMethod.ONLINE_QUERY: "在线查询",
    ShareMethod.ONLINE_BROWSING: "在线浏览",
    ShareMethod.SERVICE_CALL: "在线服务调用",
    ShareMethod.DOWNLOAD: "下载",
    ShareMethod.COPY: "拷贝",
}


class OpenAttribute(StrEnum):
    """Whether the resource is opened to the public (开放属性), apart from sharing between departments."""

    OPEN = "无条件开放"
    CONDITIONAL = "有条件开放"
    CLOSED = "不予开放"


RESOURCE_CODE_PATTERN = r"^(\d)(\d{2})(\d{3})([0-9A-Z]{0,32})/(\d{1,12})$"
"""Resource code (信息资源代码): the classification code (类 1 digit, 项 2, 目 3, then the
细目 of variable length) and, after a slash, the sequence code (顺序码)."""


class Category(BaseModel):
    """One level of the classification: its code and name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str


class Classification(BaseModel):
    """类 / 项 / 目 / 细目 of a resource (信息资源分类)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    class_: Category = Field(alias="class")
    item: Category
    catalogue: Category
    sub_item: Category | None = None

    @model_validator(mode="after")
    def _codes(self) -> Classification:
        levels = (("class", self.class_, 1), ("item", self.item, 2), ("catalogue", self.catalogue, 3))
        problems = [
            f"{level} code {category.code!r} must be {digits} digit(s)"
            for level, category, digits in levels
            if not re.fullmatch(rf"[0-9]{{{digits}}}", category.code)
        ]
        sub = self.sub_item
        if sub is not None and not re.fullmatch(r"[0-9A-Z]{1,32}", sub.code):
            problems.append(f"sub_item code {sub.code!r} must be 1-32 digits or capital letters")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def code(self) -> str:
        """The classification code: class + item + catalogue + sub-item codes."""
        sub = self.sub_item.code if self.sub_item else ""
        return f"{self.class_.code}{self.item.code}{self.catalogue.code}{sub}"


class CatalogueInfo(BaseModel):
    """The catalogue entry's core metadata that the fields do not give (目录核心元数据).

    These are the entry's starting values: a steward may edit each one in the catalogue, and
    the edit outlives later contract versions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    classification: Classification
    sequence: str = Field(pattern=r"^\d{1,12}$")
    abstract: Text
    format: str = Field(default="数据库", min_length=1)
    share_methods: tuple[ShareMethod, ...] = Field(min_length=1)
    open_attribute: OpenAttribute = OpenAttribute.CLOSED
    open_condition: str | None = None
    related: tuple[str, ...] = ()
    """Resource codes of related resources (关联资源代码)."""
    keywords: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> CatalogueInfo:
        problems = [
            f"related resource code {c!r} is not a resource code (e.g. 101001/000001)"
            for c in self.related
            if not re.match(RESOURCE_CODE_PATTERN, c)
        ]
        if self.open_attribute is OpenAttribute.CONDITIONAL and not self.open_condition:
            problems.append("有条件开放 (conditionally open) needs open_condition")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def resource_code(self) -> str:
        return f"{self.classification.code}/{self.sequence}"


class Contract(BaseModel):
    """One shared dataset's contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    title: Text
    owner_department: Department
    share_attribute: str = Field(pattern="^(无条件共享|有条件共享|不予共享)$")
    share_condition: str | None = None
    legal_basis: str | None = None
    update_cycle: UpdateCycle
    keys: tuple[str, ...]
    fields: tuple[ContractField, ...]
    row_checks: tuple[RowCheck, ...] = ()
    quasi_identifiers: tuple[str, ...] = ()
    """Fields that together could single a person out (GB/T 42460): measured for k-anonymity
    before the unconditional view is shared."""
    k_anonymity: int = Field(default=5, ge=2)
    """Smallest group size the unconditional view must reach; 5 is the usual floor of
    de-identification guidance (GB/T 37964) for data shared beyond its collector."""
    max_invalid_share: float = Field(default=0.05, ge=0.0, le=1.0)
    """Batch gate: a batch whose quarantined share of rows exceeds this registers and
    publishes nothing until a steward releases it."""
    catalogue: CatalogueInfo | None = None
    """Catalogue metadata (classification, sequence code, abstract, share methods, ...); without
    it the generated catalogue entry stays a draft until a steward fills those fields in."""

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [f.name for f in self.fields]
        problems = [f"field {n!r} is declared twice" for n in set(names) if names.count(n) > 1]
        known = set(names)
        problems += [f"key {k!r} is not a field" for k in self.keys if k not in known]
        problems += [
            f"key {f.name!r} must be required" for f in self.fields if f.name in self.keys and not f.required
        ]
        for check in self.row_checks:
            problems += [
                f"row check {check.rule!r} names unknown field {n!r}" for n in check.fields if n not in known
            ]
        published = [f.published_name for f in self.fields]
        problems += [
            f"published column {p!r} appears twice" for p in set(published) if published.count(p) > 1
        ]
        problems += [
            f"quasi-identifier {q!r} is not a field" for q in self.quasi_identifiers if q not in known
        ]
        for f in self.fields:
            for level in ShareLevel:
                try:
                    f.published_type_at(level)
                except ValueError as exc:
                    problems.append(f"field {f.name!r}, level {level.value}: {exc}")
        if self.share_attribute == "有条件共享" and not self.share_condition:
            problems.append("有条件共享 (conditional) needs share_condition")
        if self.share_attribute == "不予共享" and not self.legal_basis:
            problems.append("不予共享 (not shared) needs legal_basis")
        if problems:
            raise ValueError("; ".join(sorted(problems)))
        return self

    def field(self, name: str) -> ContractField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def key_fields(self) -> tuple[ContractField, ...]:
        return tuple(self.field(k) for k in self.keys)

    @property
    def published_keys(self) -> tuple[str, ...]:
        return tuple(f.published_name for f in self.key_fields)

    def arrow_schema(self) -> pa.Schema:
        """Canonical schema of records as connectors deliver them (before checks and masking)."""
        return pa.schema(
            [pa.field(f.name, f.type.arrow(), nullable=True) for f in self.fields],
            metadata={"contract": self.name, "version": self.version},
        )

    @property
    def published_quasi_identifiers(self) -> tuple[str, ...]:
        """The quasi-identifiers under their published column names."""
        return tuple(self.field(q).published_name for q in self.quasi_identifiers)

    def published_schema(self, level: ShareLevel | str = DEFAULT_LEVEL) -> pa.Schema:
        """Schema of what consumers at ``level`` receive, after masking.

        The default (conditional) level is the schema of the shared table and the topics.
        """
        fields = []
        for f in self.fields:
            rule = f.mask.at(level).rule
            nullable = not f.required or rule is MaskRule.NULL
            fields.append(pa.field(f.published_name, f.published_type_at(level), nullable=nullable))
        fields.append(pa.field(BATCH_ID_COLUMN, pa.string(), nullable=False))
        return pa.schema(fields, metadata={"contract": self.name, "version": self.version})

    def iceberg_schema(self) -> Any:
        """Iceberg schema of the shared table, with the key as identifier fields."""
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.schema import Schema
        from pyiceberg.table.name_mapping import MappedField, NameMapping

        arrow = self.published_schema()
        mapping = NameMapping(
            [MappedField.model_validate({"field-id": i + 1, "names": [f.name]}) for i, f in enumerate(arrow)]
        )
        schema: Schema = pyarrow_to_schema(arrow, name_mapping=mapping)
        ids = [schema.find_field(k).field_id for k in self.published_keys]
        return Schema(*schema.fields, identifier_field_ids=ids)

    def message_schema(self) -> dict[str, Any]:
        """JSON Schema of one Kafka message value."""
        json_types = {
            pa.string(): {"type": "string"},
            pa.int32(): {"type": "integer"},
            pa.int64(): {"type": "integer"},
            pa.date32(): {"type": "string", "format": "date"},
            pa.timestamp("us"): {"type": "string", "format": "date-time"},
            # A string, not a JSON number: consumers parsing numbers as binary floats would
            # silently round amounts; the publisher writes Decimal values as their text.
            FieldType.DECIMAL.arrow(): {"type": "string", "format": "decimal"},
        }
        props: dict[str, Any] = {}
        required: list[str] = []
        by_published = {f.published_name: f for f in self.fields}
        for field in self.published_schema():
            spec: dict[str, Any] = dict(json_types[field.type])
            source = by_published.get(field.name)
            if source is not None:
                spec["description"] = f"{source.description.zh} / {source.description.en}"
            if field.nullable:
                spec["type"] = [spec["type"], "null"]
            else:
                required.append(field.name)
            props[field.name] = spec
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{self.name} {self.version}",
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )


def load_contract_file(path: Path) -> Contract:
    """Load and check one contract file; every problem is listed in the error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"contract file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"contract file {path} is not valid YAML: {exc}") from None
    try:
        return Contract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(f"contract file {path} is invalid: {_problems(exc)}") from None


@lru_cache(maxsize=32)
def load_contract(name: str) -> Contract:
    """The contract of a dataset by name, from ``schemas/<name>.yaml``."""
    path = CONTRACT_DIR / f"{name}.yaml"
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))) or "none"
        raise ContractError(f"no contract for dataset {name!r} (available: {available})")
    return load_contract_file(path)
