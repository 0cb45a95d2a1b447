"""Working days (工作日): deadlines of sharing and correction requests.

A day is a working day when it is Monday to Friday and not a public holiday, or when it
is a weekend day worked instead (调休). Both lists change every year by the State
Council's notice, so they live in a calendar file (``catalog/sharing/calendars/cn.yaml`` by
default, ``settings.sharing.calendar_file`` to replace it), never in code.

A date in a year the calendar does not list is refused by default
(:class:`CalendarRangeError`): a legal deadline counted on a guessed calendar is wrong
without anyone noticing. A calendar file may opt into ``outside_years: weekdays``, which
counts Monday to Friday there and logs a warning once per year.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from catalog.sharing.errors import CalendarError, CalendarRangeError

log = logging.getLogger(__name__)

DEFAULT_CALENDAR = Path(__file__).resolve().parent / "calendars" / "cn.yaml"
"""The PRC calendar shipped with the hub (public holidays and 调休 of 2025-2026)."""

Outside = Literal["error", "weekdays"]


@dataclass(frozen=True)
class WorkCalendar:
    """Holidays and adjusted working days of the years a calendar file lists."""

    years: frozenset[int]
    holidays: frozenset[date]
    working_days: frozenset[date]
    outside_years: Outside = "error"
    source: str = "(built in code)"
    _warned: set[int] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> WorkCalendar:
        """Read a calendar file (the shipped PRC calendar when ``path`` is None)."""
        resolved = Path(path).expanduser() if path is not None else DEFAULT_CALENDAR
        try:
            stamp = resolved.stat().st_mtime_ns
        except OSError:
            raise CalendarError(
                f"working-day calendar {resolved} does not exist (settings.sharing.calendar_file, "
                "HUB_SHARING__CALENDAR_FILE)"
            ) from None
        return _load(str(resolved), stamp)

    @classmethod
    def from_mapping(cls, raw: Any, source: str = "(mapping)") -> WorkCalendar:
        """Build a calendar from the parsed YAML document; every problem is listed."""
        problems: list[str] = []
        if not isinstance(raw, Mapping) or not isinstance(raw.get("years"), Mapping) or not raw["years"]:
            raise CalendarError(f"working-day calendar {source}: needs a 'years' mapping (year: ...)")
        outside = raw.get("outside_years", "error")
        if outside not in ("error", "weekdays"):
            problems.append(f"outside_years is {outside!r}, not 'error' or 'weekdays'")
        years: set[int] = set()
        holidays: set[date] = set()
        working: set[date] = set()
        for key, entry in raw["years"].items():
            if not isinstance(key, int) or not 1949 < key < 2200:
                problems.append(f"year {key!r} is not a year")
                continue
            years.add(key)
            if not isinstance(entry, Mapping):
                problems.append(f"{key}: needs 'holidays' and 'working_days'")
                continue
            for period in entry.get("holidays") or ():
                days = _period(period, key, problems)
                holidays.update(days)
            for day in entry.get("working_days") or ():
                if not _in_year(day, key):
                    problems.append(f"{key}: working day {day} is not a date of {key}")
                elif day.weekday() < 5:
                    problems.append(f"{key}: working day {day} is a weekday, not a weekend day worked")
                else:
                    working.add(day)
        problems += [
            f"{day} is listed both as a holiday and as a working day" for day in sorted(holidays & working)
        ]
        if problems:
            raise CalendarError(f"working-day calendar {source} is invalid: {'; '.join(problems)}")
        return cls(
            years=frozenset(years),
            holidays=frozenset(holidays),
            working_days=frozenset(working),
            outside_years=outside,
            source=source,
        )

    @property
    def first_year(self) -> int:
        return min(self.years)

    @property
    def last_year(self) -> int:
        return max(self.years)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (raises for a year the calendar lacks, by default)."""
        self._check_year(day)
        if day in self.working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The day ``days`` working days after ``start`` (before it when negative).

        Counting starts the day after ``start``, so a request made on a holiday gets its
        full time from the next working day; ``days == 0`` is ``start`` itself.
        """
        step = 1 if days >= 0 else -1
        day, left = start, abs(days)
        while left:
            day += timedelta(days=step)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b``; negative when ``b`` is before ``a``.

        The inverse of :meth:`add_working_days` for a working day ``b``:
        ``working_days_between(a, add_working_days(a, n)) == n``.
        """
        if b < a:
            return -self.working_days_between(b, a)
        return sum(1 for n in range(1, (b - a).days + 1) if self.is_working_day(a + timedelta(days=n)))

    def _check_year(self, day: date) -> None:
        if day.year in self.years:
            return
        if self.outside_years == "weekdays":
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning(
                    "working-day calendar %s has no %d: counting Monday to Friday there; add the "
                    "year from the State Council's holiday notice",
                    self.source,
                    day.year,
                )
            return
        raise CalendarRangeError(
            f"{day} is outside the working-day calendar {self.source} (years {_span(self.years)}): add "
            f"{day.year} from the State Council's holiday notice, or point HUB_SHARING__CALENDAR_FILE "
            "at a calendar that has it"
        )


@lru_cache(maxsize=8)
def _load(path: str, stamp: int) -> WorkCalendar:
    """One parsed calendar per file version (``stamp`` is its modification time)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalendarError(f"working-day calendar {path} cannot be read: {exc}") from None
    return WorkCalendar.from_mapping(raw, source=path)


def _in_year(day: Any, year: int) -> bool:
    """A date of ``year``, or of the last days of December before it (a New Year period
    announced with the next year's notice, as 2022-12-31 was)."""
    if not isinstance(day, date):
        return False
    return day.year == year or (day.year == year - 1 and day.month == 12)


def _period(period: Any, year: int, problems: list[str]) -> Iterable[date]:
    if not isinstance(period, Mapping) or "from" not in period:
        problems.append(f"{year}: holiday {period!r} needs 'from' (and 'to' for more than one day)")
        return ()
    start, end = period["from"], period.get("to", period["from"])
    label = f"{year}: holiday {period.get('name', start)!s}"
    if not (_in_year(start, year) and isinstance(end, date) and end.year in (year, year + 1)):
        problems.append(f"{label} has dates {start}..{end} that are not in {year}")
        return ()
    if end < start or (end - start).days > 31:
        problems.append(f"{label} runs from {start} to {end}")
        return ()
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _span(years: frozenset[int]) -> str:
    ordered = sorted(years)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}" if len(ordered) > 1 else str(ordered[0])
    return ", ".join(str(y) for y in ordered)
