"""A group-commit writer shared by the threads of one process (a server): each append waits
only for its own entry, and one dedicated thread commits what the threads hand in.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from catalog.audit.chain import (
    with_defaults,
)
from catalog.audit.fields import (
    entry_fields,
)
from catalog.audit.log import AccessLog


class GroupAppender:
    """Appends from many threads of one process, sharing transactions (group commit).

    Each :meth:`append` returns only once its entry is committed, as :func:`record_access`
    does. One dedicated thread writes: request threads only hand in their entry and wait, so
    each waits for at most the transaction in progress and the one holding its entry, while
    the entries handed in meanwhile go together in the next transaction. A server answering
    many requests at once pays one lock and one commit per batch instead of per entry. A
    failed batch fails every caller in it (nothing is lost silently).
    """

    def __init__(self, log: AccessLog, *, max_batch: int = 500) -> None:
        self._log = log
        self._max_batch = max_batch
        self._wake = threading.Condition(threading.Lock())
        self._pending: list[tuple[dict[str, Any], Future[int]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hub-access-log", daemon=True)
        self._thread.start()

    def append(self, **entry: Any) -> int:
        """Append one entry (the keyword arguments of :func:`record_access`); its number, once committed."""
        fields = entry_fields(**with_defaults(entry))
        future: Future[int] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the access-log writer is closed")
            self._pending.append((fields, future))
            self._wake.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            try:
                numbers = self._log.append_fields([fields for fields, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), number in zip(batch, numbers, strict=True):
                    future.set_result(number)

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)
