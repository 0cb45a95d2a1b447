"""What the API's handlers share for the life of the server: the store, the gateway, the
access-log appender, the limits and the verification indexes reloaded when a snapshot changes."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from catalog.access.auth import Authenticator, Caller
from catalog.access.gateway import Gateway, Limits
from catalog.access.ratelimit import EnumerationGuard, TokenBuckets, retry_after
from catalog.access.responses import (
    ApiProblem,
)
from catalog.access.verification import (
    BY_DATASET,
    INDEX_NAMESPACE,
    VerificationIndex,
    current_snapshot,
    load_index,
)
from catalog.audit import AccessLog, GroupAppender, load_keys
from catalog.entries import Catalogue
from catalog.metadata import MetadataStore
from catalog.settings import ApiSettings, AuditSettings, CatalogSettings
from catalog.tables import QueryEngine, SharedTables
from masking.keys import Keyring
from masking.settings import MaskingSettings

if TYPE_CHECKING:
    from catalog.access.gateway import Gateway
    from catalog.audit import AuditKeys
    from catalog.tables import SharedTables
    from masking.keys import DataKey

log = logging.getLogger(__name__)


class Indexes:
    """The verification indexes in memory, reloaded when their tables' snapshots change.

    The keyring is re-read when its file changes, so tokens of a new token-key version can be
    looked up as soon as the index holds them.
    """

    def __init__(
        self, internal: SharedTables, keyring_path: Path, *, every: float, master_key_file: Path | None = None
    ) -> None:
        self.internal = internal
        self.keyring_path = Path(keyring_path)
        self.master_key_file = master_key_file
        self.every = every
        self._indexes: dict[str, VerificationIndex | None] = {}
        self._keys: dict[int, DataKey] = {}
        self._keyring_signature: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    def get(self, dataset: str) -> VerificationIndex | None:
        return self._indexes.get(dataset)

    @property
    def keys(self) -> dict[int, DataKey]:
        return self._keys

    def refresh(self) -> None:
        """Reload the keyring if it changed and every index whose snapshot changed."""
        with self._refresh_lock:
            info = self.keyring_path.stat()
            signature = (info.st_ino, info.st_mtime_ns, info.st_size)
            if signature != self._keyring_signature:
                keyring = Keyring.load(self.keyring_path, master_key_file=self.master_key_file)
                self._keys = {i.version: keyring.token_key(i.version) for i in keyring.versions("token")}
                self._keyring_signature = signature
            for dataset in BY_DATASET:
                loaded = self._indexes.get(dataset)
                snapshot = current_snapshot(self.internal, dataset)
                if loaded is not None and loaded.snapshot_id == snapshot:
                    continue
                if loaded is None and snapshot is None and dataset in self._indexes:
                    continue
                started = time.perf_counter()
                index = load_index(self.internal, dataset)
                self._indexes[dataset] = index
                pa.default_memory_pool().release_unused()  # the scan's buffers, no longer needed
                if index is not None:
                    log.info(
                        "verification index %s: snapshot %s, %d rows, %.0f MB, loaded in %.1f s",
                        dataset,
                        index.snapshot_id,
                        index.rows,
                        index.nbytes / 1e6,
                        time.perf_counter() - started,
                    )

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-verify-indexes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception:  # keep serving the indexes already loaded
                log.exception("reloading the verification indexes failed; the loaded ones stay in use")

    def status(self) -> dict[str, str]:
        return {d: ("loaded" if self._indexes.get(d) is not None else "missing") for d in BY_DATASET}


@dataclass(frozen=True)
class FieldGrant:
    """A grant narrowed to the asked fields plus the key column, to read one record through the gateway."""

    id: int
    system: str
    dataset: str
    level: str
    columns: tuple[str, ...]


class ServerLog(AccessLog):
    """The access log with the keys of the server's keyring (re-read when the file changes)."""

    def __init__(self, store: Any, keyring_path: Path, *, checkpoint_every: int, retention_days: int) -> None:
        super().__init__(store, checkpoint_every=checkpoint_every, retention_days=retention_days)
        self._keyring_path = keyring_path

    @property
    def keys(self) -> AuditKeys:
        return load_keys(self._keyring_path)


