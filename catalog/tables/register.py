"""The register step of a batch: its masked rows into the shared table, in one snapshot.

Reads what the masking step staged in the batch's folder and commits:

* ``masked`` rows upserted by key into ``shared.<dataset>`` in one atomic Iceberg snapshot
  (rows keyed by an old token are retired after a token-key rotation, since the batch
  brings the same entity under its new token);
* ``token_map`` pairs into ``shared.token_map`` during a mapping period;
* the verification rows into ``internal.<dataset>_verify``;
* for a contract with quasi-identifiers, ``shared.<dataset>_unconditional``: the
  unconditional-level projection (kept in the ``internal`` namespace, never shared) made
  k-anonymous as a whole, since groups span batches.

The step records nothing in the metadata: it returns the snapshot and the k achieved, and
the pipeline records the batch as registered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.tables.iceberg import SharedTables
from catalog.tables.verification_index import register_staged
from masking.kanon import enforce
from masking.step import UNCONDITIONAL
from schemas.contract import Contract
from schemas.staging import read_chunks, staged_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    """What a registered batch made: its snapshot, the k of the unconditional view, the
    token pairs it registered (after a rotation; None otherwise)."""

    snapshot_id: int
    anonymity: dict[str, int] = field(default_factory=dict)
    token_pairs: pa.Table | None = None


def register_staged_batch(
    folder: Path,
    contract: Contract,
    *,
    shared: SharedTables,
    internal: SharedTables,
    batch_id: str,
    chunk_rows: int,
) -> Registered:
    """Commit the batch staged in ``folder``; ``internal`` is the same catalog's ``internal``
    namespace (derived tables)."""
    shared.ensure_table(contract)
    pairs = token_pairs(folder)
    retired = None if pairs is None else pairs.column("old_token").combine_chunks()
    snapshot_id = shared.commit(
        contract,
        read_chunks(staged_file(folder, "masked"), chunk_rows),
        batch_id=batch_id,
        mode="upsert",
        retired_keys=retired,
    )
    if pairs is not None:
        shared.upsert_rows("token_map", pairs, keys=["old_token"], batch_id=batch_id)
    verified = register_staged(folder, contract.name, internal, batch_id=batch_id)
    if verified is not None:
        log.info("batch %s: verification index of %s at snapshot %s", batch_id, contract.name, verified)
    anonymity = share_unconditional_view(folder, contract, shared, internal, batch_id, retired)
    return Registered(int(snapshot_id), anonymity, pairs)


def token_pairs(folder: Path) -> pa.Table | None:
    """Old -> new token pairs staged by the masking step during a token-key mapping period."""
    path = staged_file(folder, "token_map")
    if not path.exists():
        return None
    pairs = pq.read_table(path)
    return pairs if pairs.num_rows else None


def share_unconditional_view(
    folder: Path,
    contract: Contract,
    shared: SharedTables,
    internal: SharedTables,
    batch_id: str,
    retired: pa.Array | None,
) -> dict[str, int]:
    """Refresh ``shared.<dataset>_unconditional``: the unconditional-level view made k-anonymous.

    The batch's rows at that level are upserted into an internal projection; the whole
    projection is then generalised further or its small groups suppressed until every
    quasi-identifier group has at least the contract's k rows. The achieved k is returned
    (for the batch record) and kept as a property of the shared view.
    """
    path = staged_file(folder, UNCONDITIONAL)
    if not contract.quasi_identifiers or not path.exists():
        return {}
    name = f"{contract.name}_{UNCONDITIONAL}"
    internal.upsert_rows(
        name, pq.read_table(path), keys=list(contract.published_keys), batch_id=batch_id, retired_keys=retired
    )
    projection = internal.load(name).scan().to_arrow()
    view, result = enforce(projection, contract.published_quasi_identifiers, contract.k_anonymity, contract)
    shared.replace_rows(
        name,
        view,
        batch_id=batch_id,
        properties={
            "hub.k_anonymity": str(result.k),
            "hub.k_threshold": str(contract.k_anonymity),
            "hub.k_suppressed_rows": str(result.suppressed_rows),
            "hub.k_generalised": "; ".join(result.generalised),
        },
    )
    log.info("batch %s: %s view k=%d, %d rows suppressed", batch_id, name, result.k, result.suppressed_rows)
    return {"k_anonymity": result.k, "k_suppressed_rows": result.suppressed_rows}
