"""The steps of one batch, as library functions.

``hub run DATASET`` calls them in one process; the Airflow DAG calls the same functions,
one task each. Steps hand each other a :class:`BatchRef` (batch id plus the staging
folder), never records, so tasks may run in different processes or on different workers.
Each step reads what the previous one staged as Parquet, streams it chunk by chunk and
writes its own output, so a failed step can be retried without repeating the ones before
it. Staging is removed after the commit and kept after a failure for inspection.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hub.errors import FatalError, HubError
from hub.settings import HubSettings, get_settings
from schemas import BATCH_ID_COLUMN, Contract, load_contract

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.config import SourceConfig

log = logging.getLogger(__name__)

ROW_COLUMN = "_row"
"""Global row number within a batch, added at extraction so every row can be traced."""

Progress = Callable[[str, int], None]
"""Called as ``progress(step, rows_done)`` while a step streams its rows."""


@dataclass(frozen=True)
class BatchRef:
    """What one step hands the next: JSON-friendly, so it fits an Airflow XCom."""

    batch_id: str
    source: str
    dataset: str
    staging: str

    def to_xcom(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> BatchRef:
        return cls(**{name: value[name] for name in ("batch_id", "source", "dataset", "staging")})

    @property
    def folder(self) -> Path:
        return Path(self.staging)

    def file(self, stage: str) -> Path:
        return self.folder / f"{stage}.parquet"


def _noop(step: str, rows: int) -> None:
    return None


def _store(settings: HubSettings) -> Any:
    assert settings.catalog.metadata_url is not None
    return _store_for(settings.catalog.metadata_url)


@lru_cache(maxsize=8)
def _store_for(url: str) -> Any:
    """One store (and connection pool) per metadata URL for the life of the process."""
    from catalog.store import MetadataStore

    return MetadataStore(url)


def _tables(settings: HubSettings) -> Any:
    from catalog.tables import SharedTables

    assert settings.catalog.iceberg_url is not None and settings.catalog.warehouse is not None
    return SharedTables(
        settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=settings.catalog.namespace
    )


def _keyring(settings: HubSettings) -> Any:
    from masking.keys import Keyring

    return Keyring.load(settings.masking.keyring_path)


def _today(settings: HubSettings) -> date:
    if settings.quality.today:
        return date.fromisoformat(settings.quality.today)
    return date.today()


def _read_chunks(path: Path, rows: int) -> Iterator[pa.RecordBatch]:
    parquet = pq.ParquetFile(path)
    yield from parquet.iter_batches(batch_size=rows)


class _StageWriter:
    """Parquet writer that is created lazily and always leaves a readable file."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if table.num_rows:
            self._writer.write(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()


def _source(name: str, settings: HubSettings) -> SourceConfig:
    from connectors.config import get_source

    return get_source(name, settings.connectors.sources_dir)


def _open(source: SourceConfig, settings: HubSettings) -> Connector:
    from connectors.factory import open_connector

    return open_connector(source, chunk_rows=settings.connectors.chunk_rows, env=settings.source_env())


def extract(
    source_name: str,
    *,
    settings: HubSettings | None = None,
    full: bool = False,
    progress: Progress = _noop,
) -> BatchRef:
    """Stream a source's new or changed records into staged Parquet and open a batch record.

    Sources with a cursor are read incrementally from the watermark of their last
    registered batch; ``full`` (or a first run) reads everything.
    """
    from catalog.store import new_batch_id
    from connectors.base import batch_schema

    settings = settings or get_settings()
    settings.ensure_home()
    source = _source(source_name, settings)
    contract = source.contract
    _keyring(settings)  # fail before any work when keys are missing
    store = _store(settings)
    since = None if full or source.cursor is None else store.last_watermark(source.name)
    connector = _open(source, settings)
    try:
        connector.check()
        batch_id = new_batch_id(source.name)
        ref = BatchRef(batch_id, source.name, contract.name, str(settings.staging_dir / batch_id))
        ref.folder.mkdir(parents=True, exist_ok=True)
        store.start_batch(
            batch_id=batch_id,
            dataset=contract.name,
            source=source.name,
            contract_version=contract.version,
            staging=ref.staging,
        )
        store.update_batch(
            batch_id, department=source.department.name, full_refresh=since is None, watermark_from=since
        )
        with _failing_batch(store, ref):
            schema = batch_schema(contract.arrow_schema()).append(
                pa.field(ROW_COLUMN, pa.int64(), nullable=False)
            )
            writer = _StageWriter(ref.file("raw"), schema)
            try:
                for chunk in connector.read(since=since):
                    rows = pa.array(range(writer.rows, writer.rows + chunk.num_rows), pa.int64())
                    writer.write(pa.RecordBatch.from_arrays([*chunk.columns, rows], schema=schema))
                    progress("extract", writer.rows)
            finally:
                writer.close()
            state = connector.checkpoint()
    finally:
        connector.close()
    store.update_batch(
        batch_id,
        status="extracted",
        rows_in=writer.rows,
        watermark_to=connector.watermark or since,
        connector_state=json.dumps(state, ensure_ascii=False) if state is not None else None,
    )
    log.info("batch %s: extracted %d rows from %s (since %s)", batch_id, writer.rows, source.name, since)
    return ref


def validate(ref: BatchRef, *, settings: HubSettings | None = None, progress: Progress = _noop) -> BatchRef:
    """Check every staged row against the contract's suite; failures go to quarantine."""
    from quality.validate import Validator, find_duplicate_keys

    settings = settings or get_settings()
    contract = load_contract(ref.dataset)
    store = _store(settings)
    batch = store.get_batch(ref.batch_id)
    with _failing_batch(store, ref):
        store.clear_quarantine(ref.batch_id)  # a retried step starts clean
        duplicates = find_duplicate_keys(str(ref.file("raw")), contract)
        validator = Validator(contract, today=_today(settings))
        raw = pq.ParquetFile(ref.file("raw"))
        writer = _StageWriter(ref.file("valid"), raw.schema_arrow)
        quarantined = seen = 0
        try:
            for chunk in raw.iter_batches(batch_size=settings.connectors.chunk_rows):
                result = validator.validate(
                    pa.Table.from_batches([chunk]),
                    duplicate_keys=duplicates,
                    source=batch.source,
                    batch_id=ref.batch_id,
                )
                writer.write(result.valid)
                if result.quarantined.num_rows:
                    store.add_quarantine(ref.batch_id, result.quarantined, result.violations)
                quarantined += result.quarantined.num_rows
                seen += chunk.num_rows
                progress("validate", seen)
        finally:
            writer.close()
        store.update_batch(
            ref.batch_id, status="validated", rows_valid=writer.rows, rows_quarantined=quarantined
        )
        store.check_accounting(ref.batch_id)
    log.info("batch %s: %d valid, %d quarantined", ref.batch_id, writer.rows, quarantined)
    return ref


def mask(ref: BatchRef, *, settings: HubSettings | None = None, progress: Progress = _noop) -> BatchRef:
    """Apply each field's masking rule; only masked rows are staged for registration.

    While an older token key is in its mapping period (after ``hub keys rotate --kind
    token``), the old -> new token pairs of this batch's identifiers are staged as well and
    registered into ``shared.token_map``, so consumers' joins survive the rotation.
    """
    from masking.apply import mask_table
    from masking.crypto import MAPPING_SCHEMA, token_mapping
    from schemas.contract import MaskRule

    settings = settings or get_settings()
    contract = load_contract(ref.dataset)
    store = _store(settings)
    tokenised = [f.name for f in contract.fields if f.mask.rule is MaskRule.TOKEN]
    with _failing_batch(store, ref):
        keyring = _keyring(settings)
        writer = _StageWriter(ref.file("masked"), contract.published_schema())
        mappings = _StageWriter(ref.file("token_map"), MAPPING_SCHEMA)
        opened = _StageWriter(ref.file("unconditional"), contract.published_schema(UNCONDITIONAL))
        try:
            for chunk in _read_chunks(ref.file("valid"), settings.connectors.chunk_rows):
                for name in tokenised:
                    pairs = token_mapping(
                        chunk.column(name), keyring, mapping_days=settings.masking.token_mapping_days
                    )
                    if pairs is not None:
                        mappings.write(pairs)
                made: dict[tuple[str, str], Any] = {}
                writer.write(mask_table(chunk, contract, keyring, batch_id=ref.batch_id, computed=made))
                if contract.quasi_identifiers:
                    opened.write(
                        mask_table(
                            chunk,
                            contract,
                            keyring,
                            batch_id=ref.batch_id,
                            level=UNCONDITIONAL,
                            computed=made,
                        )
                    )
                progress("mask", writer.rows)
        finally:
            writer.close()
            mappings.close()
            opened.close()
        store.update_batch(ref.batch_id, status="masked")
    return ref


def register(ref: BatchRef, *, settings: HubSettings | None = None) -> int:
    """Commit the masked rows to the shared table in one atomic snapshot; returns its id."""
    settings = settings or get_settings()
    contract = load_contract(ref.dataset)
    store = _store(settings)
    batch = store.get_batch(ref.batch_id)
    if batch.snapshot_id is not None:
        log.info("batch %s: already registered as snapshot %s", ref.batch_id, batch.snapshot_id)
        return int(batch.snapshot_id)
    with _failing_batch(store, ref):
        store.check_accounting(ref.batch_id)
        tables = _tables(settings)
        tables.ensure_table(contract)
        masked = ref.file("masked")
        pairs = _token_pairs(ref)
        snapshot_id = tables.commit(
            contract,
            _read_chunks(masked, settings.connectors.chunk_rows),
            batch_id=ref.batch_id,
            mode="upsert",
            retired_keys=None if pairs is None else pairs.column("old_token").combine_chunks(),
        )
        if pairs is not None:
            tables.upsert_rows("token_map", pairs, keys=["old_token"], batch_id=ref.batch_id)
        anonymity = _share_unconditional_view(ref, contract, settings, pairs)
        store.update_batch(
            ref.batch_id,
            status="registered",
            snapshot_id=snapshot_id,
            registered_at=datetime.now(UTC),
            **anonymity,
        )
    _commit_source(ref, batch.connector_state, settings)
    shutil.rmtree(ref.folder, ignore_errors=True)
    log.info("batch %s: registered as snapshot %s", ref.batch_id, snapshot_id)
    return int(snapshot_id)


UNCONDITIONAL = "unconditional"
"""Share level any department may read without a request (无条件共享 view of a dataset)."""


def _share_unconditional_view(
    ref: BatchRef, contract: Contract, settings: HubSettings, pairs: pa.Table | None
) -> dict[str, int]:
    """Refresh ``shared.<dataset>_unconditional``: the unconditional-level view made k-anonymous.

    The batch's rows at that level are upserted into an internal projection (namespace
    ``internal``, never shared); the whole projection is then generalised further or its
    small groups suppressed until every quasi-identifier group has at least the contract's
    k rows, since groups span batches. The achieved k is recorded on the batch and as a
    property of the shared view.
    """
    from catalog.tables import SharedTables
    from masking.kanon import enforce

    path = ref.file(UNCONDITIONAL)
    if not contract.quasi_identifiers or not path.exists():
        return {}
    rows = pq.read_table(path)
    assert settings.catalog.iceberg_url is not None and settings.catalog.warehouse is not None
    internal = SharedTables(settings.catalog.iceberg_url, settings.catalog.warehouse, namespace="internal")
    name = f"{contract.name}_{UNCONDITIONAL}"
    internal.upsert_rows(
        name,
        rows,
        keys=list(contract.published_keys),
        batch_id=ref.batch_id,
        retired_keys=None if pairs is None else pairs.column("old_token").combine_chunks(),
    )
    projection = internal.load(name).scan().to_arrow()
    view, result = enforce(projection, contract.published_quasi_identifiers, contract.k_anonymity, contract)
    _tables(settings).replace_rows(
        name,
        view,
        batch_id=ref.batch_id,
        properties={
            "hub.k_anonymity": str(result.k),
            "hub.k_threshold": str(contract.k_anonymity),
            "hub.k_suppressed_rows": str(result.suppressed_rows),
            "hub.k_generalised": "; ".join(result.generalised),
        },
    )
    log.info(
        "batch %s: %s view k=%d, %d rows suppressed", ref.batch_id, name, result.k, result.suppressed_rows
    )
    return {"k_anonymity": result.k, "k_suppressed_rows": result.suppressed_rows}


def _token_pairs(ref: BatchRef) -> pa.Table | None:
    """Old -> new token pairs staged by ``mask`` during a token-key mapping period.

    They are registered into ``shared.token_map``, and rows keyed by an old token are
    retired from the dataset, since the batch brings the same entity under its new token.
    """
    path = ref.file("token_map")
    if not path.exists():
        return None
    pairs = pq.read_table(path)
    return pairs if pairs.num_rows else None


def _commit_source(ref: BatchRef, state: str | None, settings: HubSettings) -> None:
    """Tell the connector its batch is registered (a file drop archives what it read)."""
    connector = _open(_source(ref.source, settings), settings)
    try:
        connector.commit(json.loads(state) if state else None)
    finally:
        connector.close()


def publish(batch_id: str, *, settings: HubSettings | None = None, progress: Progress = _noop) -> int:
    """Send each registered row of the batch to the dataset's topic; returns messages sent."""
    from catalog.publish import Publisher, ensure_topic, topic_name

    settings = settings or get_settings()
    store = _store(settings)
    batch = store.get_batch(batch_id)
    if batch.snapshot_id is None:
        raise FatalError(f"batch {batch_id} is not registered (status {batch.status}): nothing to publish")
    contract = load_contract(batch.dataset)
    tables = _tables(settings)
    topic = topic_name(settings.kafka.topic_prefix, batch.dataset)
    bootstrap = settings.kafka.bootstrap_servers
    ref = BatchRef(batch_id, batch.source, batch.dataset, batch.staging_path or "")
    # A failed delivery leaves the batch registered: publishing can simply be run again.
    with _failing_batch(store, ref, status="registered"):
        ensure_topic(
            bootstrap, topic, request_timeout_ms=settings.kafka.request_timeout_ms, batch_id=batch_id
        )
        rows = tables.scan(batch.dataset, snapshot_id=batch.snapshot_id, batch_id=batch_id)
        with Publisher(bootstrap, request_timeout_ms=settings.kafka.request_timeout_ms) as publisher:
            sent = publisher.publish(
                topic,
                rows,
                key_field=contract.published_keys[0],
                headers=_headers(contract, batch_id, batch.snapshot_id),
                batch_id=batch_id,
                progress=lambda n: progress("publish", n),
            )
    store.update_batch(
        batch_id, status="published", messages_published=sent, published_at=datetime.now(UTC), error=None
    )
    log.info("batch %s: published %d messages to %s", batch_id, sent, topic)
    return int(sent)


def _headers(contract: Contract, batch_id: str, snapshot_id: int) -> dict[str, str]:
    return {
        "contract": contract.name,
        "contract_version": contract.version,
        "batch_id": batch_id,
        "snapshot_id": str(snapshot_id),
    }


@contextmanager
def _failing_batch(store: Any, ref: BatchRef, *, status: str = "failed") -> Iterator[None]:
    """Record a step's failure on the batch (the message only, never secrets) and re-raise."""
    try:
        yield
    except HubError as exc:
        store.update_batch(ref.batch_id, status=status, error=str(exc))
        raise


@dataclass(frozen=True)
class RunResult:
    batch_id: str
    snapshot_id: int
    messages: int | None


def run(
    source: str,
    *,
    settings: HubSettings | None = None,
    full: bool = False,
    publish_rows: bool = True,
    progress: Progress = _noop,
) -> RunResult:
    """All steps of one batch of a source in this process, as the DAG runs them across tasks."""
    settings = settings or get_settings()
    ref = extract(source, settings=settings, full=full, progress=progress)
    validate(ref, settings=settings, progress=progress)
    mask(ref, settings=settings, progress=progress)
    snapshot_id = register(ref, settings=settings)
    messages = publish(ref.batch_id, settings=settings, progress=progress) if publish_rows else None
    return RunResult(ref.batch_id, snapshot_id, messages)


__all__ = [
    "BATCH_ID_COLUMN",
    "ROW_COLUMN",
    "BatchRef",
    "RunResult",
    "extract",
    "mask",
    "publish",
    "register",
    "run",
    "validate",
]
