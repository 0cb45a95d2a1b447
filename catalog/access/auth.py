"""Bearer credentials of consumer systems: checked as the registry checks them (constant-time
hash comparison, revoked systems refused), a success reused for a few seconds."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from catalog.access.errors import AuthError
from catalog.metadata import System
from catalog.sharing import (
    CREDENTIAL_PATTERN,
    CREDENTIAL_PREFIX,
    DUMMY_HASH,
    SystemRef,
    china_day,
    hash_credential,
)

if TYPE_CHECKING:
    pass


class Authenticator:
    """Checks system credentials, reusing a success for ``ttl`` seconds."""

    def __init__(self, store: Any, *, ttl: float, clock: Any = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[SystemRef, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, credential: str | None) -> SystemRef:
        if not credential:
            raise AuthError("no credential: send Authorization: Bearer <system credential>")
        match = CREDENTIAL_PATTERN.match(credential)
        if match is None:
            raise AuthError(f"not a hub system credential (expected {CREDENTIAL_PREFIX}<id>_<secret>)")
        digest = hash_credential(credential)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.store.session() as session:
            system = session.scalars(select(System).where(System.credential_id == match.group(1))).first()
            stored = system.credential_hash if system is not None else DUMMY_HASH
            valid = hmac.compare_digest(stored, digest)
            if system is None or not valid:
                raise AuthError(
                    f"system credential {match.group(1)} is not valid (unknown, rotated or mistyped)"
                )
            if system.revoked_at is not None:
                raise AuthError(
                    f"system {system.id} was revoked on {china_day(system.revoked_at)}: {system.revoke_reason}",
                    system=system.id,
                    department=system.department,
                )
            ref = SystemRef(system.id, system.name, system.department)
        if self.ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                self._cache[digest] = (ref, now + self.ttl)
        return ref


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the system, its client address and request id."""

    system: SystemRef
    client: str | None
    request_id: str
