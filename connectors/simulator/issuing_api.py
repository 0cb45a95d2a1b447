"""Certificate issuing system simulator: a real local HTTP API serving given records.

Issuing authorities expose their certificates through an HTTP API of their own design;
this one speaks a typical protocol so the HTTP connector, the demo and the tests have a
real server to talk to::

    GET /api/v1/certificates?updated_after=<ISO text>&page_size=N&page_token=T
    Authorization: Bearer <token>
    -> {"records": [...], "next_page_token": "..." | null}

Records keep the system's own field names (camelCase: ``certificateId``, ``updatedAt``...)
and are ordered by ``updatedAt`` then ``certificateId``. The page token is the position
of the last record sent (keyset pagination), so records changed while a client pages
through shift nothing it has not read yet. Test hooks fail the next requests with a
status (:meth:`IssuingApi.fail_next`) or hold them longer than a client waits
(:meth:`IssuingApi.delay_next`).

The server runs uvicorn in a background thread on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import datetime as dt
import hmac
import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa

PATH = "/api/v1/certificates"
ID_FIELD = "certificateId"
CURSOR_FIELD = "updatedAt"
MAX_PAGE_SIZE = 10_000
"""Larger pages are refused (422), as real systems cap them to protect themselves."""
START_TIMEOUT_S = 10.0
"""Generous: two shared cores may be busy, and a server that never starts is a real failure."""

Records: TypeAlias = pa.Table | Sequence[Mapping[str, Any]]


@dataclass
class _Hooks:
    fail_left: int = 0
    fail_status: int = 503
    delay_left: int = 0
    delay_s: float = 0.0


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _moment(text: str) -> dt.datetime:
    """Sort key of a cursor value: naive UTC, so offsets and naive texts compare alike."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


class IssuingApi:
    """A certificate issuing system's API serving the records it is given."""

    def __init__(
        self,
        records: Records = (),
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        id_field: str = ID_FIELD,
        cursor_field: str = CURSOR_FIELD,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.id_field = id_field
        self.cursor_field = cursor_field
        self.requests = 0
        """Requests received (any outcome): lets tests count a client's retries."""
        self._lock = threading.Lock()
        self._hooks = _Hooks()
        self._by_id: dict[str, dict[str, object]] = {}
        self._order: list[tuple[dt.datetime, str]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.replace(records)

    def __repr__(self) -> str:
        return f"IssuingApi(url={self.base_url!r}, records={len(self._by_id)})"

    # records ---------------------------------------------------------------------------

    def _rows(self, records: Records) -> list[dict[str, object]]:
        rows = records.to_pylist() if isinstance(records, pa.Table) else [dict(r) for r in records]
        return [{k: _json_value(v) for k, v in row.items()} for row in rows]

    def _key(self, row: Mapping[str, object]) -> tuple[dt.datetime, str]:
        return _moment(str(row[self.cursor_field])), str(row[self.id_field])

    def replace(self, records: Records) -> None:
        """Serve exactly ``records`` from now on."""
        rows = self._rows(records)
        with self._lock:
            self._by_id = {str(r[self.id_field]): r for r in rows}
            self._order = sorted(self._key(r) for r in self._by_id.values())

    def upsert(self, records: Records) -> None:
        """Add records and change existing ones (same identifier), as a day of changes does."""
        rows = self._rows(records)
        with self._lock:
            for row in rows:
                self._by_id[str(row[self.id_field])] = row
            self._order = sorted(self._key(r) for r in self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    # test hooks ------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (503 by default)."""
        with self._lock:
            self._hooks.fail_left = count
            self._hooks.fail_status = status

    def delay_next(self, count: int, seconds: float) -> None:
        """Hold the next ``count`` requests for ``seconds`` before answering (client timeouts)."""
        with self._lock:
            self._hooks.delay_left = count
            self._hooks.delay_s = seconds

    # protocol --------------------------------------------------------------------------

    def page(self, *, updated_after: str | None, page_size: int, page_token: str | None) -> dict[str, object]:
        """One page of the protocol; raises ValueError on a malformed argument."""
        with self._lock:
            if page_token:
                start = bisect.bisect_right(self._order, _decode_token(page_token))
            elif updated_after:
                start = bisect.bisect_right(self._order, (_moment(updated_after), "\U0010ffff"))
            else:
                start = 0
            keys = self._order[start : start + page_size]
            records = [self._by_id[key[1]] for key in keys]
            more = start + page_size < len(self._order)
        next_token = _encode_token(keys[-1]) if keys and more else None
        return {"records": records, "next_page_token": next_token}

    def _take_hooks(self) -> tuple[int | None, float]:
        with self._lock:
            self.requests += 1
            hooks = self._hooks
            status = None
            if hooks.fail_left > 0:
                hooks.fail_left -= 1
                status = hooks.fail_status
            delay = 0.0
            if hooks.delay_left > 0:
                hooks.delay_left -= 1
                delay = hooks.delay_s
            return status, delay

    def app(self) -> Any:
        """The FastAPI application (importable without starting a server)."""
        from fastapi import FastAPI, Header, Query
        from fastapi.responses import JSONResponse

        app = FastAPI(title="Certificate issuing system (simulated)", docs_url=None, redoc_url=None)

        @app.get(PATH)
        async def certificates(
            updated_after: str | None = None,
            page_size: int = Query(default=1_000, ge=1, le=MAX_PAGE_SIZE),
            page_token: str | None = None,
            authorization: str | None = Header(default=None),
        ) -> JSONResponse:
            status, delay = self._take_hooks()
            if delay:
                await asyncio.sleep(delay)
            expected = f"Bearer {self.token}".encode()
            if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
                return JSONResponse(
                    {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
            if status is not None:
                return JSONResponse({"error": "injected failure"}, status_code=status)
            try:
                body = self.page(updated_after=updated_after, page_size=page_size, page_token=page_token)
            except ValueError:
                return JSONResponse({"error": "bad updated_after or page_token"}, status_code=400)
            return JSONResponse(body)

        return app

    # server ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        return f"http://{self.host}:{self.port}" if self._thread is not None else None

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("the issuing API is already running")
        if self.port is None:
            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app(),
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="issuing-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"the issuing API did not start on {self.host}:{self.port}")
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call more than once."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> IssuingApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _encode_token(key: tuple[dt.datetime, str]) -> str:
    raw = json.dumps([key[0].isoformat(), key[1]], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    try:
        moment, ident = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        return dt.datetime.fromisoformat(moment), str(ident)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValueError("malformed page token") from exc
