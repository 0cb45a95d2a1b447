"""Verification of the access log: walk the chain, recompute every hash and MAC, check the
signed checkpoints and the head row, and name the first bad entry of each kind of tampering.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalog.audit.documents import (
    GENESIS,
    canonical,
    checkpoint_document,
    checkpoint_hash,
    entry_hash,
    entry_mac,
    head_mac,
)
from catalog.audit.keys import AuditKeys


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong; ``seq`` is the entry it is about, if any."""

    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Verification:
    """What :meth:`AccessLog.verify` found."""

    entries: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    last_checkpoint_seq: int | None
    macs_checked: bool
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


class ChainWalker:
    """Checks entries one by one in sequence order and stops at the first bad one."""

    def __init__(self, keys: AuditKeys | None) -> None:
        self.keys = keys
        self.problem: Problem | None = None
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.next_seq = 1
        self.prev_hash = GENESIS
        self.prev_mac = GENESIS
        self.seen: dict[int, tuple[str, str]] = {}
        self._wanted: set[int] = set()

    def start(self, anchor: tuple[int, str, str], wanted: set[int]) -> None:
        self.next_seq, self.prev_hash, self.prev_mac = anchor
        self._wanted = wanted

    def want(self, seqs: set[int]) -> None:
        """Also remember the hashes of these entries (named by checkpoints read later)."""
        self._wanted |= seqs

    def take(self, row: Mapping[str, Any]) -> bool:
        seq = int(row["seq"])
        expected = self.next_seq
        if seq != expected:
            first_kept = self.count == 0
            where = "at the start of the log" if first_kept else f"after entry {expected - 1}"
            span = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
            self.problem = Problem(
                f"{span} missing {where} (deleted; the next entry kept is {seq})", seq=expected
            )
            return False
        if row["prev_hash"] != self.prev_hash:
            before = "the log's start anchor" if self.count == 0 else f"entry {seq - 1}"
            self.problem = Problem(
                f"entry {seq} does not follow {before}: its prev_hash names another predecessor "
                "(entries reordered, inserted or replaced)",
                seq=seq,
            )
            return False
        computed = entry_hash(row)
        if computed != row["entry_hash"]:
            self.problem = Problem(
                f"entry {seq} was altered: its fields do not match its entry_hash ({_changed_hint(row)})",
                seq=seq,
            )
            return False
        if self.keys is not None:
            version = int(row["key_version"])
            if not self.keys.has_mac_version(version):
                self.problem = Problem(
                    f"entry {seq} names audit MAC key version {version}, which the keyring does not hold",
                    seq=seq,
                )
                return False
            if not hmac.compare_digest(
                entry_mac(self.keys.mac_key(version), row, self.prev_mac), row["entry_mac"]
            ):
                self.problem = Problem(
                    f"entry {seq} was altered or forged: its MAC does not match its fields and predecessor "
                    "(the hash chain was recomputed without the MAC key)",
                    seq=seq,
                )
                return False
        self.count += 1
        self.first = seq if self.first is None else self.first
        self.last = seq
        self.next_seq = seq + 1
        self.prev_hash, self.prev_mac = row["entry_hash"], row["entry_mac"]
        if seq in self._wanted:
            self.seen[seq] = (row["entry_hash"], row["entry_mac"])
        return True

    def beyond(self, row: Mapping[str, Any], head: Mapping[str, Any] | None) -> None:
        where = f"the chain head (entry {head['seq']})" if head is not None else "an empty chain head"
        self.problem = Problem(
            f"entry {row['seq']} lies beyond {where}: it was added outside the log", seq=int(row["seq"])
        )

    def finish(self, head: Mapping[str, Any] | None) -> list[Problem]:
        if head is None:
            return []
        last = int(head["seq"])
        if self.next_seq <= last:
            span = f"entry {last}" if self.next_seq == last else f"entries {self.next_seq}-{last}"
            return [
                Problem(
                    f"{span} missing at the end of the log (truncated; the chain head names entry {last})",
                    seq=self.next_seq,
                )
            ]
        if last >= int(head["first_seq"]) and (self.prev_hash, self.prev_mac) != (
            head["entry_hash"],
            head["entry_mac"],
        ):
            return [
                Problem(f"entry {last} is not the entry the chain head names (it was replaced)", seq=last)
            ]
        return []


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}-{last}"


def _changed_hint(row: Mapping[str, Any]) -> str:
    return f"{row['action']} by system {row['system']!r}" if row.get("system") else str(row["action"])


