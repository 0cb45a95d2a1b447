"""Cross-dataset checks: a value must exist in another shared dataset (by token).

The one such rule today is ``holder_exists``: a certificate's holder is a person of the
population (holder code type 111, identity number) or a legal entity (001, unified social
credit code). A contract asks for it as a row check over the code and its type, e.g.
``{rule: holder_exists, fields: [holder_code, holder_code_type]}``; which register holds
which code type is the table :data:`HOLDER_REGISTERS`, not per-dataset code.

The lookup never needs a raw identifier outside the pipeline: the holder code is put
through the register field's own masking rule (the keyed token for identity numbers) and
looked up in that field's published column of the current shared table.

What a miss means depends on whether the register has been shared yet:

- the register's table exists: the row is quarantined under ``holder_exists`` (a holder
  nobody registered is a wrong record, and it goes back to the issuer as a correction);
- it does not exist yet (a new hub, the certificates loaded first): the check is skipped
  for that code type and the batch records a warning; the sources' ``depends_on`` makes
  the certificate DAGs run after population and legal entities, so this is the exception.

Rows whose code already breaks its own rules (``holder_code``), Hong Kong, Macao and
Taiwan residence-permit numbers (not in the household population) and credit codes of
registration authorities other than market regulation (not in the legal-entity register)
are not judged here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quality import checks
from quality.suite import MESSAGES, REFERENCE_CHECKS
from quality.validate import ROW_COLUMN, ChunkResult, Violation
from schemas.contract import Contract, ContractField, load_contract
from schemas.errors import FatalError

log = logging.getLogger(__name__)

MARKET_REGISTRATION = "9"
"""GB 32100 registration-department code of market regulation (工商): the authority whose
register the legal-entity dataset is. Institutions (1), social organisations (5) and others
are registered elsewhere."""


def _people(codes: pa.Array) -> np.ndarray:
    permit = np.zeros(len(codes), dtype=bool)
    for prefix in checks.PERMIT_DIVISIONS:
        hit = pc.fill_null(pc.starts_with(codes, str(prefix)[:2]), False)
        permit |= np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
    return ~permit


def _market_entities(codes: pa.Array) -> np.ndarray:
    hit = pc.fill_null(pc.starts_with(codes, MARKET_REGISTRATION), False)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class Register:
    """Where holders of one code type are registered, and which of their codes it can hold."""

    code_type: str
    dataset: str
    field: str
    """Contract field of ``dataset`` the code is compared with, through its masking rule."""
    covers: Callable[[pa.Array], np.ndarray]


HOLDER_REGISTERS: tuple[Register, ...] = (
    Register(checks.PERSON_CODE_TYPE, "population", "id_number", _people),
    Register(checks.ENTITY_CODE_TYPE, "legal_entity", "uscc", _market_entities),
)
"""Holder code type -> the shared dataset and field that registers such holders."""


@dataclass
class ReferenceCheck:
    """The cross-dataset rules of one contract for one batch.

    ``tables`` is a :class:`catalog.tables.SharedTables`; ``forms`` turns raw codes of a
    register's field into the forms its shared table publishes (the masking rule under every
    token key version, :func:`masking.apply.published_forms`): quality sits below masking and
    the catalogue, so the pipeline hands both in. Each register's published column is read
    once, on first use, from its current snapshot.
    """

    contract: Contract
    tables: Any
    forms: Callable[[ContractField, pa.Array], list[pa.Array]]
    today: date
    warnings: list[str] = field(default_factory=list)
    _values: dict[tuple[str, str], pa.Array | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        contract: Contract,
        tables: Callable[[], Any],
        forms: Callable[[ContractField, pa.Array], list[pa.Array]],
        today: date,
    ) -> ReferenceCheck | None:
        """The check for a contract with cross-dataset rules, else None (no tables opened)."""
        if not any(check.rule in REFERENCE_CHECKS for check in contract.row_checks):
            return None
        return cls(contract, tables(), forms, today)

    @property
    def rules(self) -> list[tuple[str, str, str]]:
        """``(rule, code field, type field)`` of the contract's cross-dataset row checks."""
        return [
            (check.rule, check.fields[0], check.fields[1])
            for check in self.contract.row_checks
            if check.rule in REFERENCE_CHECKS
        ]

    def apply(self, chunk: pa.Table, result: ChunkResult) -> ChunkResult:
        """``result`` of the suite with rows failing a cross-dataset rule moved to quarantine.

        Rows already quarantined get the violation added, so every rule a row broke is listed.
        """
        violations: list[Violation] = []
        for rule, code_field, type_field in self.rules:
            violations += self._holder_exists(chunk, rule, code_field, type_field)
        if not violations:
            return result
        failing = pa.array(sorted({v.row for v in violations}), pa.int64())
        moving = pc.is_in(result.valid.column(ROW_COLUMN), value_set=failing)
        moved = result.valid.filter(moving)
        quarantined = pa.concat_tables([result.quarantined, moved]) if moved.num_rows else result.quarantined
        merged = sorted([*result.violations, *violations], key=lambda v: v.row)
        return ChunkResult(result.rows_in, result.valid.filter(pc.invert(moving)), quarantined, merged)

    def _holder_exists(self, chunk: pa.Table, rule: str, code_field: str, type_field: str) -> list[Violation]:
        codes = _strings(chunk.column(code_field))
        kinds = _strings(chunk.column(type_field))
        sound = np.asarray(checks.holder_code_matches(codes, kinds, self.today), dtype=bool)
        present = np.asarray(pc.fill_null(pc.not_equal(codes, ""), False), dtype=bool)
        rows = chunk.column(ROW_COLUMN)
        zh, en = MESSAGES[rule]
        found: list[Violation] = []
        for register in HOLDER_REGISTERS:
            of_type = np.asarray(pc.fill_null(pc.equal(kinds, register.code_type), False), dtype=bool)
            judged = of_type & sound & present & register.covers(codes)
            if not judged.any():
                continue
            known = self._published(register)
            if known is None:
                continue
            candidates = pc.filter(codes, pa.array(judged))
            hit = np.zeros(len(candidates), dtype=bool)
            for form in self._forms(register, candidates):
                hit |= np.asarray(pc.fill_null(pc.is_in(form, value_set=known), False), dtype=bool)
            missing = pc.filter(pc.filter(rows, pa.array(judged)), pa.array(~hit))
            found += [
                Violation(
                    int(row), code_field, rule, zh.format(field=code_field), en.format(field=code_field)
                )
                for row in missing.to_pylist()
            ]
        return found

    def _forms(self, register: Register, codes: pa.Array) -> list[pa.Array]:
        """The codes as the register's table publishes them, under every token key version.

        A register shared before a token-key rotation and not refreshed since still holds
        tokens of an older key; the same holder must be found there too.
        """
        return self.forms(load_contract(register.dataset).field(register.field), codes)

    def _published(self, register: Register) -> pa.Array | None:
        """The register field's published values (distinct), or None when it is not shared yet."""
        cache = (register.dataset, register.field)
        if cache in self._values:
            return self._values[cache]
        column = load_contract(register.dataset).field(register.field).published_name
        values: pa.Array | None = None
        try:
            if register.dataset in self.tables.datasets() and self.tables.current_snapshot_id(
                register.dataset
            ):
                scan = self.tables.scan(register.dataset, selected_fields=(column,))
                parts = [b.column(0).cast(pa.string()) for b in scan]
                values = pc.unique(pa.chunked_array(parts, pa.string()).combine_chunks())
        except FatalError:
            # The table went away between listing and reading (the catalogue's
            # DatasetNotFoundError): the register is not shared, as if never listed.
            values = None
        if values is None or not len(values):
            values = None
            note = (
                f"{self.contract.name}: holder_exists not checked for holder code type "
                f"{register.code_type}: dataset {register.dataset} has no shared table yet"
            )
            self.warnings.append(note)
            log.warning(note)
        self._values[cache] = values
        return values


def _strings(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    return values.cast(pa.string())


__all__ = ["HOLDER_REGISTERS", "MARKET_REGISTRATION", "ReferenceCheck", "Register"]
