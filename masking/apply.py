"""Turn valid rows in the canonical schema into rows in the published schema.

The output is exactly ``contract.published_schema()``: every field through its contract
rule, renamed to its published name, in contract order, plus the batch id column. Nothing
reaches the output without going through a rule, so a column the contract does not know
can never be published by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from masking.errors import MaskingInputError, MaskRuleError
from masking.keys import Keyring
from masking.rules import KEY_KINDS, ArrayLike, apply_rule
from schemas.contract import DEFAULT_LEVEL, Contract, ContractField, ShareLevel

ROW_COLUMN = "_row"
"""Source row number that earlier stages may carry along; used in messages, then dropped."""


def mask_table(
    table: pa.Table | pa.RecordBatch,
    contract: Contract,
    keyring: Keyring,
    *,
    batch_id: str,
    level: ShareLevel | str = DEFAULT_LEVEL,
    computed: dict[tuple[str, str], ArrayLike] | None = None,
) -> pa.Table:
    """Mask one chunk of valid rows for publication at a share level.

    ``computed``, when the same chunk is masked at several levels, carries the columns already
    made so that a rule shared by two levels (the keyed token, above all) runs once.

    The default, ``conditional``, is what the shared tables and topics hold; the
    ``unconditional`` view is made from the same valid rows with the stricter rules.

    Columns whose name starts with ``_`` are pipeline bookkeeping and are dropped; any other
    column the contract does not name is an error, since it means a source mapping is wrong.
    """
    if not batch_id:
        raise ValueError("batch_id must be a non-empty string")
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    where = f"dataset {contract.name}, batch {batch_id}"
    _check_columns(table, contract, where)
    level = ShareLevel(level)
    keys = _keys(contract, keyring, level)
    schema = contract.published_schema(level)
    columns: list[ArrayLike] = []
    for field in contract.fields:
        target = schema.field(field.published_name)
        rule = field.mask.at(level).rule
        made = (field.name, repr(field.mask.at(level)))
        if computed is not None and made in computed:
            masked = computed[made]
        else:
            masked = _mask_field(table, field, level, keys.get(KEY_KINDS.get(rule, "")), where)
            if computed is not None:
                computed[made] = masked
        if masked.type != target.type:
            raise MaskRuleError(
                f"{where}, field {field.name!r}: rule {rule.value!r} gave "
                f"{masked.type}, the published schema says {target.type}"
            )
        if not target.nullable and masked.null_count:
            row = _first_null_row(table, masked)
            raise MaskingInputError(
                f"{where}, row {row}, field {field.name!r}: rule {rule.value!r} "
                f"gave no value, but published column {target.name!r} is required"
            )
        columns.append(masked)
    columns.append(pa.repeat(pa.scalar(batch_id, pa.string()), table.num_rows))
    return pa.Table.from_arrays(columns, schema=schema)


def _check_columns(table: pa.Table, contract: Contract, where: str) -> None:
    names = set(table.column_names)
    known = {f.name for f in contract.fields}
    missing = [f.name for f in contract.fields if f.name not in names]
    unknown = sorted(n for n in names - known if not n.startswith("_"))
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"column(s) not in the contract: {', '.join(unknown)}")
    if problems:
        raise MaskingInputError(f"{where}: {'; '.join(problems)}")


def _keys(contract: Contract, keyring: Keyring, level: ShareLevel) -> dict[str, Any]:
    """The current key of each kind the level's rules need, read once per chunk so that every
    row of it uses the same version."""
    kinds = {KEY_KINDS[f.mask.at(level).rule] for f in contract.fields if f.mask.at(level).rule in KEY_KINDS}
    return {kind: _current_key(keyring, kind) for kind in sorted(kinds)}


def _current_key(keyring: Keyring, kind: str) -> Any:
    current = getattr(keyring, "current_key", None)
    if current is not None:
        return current(kind)
    if kind != "token":
        raise MaskRuleError(f"the keyring at {keyring.path} holds no {kind} keys; run `hub keys rotate`")
    return keyring.token_key()


def _mask_field(table: pa.Table, field: ContractField, level: ShareLevel, key: Any, where: str) -> ArrayLike:
    column = table.column(field.name)
    expected = field.type.arrow()
    if column.type != expected:
        try:
            column = column.cast(expected)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise MaskingInputError(
                f"{where}, field {field.name!r}: column is {column.type}, the contract says {expected}"
            ) from None
    spec = field.mask.at(level)
    try:
        return apply_rule(spec.rule, column, key=key, **spec.params)
    except MaskRuleError as exc:
        raise MaskRuleError(f"{where}, field {field.name!r}: {exc}") from None


def _first_null_row(table: pa.Table, masked: ArrayLike) -> object:
    position = pc.indices_nonzero(pc.is_null(masked))[0].as_py()
    if ROW_COLUMN in table.column_names:
        return table.column(ROW_COLUMN)[position].as_py()
    return position


def published_forms(keyring: Keyring) -> Callable[[ContractField, pa.Array], list[pa.Array]]:
    """How raw values of a field look in its shared table at the conditional level: one
    array per token key version for a tokenised field (a table registered before a key
    rotation and not refreshed since still holds older tokens), else the one masked form.

    Handed to the quality step's cross-dataset checks, which compare raw codes with what a
    register publishes but sit below masking and so never import it.
    """

    def forms(field: ContractField, values: pa.Array) -> list[pa.Array]:
        spec = field.mask.at("conditional")
        kind = KEY_KINDS.get(spec.rule)
        if kind is None:
            return [pc.cast(apply_rule(spec.rule, values, **spec.params), pa.string())]
        keys = [keyring.key(kind, info.version) for info in keyring.versions(kind)]
        return [pc.cast(apply_rule(spec.rule, values, key=key, **spec.params), pa.string()) for key in keys]

    return forms
