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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hub.context import HubContext
from hub.settings import HubSettings, get_settings
from schemas.contract import BATCH_ID_COLUMN, Contract, load_contract
from schemas.errors import FatalError, HubError
from schemas.staging import StageWriter, read_chunks, staged_file

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.config import SourceConfig

# Each step imports its stage inside its body: an Airflow task loads only what its step needs
# (Great Expectations for validate, pyiceberg for register), not every stage.

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
        return staged_file(self.folder, stage)


def _noop(step: str, rows: int) -> None:
    return None


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
    from catalog.metadata import new_batch_id
    from connectors.base import batch_schema

    settings = settings or get_settings()
    settings.ensure_home()
    source = HubContext(settings).source(source_name)
    contract = source.contract
    HubContext(settings).keyring()  # fail before any work when keys are missing
    store = HubContext(settings).store
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
            batch_id,
            department=source.department.name,
            department_code=source.department.code,
            full_refresh=since is None,
            watermark_from=since,
        )
        with _failing_batch(store, ref):
            schema = batch_schema(contract.arrow_schema()).append(
                pa.field(ROW_COLUMN, pa.int64(), nullable=False)
            )
            writer = StageWriter(ref.file("raw"), schema)
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
    """Check every staged row against the contract's suite and cross-dataset rules, then gate.

    Failing rows go to quarantine with every rule they broke, and the batch's Data Docs are
    written under ``<home>/datadocs`` (linked from the batch). A batch whose quarantined
    share exceeds the contract's ``max_invalid_share`` is held (:class:`BatchHeldError`:
    nothing registers, the watermark stays) until a steward releases it (:func:`release`);
    otherwise its quarantined rows open correction requests to the source department.
    """
    from catalog.corrections import STAGED_SCHEMA, Corrections, stage_rows
    from masking.apply import published_forms
    from quality.gate import held_error, judge
    from quality.references import ReferenceCheck
    from quality.step import validate_staged
    from quality.validate import ChunkResult

    settings = settings or get_settings()
    context = HubContext(settings)
    contract = load_contract(ref.dataset)
    store = context.store
    batch = store.get_batch(ref.batch_id)
    today = context.today()
    with _failing_batch(store, ref):
        store.clear_quarantine(ref.batch_id)  # a retried step starts clean
        Corrections(store).clear_batch(ref.batch_id)
        keyring = context.keyring()
        references = ReferenceCheck.of(contract, lambda: context.tables, published_forms(keyring), today)
        requests = StageWriter(ref.file(CORRECTIONS_STAGE), STAGED_SCHEMA)

        def quarantine(result: ChunkResult) -> None:
            store.add_quarantine(ref.batch_id, result.quarantined, result.violations)
            requests.write(stage_rows(result.quarantined, result.violations, contract, keyring))

        try:
            validated = validate_staged(
                ref.folder,
                contract,
                today=today,
                batch_id=ref.batch_id,
                source=batch.source,
                references=references,
                on_quarantined=quarantine,
                progress=progress,
            )
        finally:
            requests.close()
        validator, seen, quarantined = validated.validator, validated.rows_in, validated.rows_quarantined
        store.update_batch(
            ref.batch_id, status="validated", rows_valid=validated.rows_valid, rows_quarantined=quarantined
        )
        if validated.warnings:
            store.add_warnings(ref.batch_id, list(validated.warnings))
        store.check_accounting(ref.batch_id)
        _data_docs(validator, ref, settings)
    log.info("batch %s: %d valid, %d quarantined", ref.batch_id, validated.rows_valid, quarantined)
    verdict = judge(seen, quarantined, contract.max_invalid_share, store.violations_summary(ref.batch_id))
    if verdict.held:
        error = held_error(
            verdict,
            batch_id=ref.batch_id,
            dataset=ref.dataset,
            source=batch.source,
            watermark=batch.watermark_from,
        )
        store.hold_batch(ref.batch_id, str(error))
        log.info("batch %s: held by the quality gate (%s)", ref.batch_id, verdict.figures())
        raise error
    _open_corrections(ref, settings)
    return ref


