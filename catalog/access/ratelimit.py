"""Per-system rate and pattern limits of the consumers' HTTP API.

:class:`TokenBuckets` gives each consumer system one token bucket per endpoint: ``rate``
requests per second on average, ``burst`` at once. :class:`EnumerationGuard` watches
verification (核验) for the patterns of someone enumerating people or companies rather than
checking the ones in front of them: too many no-match answers in a window, or too many
distinct identifiers sharing a long prefix (an identity number's first 14 characters are its
county and birth date, so walking its sequence digits shows up as many close numbers). A
system that trips either is refused every verification for a cool-down.

State is kept in the memory of the serving process (one ``hub serve`` process holds all of
it); identifiers are kept only as salted fingerprints that die with the process.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """A token bucket per (system, endpoint); ``limits`` maps endpoints to (rate, burst)."""

    def __init__(self, limits: Mapping[str, tuple[float, int]], *, clock: Clock = time.monotonic) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, system: str, endpoint: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        rate, burst = self.limits[endpoint]
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((system, endpoint))
            if bucket is None:
                bucket = self._buckets[(system, endpoint)] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


@dataclass
class _Watch:
    """What the guard remembers of one system's recent verifications."""

    blocked_until: float = 0.0
    blocked_reason: str = ""
    no_match: deque[float] = field(default_factory=deque)
    close: deque[tuple[float, bytes, bytes]] = field(default_factory=deque)
    """(time, prefix fingerprint, identifier fingerprint), oldest first."""
    by_prefix: dict[bytes, dict[bytes, float]] = field(default_factory=dict)
    """Prefix fingerprint -> identifier fingerprints seen in the window (last time)."""


@dataclass(frozen=True)
class Suspicion:
    """Why a system is refused, and for how much longer."""

    reason: str
    retry_after: float


class EnumerationGuard:
    """Refuses a system's verifications for a cool-down once they look like enumeration."""

    MAX_REMEMBERED = 100_000
    """Close-identifier observations kept per system at most (oldest dropped first)."""

    def __init__(
        self,
        *,
        window: float,
        no_match_limit: int,
        prefix_length: int,
        close_limit: int,
        cooldown: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.window = window
        self.no_match_limit = no_match_limit
        self.prefix_length = prefix_length
        self.close_limit = close_limit
        self.cooldown = cooldown
        self._clock = clock
        self._salt = secrets.token_bytes(16)
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def _fingerprint(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8"), key=self._salt, digest_size=12).digest()

    def check(self, system: str, identifier: str | None) -> Suspicion | None:
        """Before answering: a refusal if the system is cooling down or this request trips a limit.

        ``identifier`` (normalised) is given for kinds whose identifiers can be walked
        sequentially; it is remembered only as a salted fingerprint.
        """
        now = self._clock()
        with self._lock:
            watch = self._watches.setdefault(system, _Watch())
            self._expire(watch, now)
            if watch.blocked_until > now:
                return Suspicion(watch.blocked_reason, watch.blocked_until - now)
            if len(watch.no_match) >= self.no_match_limit:
                return self._block(
                    watch,
                    now,
                    f"{len(watch.no_match)} no-match answers within {self.window:g} s "
                    f"(limit {self.no_match_limit})",
                )
            if identifier is None or len(identifier) <= self.prefix_length:
                return None
            prefix = self._fingerprint(identifier[: self.prefix_length])
            key = self._fingerprint(identifier)
            seen = watch.by_prefix.setdefault(prefix, {})
            if key not in seen and len(seen) >= self.close_limit:
                return self._block(
                    watch,
                    now,
                    f"more than {self.close_limit} distinct identifiers sharing their first "
                    f"{self.prefix_length} characters within {self.window:g} s",
                )
            seen[key] = now
            watch.close.append((now, prefix, key))
            if len(watch.close) > self.MAX_REMEMBERED:
                self._forget(watch, *watch.close.popleft())
            return None

    def answered(self, system: str, matched: bool) -> None:
        """After answering: count a no-match answer."""
        if matched:
            return
        with self._lock:
            self._watches.setdefault(system, _Watch()).no_match.append(self._clock())

    def _block(self, watch: _Watch, now: float, why: str) -> Suspicion:
        watch.blocked_until = now + self.cooldown
        watch.blocked_reason = f"enumeration suspected: {why}; verification refused for {self.cooldown:g} s"
        watch.no_match.clear()
        watch.close.clear()
        watch.by_prefix.clear()
        return Suspicion(watch.blocked_reason, self.cooldown)

    def _expire(self, watch: _Watch, now: float) -> None:
        horizon = now - self.window
        while watch.no_match and watch.no_match[0] < horizon:
            watch.no_match.popleft()
        while watch.close and watch.close[0][0] < horizon:
            self._forget(watch, *watch.close.popleft())

    @staticmethod
    def _forget(watch: _Watch, at: float, prefix: bytes, key: bytes) -> None:
        seen = watch.by_prefix.get(prefix)
        if seen is None:
            return
        if seen.get(key) == at:
            del seen[key]
        if not seen:
            del watch.by_prefix[prefix]


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
