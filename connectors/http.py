"""HTTP API connector: page through a department system's JSON API as Arrow record batches.

The protocol is the one issuing systems commonly offer (and :mod:`connectors.simulator.issuing_api`
serves)::

    GET <base_url><path>?updated_after=<watermark>&page_size=N&page_token=T
    Authorization: Bearer <token>
    -> {"records": [{...}, ...], "next_page_token": "..." | null}

Each record's keys are mapped through the source's ``columns`` (contract field -> API key).
A key that no record of a page carries is a missing column (the batch fails naming it); a
key missing from some records only is read as null, since JSON APIs often leave nulls out.
Records are gathered page by page and handed on ``chunk_rows`` at a time, so memory is
bounded by one page plus one chunk whatever the size of the source.

Timeouts, lost connections, 429 and 5xx answers are retried with exponential backoff
(``retries`` times); when they persist the error is transient, so the scheduler retries
later. 401/403 is an access error and any other 4xx a fatal one: repeating the same
request cannot help. The bearer token is kept as a secret: never in a message, a log
line or a ``repr``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr

from connectors.base import field_columns
from connectors.config import HttpConnectorConfig, SourceConfig, resolve_url
from connectors.convert import to_batch
from connectors.errors import (
    SourceAccessDeniedError,
    SourceConfigError,
    SourceRequestError,
    SourceResponseError,
    SourceSchemaError,
    SourceUnreachableError,
)
from schemas.errors import ConfigurationError, redact_url

if TYPE_CHECKING:
    from schemas.contract import Contract

log = logging.getLogger(__name__)

BACKOFF_S = 0.5
"""First pause before a retry, doubled each time: 0.5, 1, 2, 4, 8 s for the default 5 retries,
about 15 s in all, long enough to ride out a restart of the department's API server."""
MAX_BACKOFF_S = 30.0
"""Cap on one pause, so a high ``retries`` setting waits longer in total, not exponentially."""
WATERMARK_PARAM = "updated_after"
_RETRIABLE_4XX = frozenset({408, 429})
"""Request timeout and too many requests: the server asks the client to come back later."""