def _data_docs(validator: Any, ref: BatchRef, settings: HubSettings) -> None:
    """Render the batch's Data Docs and link them from the batch.

    A report that cannot be written does not stop the data: the batch records why and goes on.
    """
    from quality.errors import DataDocsError

    store = HubContext(settings).store
    try:
        page = validator.build_data_docs(ref.batch_id, settings.home / "datadocs")
    except DataDocsError as exc:
        store.add_warnings(ref.batch_id, [f"Data Docs not written: {exc}"])
        log.warning("batch %s: Data Docs not written: %s", ref.batch_id, exc)
        return
    store.update_batch(ref.batch_id, data_docs=str(page))


CORRECTIONS_STAGE = "corrections"
"""Staged file of a batch's quarantined rows as correction requests (see :func:`validate`)."""


def _open_corrections(ref: BatchRef, settings: HubSettings) -> None:
    """Open the correction requests validation staged, once the batch may go on."""
    from catalog.corrections import Corrections, due_date
    from catalog.sharing import today_cst

    path = ref.file(CORRECTIONS_STAGE)
    store = HubContext(settings).store
    if not path.exists():
        return
    with _failing_batch(store, ref):
        batch = store.get_batch(ref.batch_id)
        contract = load_contract(ref.dataset)
        due, warning = due_date(today_cst(), settings.quality.correction_days, settings.sharing.calendar_file)
        opened = Corrections(store).open_from_quarantine(
            batch,
            read_chunks(path, settings.connectors.chunk_rows),
            due_on=due,
            department_code=batch.department_code or contract.owner_department.code,
        )
        if warning:
            store.add_warnings(ref.batch_id, [warning])
    log.info(
        "batch %s: %d correction requests opened (due %s), %d rows already had one",
        ref.batch_id,
        opened.opened,
        opened.due_on,
        opened.already_open,
    )


def mask(ref: BatchRef, *, settings: HubSettings | None = None, progress: Progress = _noop) -> BatchRef:
    """Apply each field's masking rule; only masked rows are staged for registration.

    While an older token key is in its mapping period (after ``hub keys rotate --kind
    token``), the old -> new token pairs of this batch's identifiers are staged as well and
    registered into ``shared.token_map``, so consumers' joins survive the rotation. The batch's
    verification rows (keyed token and name digest, never a raw value; :mod:`catalog.access.verification`)
    are staged from the raw values here, the one step that holds them.
    """
    from catalog.tables.verification_index import IndexStager
    from masking.step import mask_staged

    settings = settings or get_settings()
    contract = load_contract(ref.dataset)
    store = HubContext(settings).store
    with _failing_batch(store, ref):
        keyring = HubContext(settings).keyring()
        verification = IndexStager(
            ref.folder, contract.name, keyring, mapping_days=settings.masking.token_mapping_days
        )
        try:
            mask_staged(
                ref.folder,
                contract,
                keyring,
                batch_id=ref.batch_id,
                chunk_rows=settings.connectors.chunk_rows,
                mapping_days=settings.masking.token_mapping_days,
                also=verification.add,
                progress=progress,
            )
        finally:
            verification.close()
        store.update_batch(ref.batch_id, status="masked")
    return ref


def register(ref: BatchRef, *, settings: HubSettings | None = None) -> int:
    """Commit the masked rows to the shared table in one atomic snapshot; returns its id.

    The register step (:mod:`catalog.tables.register`) commits; the pipeline then closes the
    correction requests the batch answers and records the batch as registered, which is
    what commits its watermark.
    """
    from catalog.tables.register import register_staged_batch

    settings = settings or get_settings()
    contract = load_contract(ref.dataset)
    context = HubContext(settings)
    store = context.store
    batch = store.get_batch(ref.batch_id)
    if batch.snapshot_id is not None:
        log.info("batch %s: already registered as snapshot %s", ref.batch_id, batch.snapshot_id)
        return int(batch.snapshot_id)
    with _failing_batch(store, ref):
        store.check_accounting(ref.batch_id)
        registered = register_staged_batch(
            ref.folder,
            contract,
            shared=context.tables,
            internal=context.tables_in("internal"),
            batch_id=ref.batch_id,
            chunk_rows=settings.connectors.chunk_rows,
        )
        _close_corrections(ref, contract, settings, registered.token_pairs)
        store.update_batch(
            ref.batch_id,
            status="registered",
            snapshot_id=registered.snapshot_id,
            registered_at=datetime.now(UTC),
            **registered.anonymity,
        )
    _settle_source(ref, batch.connector_state, settings)
    shutil.rmtree(ref.folder, ignore_errors=True)
    log.info("batch %s: registered as snapshot %s", ref.batch_id, registered.snapshot_id)
    return registered.snapshot_id