ENDPOINTS = {"query": "query", "verify": "verify", "catalog": "catalog.read"}
"""Rate-limit bucket -> access-log action."""


class ServiceSettings(Protocol):
    """What the API reads of the hub's settings; ``hub.settings.HubSettings`` has it.

    A structural type, so that the API (a lower layer) never imports the hub's settings:
    the command that serves it hands them in.
    """

    @property
    def catalog(self) -> CatalogSettings: ...
    @property
    def masking(self) -> MaskingSettings: ...
    @property
    def audit(self) -> AuditSettings: ...
    @property
    def api(self) -> ApiSettings: ...


class Service:
    """What the API's handlers share: store, gateway, access log, limits and indexes."""

    def __init__(self, settings: ServiceSettings) -> None:
        assert settings.catalog.metadata_url is not None and settings.catalog.iceberg_url is not None
        assert settings.catalog.warehouse is not None
        self.settings = settings
        api = settings.api
        keyring_path = settings.masking.keyring_path
        load_keys(keyring_path)  # fail at start-up when the keyring or master key is missing
        self.store = MetadataStore(settings.catalog.metadata_url)
        self.log = GroupAppender(
            ServerLog(
                self.store,
                keyring_path,
                checkpoint_every=settings.audit.checkpoint_every,
                retention_days=settings.audit.retention_days,
            )
        )
        self.tables = SharedTables.from_settings(settings.catalog)
        self.gateway: Gateway = Gateway(
            QueryEngine(self.tables), limits=Limits(api.query_seconds, api.query_max_rows)
        )
        self.catalogue = Catalogue(self.store, tables=self.tables)
        self.auth = Authenticator(self.store, ttl=api.auth_cache_seconds)
        self.buckets = TokenBuckets(
            {
                "query": (api.query_rate, api.query_burst),
                "verify": (api.verify_rate, api.verify_burst),
                "catalog": (api.catalog_rate, api.catalog_burst),
            }
        )
        self.guard = EnumerationGuard(
            window=api.enumeration_window_seconds,
            no_match_limit=api.enumeration_no_match,
            prefix_length=api.enumeration_prefix_length,
            close_limit=api.enumeration_close,
            cooldown=api.enumeration_cooldown_seconds,
        )
        internal = SharedTables(
            settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=INDEX_NAMESPACE
        )
        self.indexes = Indexes(
            internal,
            keyring_path,
            every=api.index_reload_seconds,
            master_key_file=settings.masking.master_key_file,
        )
        self.indexes.refresh()

    def close(self) -> None:
        self.indexes.stop()
        self.log.close()
        self.store.dispose()

    # -- access log --------------------------------------------------------------------------

    def record(self, **entry: Any) -> int:
        return self.log.append(**entry)

    def refuse(
        self,
        caller: Caller | None,
        *,
        action: str,
        status: int,
        slug: str,
        title: str,
        reason: str,
        client: str | None = None,
        headers: dict[str, str] | None = None,
        **entry: Any,
    ) -> ApiProblem:
        """Record a refusal and build its problem (the caller raises it)."""
        detail = dict(entry.pop("detail", None) or {})
        if caller is not None:
            detail.setdefault("request", caller.request_id)
        number = self.record(
            action=action,
            outcome="denied",
            system=caller.system.id if caller else entry.pop("system", None),
            department=caller.system.department if caller else entry.pop("department", None),
            client=caller.client if caller else client,
            reason=reason,
            detail=detail or None,
            **entry,
        )
        return ApiProblem(status, slug, title, reason, headers=headers, entry=number)

    def limit(self, caller: Caller, bucket: str) -> None:
        wait = self.buckets.take(caller.system.id, bucket)
        if wait > 0:
            rate, burst = self.buckets.limits[bucket]
            raise self.refuse(
                caller,
                action=ENDPOINTS[bucket],
                status=429,
                slug="rate-limited",
                title="Too many requests",
                reason=f"rate limit of system {caller.system.id} on {bucket}: {rate:g} requests/s, "
                f"burst {burst}; retry in {wait:.1f} s",
                headers={"Retry-After": retry_after(wait)},
            )