class HttpConnector:
    """Reads a department's paginated JSON API in the canonical schema of its contract."""

    def __init__(
        self,
        source: str,
        base_url: str,
        contract: Contract,
        *,
        path: str = "/",
        token: str | None = None,
        columns: Mapping[str, str] | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
        cursor: str | None = None,
        page_size: int = 1_000,
        timeout_s: float = 30.0,
        retries: int = 5,
        chunk_rows: int = 50_000,
        backoff_s: float = BACKOFF_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``columns`` maps contract field -> record key (unmapped fields read the key of the
        same name); ``transport`` replaces the network, for tests."""
        self.columns: dict[str, str] = field_columns(source, contract, columns, cursor)
        if chunk_rows < 1 or page_size < 1:
            raise SourceConfigError(f"source {source!r}: chunk_rows and page_size must be positive")
        self.source = source
        self.contract = contract
        self.url = base_url.rstrip("/") + "/" + path.lstrip("/")
        self.values = {k: dict(v) for k, v in (values or {}).items()}
        self.cursor = cursor
        self.page_size = page_size
        self.timeout_s = timeout_s
        self.retries = retries
        self.chunk_rows = chunk_rows
        self.backoff_s = backoff_s
        self._token = SecretStr(token) if token else None
        self._transport = transport
        self._client: httpx.Client | None = None
        self._watermark: str | None = None
        self._warned_extra = False

    @classmethod
    def from_source(
        cls, source: SourceConfig, *, chunk_rows: int, env: Mapping[str, str] | None = None
    ) -> HttpConnector:
        """The connector a source file describes; URL and token come from the environment or
        an Airflow connection (whose password is the token when ``token_env`` is not set)."""
        config = source.connector
        if not isinstance(config, HttpConnectorConfig):
            raise SourceConfigError(f"source {source.name!r} is not an HTTP source (kind {config.kind!r})")
        env = os.environ if env is None else env
        url = httpx.URL(resolve_url(config, env, source=source.name))
        token: str | None = None
        if config.token_env:
            token = env.get(config.token_env)
            if not token:
                raise ConfigurationError(
                    f"source {source.name!r}: environment variable {config.token_env} (the bearer token) is not set"
                )
        elif url.password:
            token = url.password
        base = str(url.copy_with(username=None, password=None))
        return cls(
            source.name,
            base,
            source.contract,
            path=config.path,
            token=token,
            columns=source.columns,
            values=source.values,
            cursor=source.cursor,
            page_size=config.page_size,
            timeout_s=config.timeout_s,
            retries=config.retries,
            chunk_rows=source.chunk_rows or chunk_rows,
        )

    def __repr__(self) -> str:
        return f"HttpConnector(source={self.source!r}, url={redact_url(self.url)!r})"

    # connection ------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {"Accept": "application/json"}
            if self._token is not None:
                headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
            self._client = httpx.Client(
                headers=headers, timeout=self.timeout_s, transport=self._transport, follow_redirects=False
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get(self, params: Mapping[str, str | int], page: int) -> dict[str, Any]:
        """One page, retried on timeouts, lost connections, 408/429 and 5xx."""
        where = redact_url(self.url)
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                pause = min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                log.warning(
                    "source %r: %s, page %d: %s; retry %d of %d in %.1f s",
                    self.source, where, page, reason, attempt, self.retries, pause,
                )  # fmt: skip
                time.sleep(pause)
            # Streamed, so that the page's bytes are not kept on the response object: httpx
            # responses sit in a reference cycle and would hold every page until a full
            # garbage collection, making memory grow with the source.
            try:
                with self.client.stream("GET", self.url, params=params) as response:
                    status = response.status_code
                    content = b"".join(response.iter_bytes()) if status == 200 else response.read()
            except httpx.TimeoutException:
                reason = f"no answer within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                reason = _transport_reason(exc)
                continue
            if status in (401, 403):
                raise SourceAccessDeniedError(self.source, self.url, status)
            if status >= 500 or status in _RETRIABLE_4XX:
                reason = f"HTTP {status}"
                continue
            if status != 200:
                raise SourceRequestError(self.source, self.url, status, _detail(response))
            return self._body(content, page)
        attempts = self.retries + 1
        raise SourceUnreachableError(
            self.source, self.url, f"page {page}: {reason} ({attempts} attempt{'s' * (attempts > 1)})"
        )

    def _body(self, content: bytes, page: int) -> dict[str, Any]:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SourceResponseError(
                self.source, self.url, page, 'the answer is not a JSON object with a "records" list'
            )
        token = body.get("next_page_token")
        if token is not None and not isinstance(token, str):
            raise SourceResponseError(
                self.source, self.url, page, f"next_page_token is a {type(token).__name__}, not text"
            )
        if not all(isinstance(r, dict) for r in body["records"]):
            raise SourceResponseError(self.source, self.url, page, "a record is not a JSON object")
        return body

    def _pages(self, since: str | None, page_size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        params: dict[str, str | int] = {"page_size": page_size}
        if since is not None:
            params[WATERMARK_PARAM] = since
        page = 1
        seen: set[str] = set()
        while True:
            body = self._get(params, page)
            yield page, body["records"]
            token = body.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise SourceResponseError(self.source, self.url, page, "the same next_page_token came twice")
            seen.add(token)
            params["page_token"] = token
            page += 1

    # the Connector interface -----------------------------------------------------------

    def check(self) -> None:
        """Reach the API with the token and check the first record carries every mapped key."""
        for page, records in self._pages(None, 1):
            self._check_keys(records, page)
            return

    def _check_keys(self, records: Sequence[Mapping[str, Any]], page: int) -> None:
        if not records:
            return
        present: set[str] = set().union(*records)
        wanted = self.columns.values()
        missing = [
            key if key == field else f"{key} (for field {field})"
            for field, key in self.columns.items()
            if key not in present
        ]
        if missing:
            raise SourceSchemaError(self.source, f"{redact_url(self.url)} page {page}", missing)
        extra = sorted(present - set(wanted))
        if extra and not self._warned_extra:
            self._warned_extra = True
            log.warning(
                "source %r: key(s) %s of %s are not in contract %r and are not read",
                self.source, ", ".join(extra), redact_url(self.url), self.contract.name,
            )  # fmt: skip

    def read(self, *, since: str | None) -> Iterator[pa.RecordBatch]:
        """Records changed after ``since`` (all when None), ``chunk_rows`` per batch."""
        self._watermark = since
        self._warned_extra = False
        pending: list[dict[str, Any]] = []
        for page, records in self._pages(since, self.page_size):
            self._check_keys(records, page)
            pending.extend(records)
            while len(pending) >= self.chunk_rows:
                yield self._batch(pending[: self.chunk_rows])
                del pending[: self.chunk_rows]
        if pending:
            yield self._batch(pending)

    def _batch(self, records: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        raw = [[r.get(key) for r in records] for key in self.columns.values()]
        batch = to_batch(raw, self.contract, values=self.values)
        if self.cursor is not None:
            self._advance(batch.column(self.cursor))
        return batch

    def _advance(self, column: pa.Array) -> None:
        greatest = pc.max(column).as_py()
        if greatest is None:
            return
        text = greatest.isoformat() if hasattr(greatest, "isoformat") else str(greatest)
        if self._watermark is None or _later(text, self._watermark):
            self._watermark = text

    @property
    def watermark(self) -> str | None:
        return self._watermark

    def checkpoint(self) -> dict[str, Any] | None:
        """Nothing to hand over: the watermark alone says what was read."""
        return None

    def commit(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Nothing to archive: an API keeps its records."""


def _later(text: str, than: str) -> bool:
    """Compare cursor texts as instants when both parse, else as text."""
    try:
        return dt.datetime.fromisoformat(text) > dt.datetime.fromisoformat(than)
    except (ValueError, TypeError):
        return text > than


def _transport_reason(exc: httpx.TransportError) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _detail(response: httpx.Response) -> str:
    """A short, value-free hint from an error answer: the ``error``/``detail`` text when short."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and len(value) <= 200:
                return f" ({value})"
    return ""