def _close_corrections(
    ref: BatchRef, contract: Contract, settings: HubSettings, pairs: pa.Table | None
) -> None:
    """Close the open correction requests the batch's registered records answer.

    After a token-key rotation, requests keyed by an old token first move to the new one.
    """
    from catalog.corrections import Corrections

    corrections = Corrections(HubContext(settings).store)
    if pairs is not None:
        moved = corrections.rekey(contract.name, pairs)
        if moved:
            log.info("batch %s: %d correction requests re-keyed to new tokens", ref.batch_id, moved)
    columns = corrections.columns_to_close(contract.name, contract)
    if not columns:
        return
    masked = pq.ParquetFile(ref.file("masked"))
    chunks = masked.iter_batches(batch_size=settings.connectors.chunk_rows, columns=columns)
    closed = corrections.close_corrected(contract.name, ref.batch_id, chunks, contract)
    if closed:
        log.info("batch %s: %d correction requests closed by corrected records", ref.batch_id, closed)


def _settle_source(ref: BatchRef, state: str | None, settings: HubSettings) -> None:
    """The batch is recorded as registered, which commits its watermark: let its source
    settle what it read, from the recorded state (a file drop archives its files)."""
    from connectors.factory import settle_registered

    source = HubContext(settings).source(ref.source)
    settle_registered(source, json.loads(state) if state else None, env=settings.source_env())


def open_outbox(settings: HubSettings) -> Any:
    """The delivery outbox over the hub's store, shared tables and Kafka settings."""
    from catalog.deliveries import Outbox

    return Outbox(
        HubContext(settings).store,
        HubContext(settings).tables,
        bootstrap=settings.kafka.bootstrap_servers,
        topic_prefix=settings.kafka.topic_prefix,
        request_timeout_ms=settings.kafka.request_timeout_ms,
    )


def publish(batch_id: str, *, settings: HubSettings | None = None, progress: Progress = _noop) -> int:
    """Queue a registered batch's deliveries (one per active grant on its dataset) in the
    outbox and send them, each to its grant's topic; returns the messages sent for the batch.

    The grants' queues are sent whole and in order, so a delivery left pending by an earlier
    outage goes first. A broker outage leaves the deliveries pending and the batch
    ``registered`` (`hub publish --pending` sends them later); the batch is ``published``
    once nothing of it is pending. Publishing a published batch again sends nothing: a
    replay is `hub publish --replay GRANT --from-snapshot ID`.
    """
    from catalog.metadata import BatchStatus

    settings = settings or get_settings()
    store = HubContext(settings).store
    batch = store.get_batch(batch_id)
    if batch.snapshot_id is None:
        raise FatalError(f"batch {batch_id} is not registered (status {batch.status}): nothing to publish")
    ref = BatchRef(batch_id, batch.source, batch.dataset, batch.staging_path or "")
    outbox = open_outbox(settings)
    # A failed delivery leaves the batch as it was (registered): publishing can simply be run again.
    kept = "published" if batch.status is BatchStatus.PUBLISHED else "registered"
    with _failing_batch(store, ref, status=kept):
        # Earlier batches of the dataset still owed (run with --no-publish) are queued too, so
        # each grant receives them first, in snapshot order.
        outbox.queue_registered(batch.dataset)
        outbox.queue_batch(batch_id)
        report = outbox.send(
            grants=outbox.grants_owed(batch_id), progress=lambda _grant, n: progress("publish", n)
        )
        _raise_failed(report)
    sent = report.messages(batch_id)
    for grant in report.busy:
        log.info("batch %s: grant %s's deliveries are being sent by another process", batch_id, grant)
    log.info("batch %s: %d messages sent in %d deliveries", batch_id, sent, len(report.sent))
    return int(sent)


def publish_pending(*, settings: HubSettings | None = None, progress: Progress = _noop) -> Any:
    """Send everything the outbox owes: batches still ``registered`` (after an outage or
    ``--no-publish``) are queued first, new grants get their initial delivery, revoked and
    expired grants' deliveries are cancelled. Returns the :class:`catalog.deliveries.outbox.SendReport`."""
    settings = settings or get_settings()
    outbox = open_outbox(settings)
    outbox.queue_registered()
    outbox.queue_initials()
    report = outbox.send(progress=lambda _grant, n: progress("publish", n))
    _raise_failed(report)
    return report