def check_head(
    head: Mapping[str, Any] | None,
    checkpoints: Sequence[Mapping[str, Any]],
    keys: AuditKeys | None,
    walker: ChainWalker,
) -> list[Problem]:
    if head is None:
        if walker.count or checkpoints:
            return [Problem("the chain-head row is missing while entries or checkpoints exist (deleted)")]
        return []
    problems: list[Problem] = []
    if keys is not None and int(head["seq"]) > 0:
        version = head["key_version"]
        if version is None or not keys.has_mac_version(int(version)):
            problems.append(Problem("the chain-head row names no audit MAC key version the keyring holds"))
        elif not hmac.compare_digest(head_mac(keys.mac_key(int(version)), head), head["head_mac"] or ""):
            problems.append(Problem("the chain-head row was altered: its MAC does not match"))
    newest = checkpoints[-1] if checkpoints else None
    number = int(head["checkpoint_number"])
    if newest is None:
        if number:
            problems.append(
                Problem(f"checkpoints 1-{number} are missing (the chain head names checkpoint {number})")
            )
        return problems
    if int(newest["number"]) < number:
        problems.append(
            Problem(
                f"checkpoint {number} is missing: the newest kept is {newest['number']} (deleted)",
                checkpoint=number,
            )
        )
    elif int(newest["number"]) > number:
        problems.append(
            Problem(
                f"checkpoint {newest['number']} is newer than the chain head's checkpoint {number} (inserted)",
                checkpoint=int(newest["number"]),
            )
        )
    elif checkpoint_hash(newest) != head["checkpoint_hash"]:
        problems.append(
            Problem(f"checkpoint {number} is not the one the chain head names (replaced)", checkpoint=number)
        )
    if (newest["first_seq"], newest["first_prev_hash"], newest["first_prev_mac"]) != (
        head["first_seq"],
        head["first_prev_hash"],
        head["first_prev_mac"],
    ):
        problems.append(
            Problem(
                f"the chain head's first entry ({head['first_seq']}) differs from the one checkpoint "
                f"{newest['number']} anchors ({newest['first_seq']})",
                seq=int(head["first_seq"]),
            )
        )
    return problems


def check_checkpoints(
    checkpoints: Sequence[Mapping[str, Any]],
    walker: ChainWalker,
    by_version: Mapping[int, Ed25519PublicKey] | None,
    supplied: Sequence[Ed25519PublicKey],
    *,
    macs: bool,
) -> list[Problem]:
    problems: list[Problem] = []
    prev = GENESIS
    for position, cp in enumerate(checkpoints, start=1):
        number, seq = int(cp["number"]), int(cp["seq"])
        if number != position:
            problems.append(
                Problem(
                    f"checkpoint {position} is missing (the next kept is {number}; deleted)",
                    checkpoint=position,
                )
            )
            break
        if cp["prev_checkpoint"] != prev:
            problems.append(
                Problem(
                    f"checkpoint {number} does not follow checkpoint {number - 1}", seq=seq, checkpoint=number
                )
            )
            break
        prev = checkpoint_hash(cp)
        if not _signature_ok(cp, by_version, supplied):
            problems.append(
                Problem(
                    f"checkpoint {number} (entry {seq}) has no valid signature: altered, or signed by "
                    "another key",
                    seq=seq,
                    checkpoint=number,
                )
            )
            continue
        seen = walker.seen.get(seq)
        if seen is not None:
            if seen[0] != cp["head_hash"] or (macs and seen[1] != cp["head_mac"]):
                problems.append(
                    Problem(
                        f"entry {seq} is not the entry signed checkpoint {number} names (altered, with its "
                        "chain rebuilt)",
                        seq=seq,
                        checkpoint=number,
                    )
                )
        elif walker.problem is None and seq >= walker.next_seq and seq >= int(cp["first_seq"]):
            problems.append(
                Problem(
                    f"{_span(walker.next_seq, seq)} missing at the end of the log (truncated; signed "
                    f"checkpoint {number} names entry {seq})",
                    seq=walker.next_seq,
                    checkpoint=number,
                )
            )
    return problems


def _signature_ok(
    cp: Mapping[str, Any],
    by_version: Mapping[int, Ed25519PublicKey] | None,
    supplied: Sequence[Ed25519PublicKey],
) -> bool:
    try:
        signature = bytes.fromhex(cp["signature"])
    except ValueError:
        return False
    message = canonical(checkpoint_document(cp))
    candidates = [by_version[cp["key_version"]]] if by_version and cp["key_version"] in by_version else []
    candidates = candidates or list(supplied)
    for key in candidates:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def unique_problems(problems: Iterable[Problem]) -> Iterator[Problem]:
    seen: set[str] = set()
    for p in problems:
        if p.message not in seen:
            seen.add(p.message)
            yield p
