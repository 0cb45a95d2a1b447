"""Dataset contracts: one YAML file per shared dataset, everything else derived from it.

A contract names the fields (type, required, bilingual description, sensitivity class,
quality checks, masking rule), the key, the owner department and the share attribute.
From it come the canonical Arrow schema records arrive in, the published (masked)
Arrow schema, the Iceberg schema of the shared table and the JSON schema of Kafka
messages, so that adding a dataset is adding a file, not code.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import ContractError

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


class MaskRule(StrEnum):
    """Masking rules a contract may name; :mod:`masking.rules` implements each one."""

    KEEP = "keep"
    TOKEN = "token"
    MASK_NAME = "mask_name"
    MASK_MOBILE = "mask_mobile"
    MASK_ID = "mask_id"
    MASK_ADDRESS = "mask_address"
    YEAR = "year"
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


_RULE_INPUTS: dict[MaskRule, frozenset[FieldType] | None] = {
    MaskRule.KEEP: None,
    MaskRule.NULL: None,
    MaskRule.TOKEN: frozenset({FieldType.STRING}),
    MaskRule.MASK_NAME: frozenset({FieldType.STRING}),
    MaskRule.MASK_MOBILE: frozenset({FieldType.STRING}),
    MaskRule.MASK_ID: frozenset({FieldType.STRING}),
    MaskRule.MASK_ADDRESS: frozenset({FieldType.STRING}),
    MaskRule.YEAR: frozenset({FieldType.DATE, FieldType.TIMESTAMP}),
}


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str


class Mask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    rule: MaskRule
    as_: str | None = Field(default=None, alias="as")


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
        return self.mask.rule.output_type(self.type)


class RowCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    fields: tuple[str, ...]


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str


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
    update_cycle: str
    keys: tuple[str, ...]
    fields: tuple[ContractField, ...]
    row_checks: tuple[RowCheck, ...] = ()

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
        for f in self.fields:
            try:
                f.published_type  # noqa: B018 - validates rule against type
            except ValueError as exc:
                problems.append(f"field {f.name!r}: {exc}")
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

    def published_schema(self) -> pa.Schema:
        """Schema of the shared table and of what consumers receive, after masking."""
        fields = [
            pa.field(
                f.published_name, f.published_type, nullable=not f.required or f.mask.rule is MaskRule.NULL
            )
            for f in self.fields
        ]
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ContractError(f"contract file {path} is invalid: {problems}") from None


@lru_cache(maxsize=32)
def load_contract(name: str) -> Contract:
    """The contract of a dataset by name, from ``schemas/<name>.yaml``."""
    path = CONTRACT_DIR / f"{name}.yaml"
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))) or "none"
        raise ContractError(f"no contract for dataset {name!r} (available: {available})")
    return load_contract_file(path)