def replay(
    grant_id: int,
    from_snapshot: int,
    *,
    actor: str | None = None,
    settings: HubSettings | None = None,
    progress: Progress = _noop,
) -> Any:
    """Send a grant the rows of every batch registered since ``from_snapshot`` again, read
    from the catalogue with the grant's columns; refused for a revoked or expired grant."""
    settings = settings or get_settings()
    outbox = open_outbox(settings)
    outbox.replay(grant_id, from_snapshot, actor=actor)
    report = outbox.send(grants=[grant_id], progress=lambda _grant, n: progress("publish", n))
    _raise_failed(report)
    return report


def _raise_failed(report: Any) -> None:
    """Deliveries that failed for a reason a retry will not fix end the step with their reasons."""
    if report.failed:
        raise FatalError("; ".join(message for _delivery, message in report.failed))


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


def release(
    batch_id: str,
    *,
    steward: str | None,
    reason: str,
    settings: HubSettings | None = None,
    publish_rows: bool = True,
    progress: Progress = _noop,
) -> RunResult:
    """Let a batch the quality gate held go on, as a steward of its source department decides.

    Records who released it, why and when on the batch (and in the access log), opens its
    correction requests, then masks, registers (committing the source's watermark) and
    publishes its staged rows with the same steps as :func:`run`. A released batch whose
    continuation failed (a broker or database outage) is continued by releasing it again.
    Refused: a batch that is not held, one a later registered batch of its source
    superseded (it re-read the same rows), or one whose staged rows are gone.
    """
    from catalog.audit import record_access
    from catalog.errors import ReleaseRefusedError
    from catalog.metadata import BatchStatus
    from catalog.sharing import require_steward

    settings = settings or get_settings()
    store = HubContext(settings).store
    batch = store.get_batch(batch_id)
    # batches recorded before the source department's code was kept: the dataset's owner (一数一源)
    department = batch.department_code or load_contract(batch.dataset).owner_department.code
    name = require_steward(store, steward, department, action="batch.release", dataset=batch.dataset)
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseRefusedError(f"releasing batch {batch_id} needs a --reason (it is recorded)")
    resuming = (
        batch.released_at is not None
        and batch.snapshot_id is None
        and batch.status in (BatchStatus.VALIDATED, BatchStatus.MASKED, BatchStatus.FAILED)
    )
    if batch.status is not BatchStatus.HELD and not resuming:
        hint = f"; publish it again with `hub publish {batch_id}`" if batch.snapshot_id is not None else ""
        raise ReleaseRefusedError(
            f"batch {batch_id} is {batch.status.value}, not held: only a batch the quality gate "
            f"held can be released{hint}"
        )
    later = store.superseding_batch(batch_id)
    if later is not None:
        raise ReleaseRefusedError(
            f"batch {batch_id} was superseded by batch {later.id} of source {batch.source} "
            f"(registered {later.registered_at:%Y-%m-%d %H:%M} UTC), which read the same source rows "
            "again: releasing it would put older records over newer ones; its quarantine stays"
        )
    ref = BatchRef(batch.id, batch.source, batch.dataset, batch.staging_path or "")
    if not batch.staging_path or not ref.file("valid").exists():
        raise ReleaseRefusedError(
            f"the staged rows of batch {batch_id} are gone ({batch.staging_path or 'no staging'}): "
            f"run the source again (`hub run {batch.source}`)"
        )
    if not resuming:
        store.release_batch(batch_id, steward=name, reason=reason)
    record_access(
        store,
        action="batch.release",
        outcome="allowed",
        actor=name,
        department=department,
        dataset=batch.dataset,
        rows=batch.rows_valid,
        reason=reason,
        detail={"batch": batch_id, "resumed": resuming},
    )
    log.info("batch %s: released by %s (%s)", batch_id, name, reason)
    _open_corrections(ref, settings)
    mask(ref, settings=settings, progress=progress)
    snapshot_id = register(ref, settings=settings)
    messages = publish(batch_id, settings=settings, progress=progress) if publish_rows else None
    return RunResult(batch_id, snapshot_id, messages)


__all__ = [
    "BATCH_ID_COLUMN",
    "ROW_COLUMN",
    "BatchRef",
    "RunResult",
    "extract",
    "mask",
    "publish",
    "publish_pending",
    "register",
    "release",
    "replay",
    "run",
    "validate",
]
