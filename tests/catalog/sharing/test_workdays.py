"""Working days from the shipped PRC calendar and from calendar files."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest

from catalog.sharing import DEFAULT_CALENDAR, CalendarError, CalendarRangeError, WorkCalendar


@pytest.fixture(scope="module")
def cn() -> WorkCalendar:
    return WorkCalendar.load()


def test_the_shipped_calendar_covers_2025_and_2026_and_says_to_check_it(cn: WorkCalendar) -> None:
    assert sorted(cn.years) == [2025, 2026]
    text = DEFAULT_CALENDAR.read_text(encoding="utf-8")
    assert "CHECK EVERY YEAR" in text and "国务院办公厅关于" in text


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 1, 1), False),  # 元旦, a Wednesday
        (date(2025, 1, 26), True),  # Sunday worked for the Spring Festival
        (date(2025, 1, 28), False),  # 除夕, first day of the Spring Festival
        (date(2025, 2, 4), False),
        (date(2025, 2, 5), True),
        (date(2025, 2, 8), True),  # Saturday worked
        (date(2025, 4, 27), True),  # Sunday worked for Labour Day
        (date(2025, 5, 5), False),
        (date(2025, 10, 8), False),  # National Day and Mid-Autumn together, 8 days
        (date(2025, 10, 11), True),
        (date(2026, 1, 2), False),
        (date(2026, 1, 4), True),  # Sunday worked
        (date(2026, 2, 14), True),  # Saturday worked before the Spring Festival
        (date(2026, 2, 23), False),
        (date(2026, 2, 28), True),
        (date(2026, 6, 19), False),  # 端午
        (date(2026, 9, 20), True),  # Sunday worked for National Day
        (date(2026, 9, 25), False),  # 中秋
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # Saturday worked
        (date(2026, 11, 21), False),  # an ordinary Saturday
        (date(2026, 11, 23), True),  # an ordinary Monday
    ],
)
def test_holidays_and_adjusted_working_days(cn: WorkCalendar, day: date, working: bool) -> None:
    assert cn.is_working_day(day) is working


def test_each_year_has_the_working_days_its_notice_gives(cn: WorkCalendar) -> None:
    # 261 weekdays, less the weekday holidays (18 in 2025, 19 in 2026), plus the weekends
    # worked (5 in 2025, 6 in 2026).
    assert cn.working_days_between(date(2024, 12, 31), date(2025, 12, 31)) == 248
    assert cn.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248


def test_adding_working_days_skips_holidays_and_counts_weekends_worked(cn: WorkCalendar) -> None:
    assert cn.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert cn.add_working_days(date(2026, 9, 18), 1) == date(2026, 9, 20)  # a Sunday worked
    assert cn.add_working_days(date(2026, 9, 18), 10) == date(2026, 10, 9)
    assert cn.add_working_days(date(2026, 9, 29), 10) == date(2026, 10, 19)
    assert cn.add_working_days(date(2025, 1, 24), 1) == date(2025, 1, 26)
    assert cn.add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 3)
    # a request made on a holiday gets its full time from the next working day
    assert cn.add_working_days(date(2026, 10, 3), 1) == date(2026, 10, 8)
    assert cn.add_working_days(date(2026, 10, 8), -1) == date(2026, 9, 30)


def test_working_days_between_inverts_adding_them(cn: WorkCalendar) -> None:
    start = date(2025, 1, 1)
    for offset in range(0, 700, 7):
        a = start + timedelta(days=offset)
        for n in (0, 1, 3, 10, 25):
            b = cn.add_working_days(a, n)
            assert cn.working_days_between(a, b) == n
            assert cn.working_days_between(b, a) == -n


def test_the_shipped_calendar_counts_weekdays_beyond_its_years_with_a_warning(
    cn: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    assert cn.outside_years == "weekdays"
    with caplog.at_level("WARNING"):
        assert cn.add_working_days(date(2026, 12, 25), 10) == date(2027, 1, 8)
    assert "no 2027" in caplog.text


def test_a_date_outside_a_strict_calendar_is_refused_with_what_to_do(cn: WorkCalendar) -> None:
    cn = dataclasses.replace(cn, outside_years="error")
    with pytest.raises(CalendarRangeError) as caught:
        cn.add_working_days(date(2026, 12, 25), 10)
    message = str(caught.value)
    assert "2027-01-01" in message and "2025-2026" in message and str(DEFAULT_CALENDAR) in message
    assert "HUB_SHARING__CALENDAR_FILE" in message and caught.value.exit_code == 2
    with pytest.raises(CalendarRangeError):
        cn.is_working_day(date(2024, 12, 31))


def _write(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_a_calendar_may_fall_back_to_weekdays_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path / "local.yaml",
        "outside_years: weekdays\n"
        "years:\n"
        "  2027:\n"
        "    holidays: [{name: 元旦, from: 2027-01-01, to: 2027-01-03}]\n"
        "    working_days: []\n",
    )
    calendar = WorkCalendar.load(path)
    with caplog.at_level(logging.WARNING, logger="catalog.sharing.workdays"):
        assert calendar.add_working_days(date(2026, 12, 30), 2) == date(2027, 1, 4)
        assert calendar.add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 25)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "has no 2026" in warnings[0] and str(path) in warnings[0]


def test_a_new_year_period_may_begin_in_the_december_before(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "2023.yaml",
        "years:\n"
        "  2022: {holidays: []}\n"
        "  2023:\n"
        "    holidays: [{name: 元旦, from: 2022-12-31, to: 2023-01-02}]\n"
        "    working_days: [2023-01-28]\n",
    )
    calendar = WorkCalendar.load(path)
    assert not calendar.is_working_day(date(2023, 1, 2))
    assert calendar.is_working_day(date(2023, 1, 28))
    assert calendar.add_working_days(date(2022, 12, 30), 1) == date(2023, 1, 3)


def test_a_malformed_calendar_lists_every_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad.yaml",
        "outside_years: guess\n"
        "years:\n"
        "  2026:\n"
        "    holidays:\n"
        "      - {name: 国庆节, from: 2026-10-07, to: 2026-10-01}\n"
        "      - {name: 元旦, from: 2026-01-01, to: 2026-01-03}\n"
        "      - {name: 错年, from: 2025-06-01}\n"
        "    working_days: [2026-01-03, 2026-10-12, 2025-02-08]\n"
        "  soon: {}\n",
    )
    with pytest.raises(CalendarError) as caught:
        WorkCalendar.load(path)
    message = str(caught.value)
    for needle in (
        str(path),
        "outside_years is 'guess'",
        "国庆节 runs from 2026-10-07 to 2026-10-01",
        "错年",
        "2026-10-12 is a weekday",
        "2025-02-08",
        "year 'soon' is not a year",
        "2026-01-03 is listed both as a holiday and as a working day",
    ):
        assert needle in message


def test_a_missing_or_unreadable_calendar_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="does not exist"):
        WorkCalendar.load(tmp_path / "none.yaml")
    with pytest.raises(CalendarError, match="cannot be read"):
        WorkCalendar.load(_write(tmp_path / "broken.yaml", "years: [unclosed\n"))
    with pytest.raises(CalendarError, match="needs a 'years' mapping"):
        WorkCalendar.load(_write(tmp_path / "empty.yaml", "name: nothing\n"))


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", "years:\n  2026: {holidays: []}\n")
    assert WorkCalendar.load(path).is_working_day(date(2026, 10, 1))
    _write(path, "years:\n  2026:\n    holidays: [{from: 2026-10-01}]\n")
    import os

    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert not WorkCalendar.load(path).is_working_day(date(2026, 10, 1))
