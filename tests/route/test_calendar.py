"""Deadline arithmetic over business calendars: examples from the Indonesian calendar, and
properties that must hold for any start time and duration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.route.calendar import (
    BusinessCalendar,
    CalendarError,
    indonesian_holidays,
    parse_block,
    parse_days,
)

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
MON_THU = (parse_block("07:30-12:00"), parse_block("13:00-16:00"))
FRI = (parse_block("07:30-11:30"), parse_block("13:00-16:30"))
WEEK = (MON_THU, MON_THU, MON_THU, MON_THU, FRI, (), ())


def office(tz: str = "Asia/Jakarta", **kw: object) -> BusinessCalendar:
    return BusinessCalendar(id="office", timezone=tz, week=WEEK, **kw)  # type: ignore[arg-type]


OFFICE = office()
OFFICE_WITA = office("Asia/Makassar")
ALWAYS = BusinessCalendar(id="24x7", always_open=True)


def test_within_one_block() -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=WIB)  # Monday
    assert OFFICE.add_business_time(start, timedelta(hours=2)) == start + timedelta(hours=2)


def test_lunch_break_is_skipped() -> None:
    start = datetime(2026, 11, 23, 11, 0, tzinfo=WIB)
    due = OFFICE.add_business_time(start, timedelta(hours=2))
    assert due == datetime(2026, 11, 23, 14, 0, tzinfo=WIB)


def test_friday_blocks_differ() -> None:
    start = datetime(2026, 11, 27, 11, 0, tzinfo=WIB)  # Friday: morning ends 11:30
    due = OFFICE.add_business_time(start, timedelta(hours=1))
    assert due == datetime(2026, 11, 27, 13, 30, tzinfo=WIB)


def test_weekend_is_skipped() -> None:
    start = datetime(2026, 11, 27, 16, 0, tzinfo=WIB)  # Friday, 30 min before closing
    due = OFFICE.add_business_time(start, timedelta(hours=1))
    assert due == datetime(2026, 11, 30, 8, 0, tzinfo=WIB)  # Monday 07:30 + 30 min


def test_complaint_received_at_night_waits_for_opening() -> None:
    start = datetime(2026, 11, 23, 22, 0, tzinfo=WIB)
    due = OFFICE.add_business_time(start, timedelta(minutes=30))
    assert due == datetime(2026, 11, 24, 8, 0, tzinfo=WIB)


def test_holidays_include_cuti_bersama() -> None:
    hol = indonesian_holidays(2026)
    assert date(2026, 12, 25) in hol  # Christmas (national holiday)
    assert date(2026, 12, 24) in hol  # Christmas cuti bersama (government category)


def test_deadline_crosses_weekend_holiday_and_cuti_bersama() -> None:
    # Eid al-Fitr 2026: Fri 20 Mar cuti bersama, Sat 21 + Sun 22 Eid, Mon 23 + Tue 24 cuti
    # bersama; Thu 19 Mar is Nyepi. Received Wed 18 Mar (itself cuti bersama) at 10:00:
    # the first open minute is Wed 25 Mar 07:30.
    start = datetime(2026, 3, 18, 10, 0, tzinfo=WIB)
    due = OFFICE.add_business_time(start, timedelta(hours=4))
    assert due == datetime(2026, 3, 25, 11, 30, tzinfo=WIB)
    # Without holidays the same target ends the same Wednesday.
    plain = office(national_holidays=False)
    assert plain.add_business_time(start, timedelta(hours=4)) == datetime(
        2026, 3, 18, 15, 0, tzinfo=WIB
    )


def test_extra_closure() -> None:
    cal = office(closures=frozenset({date(2026, 11, 24)}))
    start = datetime(2026, 11, 23, 15, 0, tzinfo=WIB)
    assert cal.add_business_time(start, timedelta(hours=2)) == datetime(
        2026, 11, 25, 8, 30, tzinfo=WIB
    )


def test_wita_agency_counts_in_its_own_time_zone() -> None:
    # 07:00 WIB = 08:00 WITA: Makassar's office has been open 30 minutes already.
    start = datetime(2026, 11, 23, 7, 0, tzinfo=WIB)
    assert OFFICE_WITA.add_business_time(start, timedelta(hours=1)) == datetime(
        2026, 11, 23, 9, 0, tzinfo=WITA
    )
    assert OFFICE.add_business_time(start, timedelta(hours=1)) == datetime(
        2026, 11, 23, 8, 30, tzinfo=WIB
    )


def test_always_open_is_wall_clock() -> None:
    start = datetime(2026, 12, 25, 3, 0, tzinfo=UTC)
    assert ALWAYS.add_business_time(start, timedelta(minutes=15)) == start + timedelta(minutes=15)
    assert ALWAYS.business_time_between(start, start + timedelta(days=2)) == timedelta(days=2)


def test_business_time_between() -> None:
    a = datetime(2026, 11, 27, 16, 0, tzinfo=WIB)  # Fri
    b = datetime(2026, 11, 30, 8, 0, tzinfo=WIB)  # Mon
    assert OFFICE.business_time_between(a, b) == timedelta(hours=1)
    assert OFFICE.business_time_between(b, a) == timedelta(0)


def test_several_durations_in_one_walk_match_single_calls() -> None:
    start = datetime(2026, 3, 17, 15, 0, tzinfo=WIB)
    ds = [timedelta(hours=h) for h in (3, 0.5, 7.5, 15, 0)]
    assert OFFICE.add_business_times(start, ds) == [OFFICE.add_business_time(start, d) for d in ds]


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(id="never", week=((),) * 7)
    with pytest.raises(CalendarError):
        BusinessCalendar(id="bad", week=(((600, 500),),) + ((),) * 6)
    with pytest.raises(CalendarError):
        parse_block("7-12")
    with pytest.raises(CalendarError):
        parse_days("funday")
    assert parse_days("mon-thu,sat") == [0, 1, 2, 3, 5]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.add_business_time(datetime(2026, 1, 1, 8, 0), timedelta(hours=1))


# --- properties ---------------------------------------------------------------------------
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=80))
calendars = st.sampled_from([OFFICE, OFFICE_WITA, ALWAYS, office("Asia/Jayapura")])


@settings(max_examples=300, deadline=None)
@given(calendars, starts, starts, durations)
def test_monotonic_in_start(
    cal: BusinessCalendar, s1: datetime, s2: datetime, d: timedelta
) -> None:
    s1, s2 = min(s1, s2), max(s1, s2)
    assert cal.add_business_time(s1, d) <= cal.add_business_time(s2, d)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, durations)
def test_never_lands_in_a_closed_period(cal: BusinessCalendar, s: datetime, d: timedelta) -> None:
    due = cal.add_business_time(s, d)
    assert cal.is_open(due)
    assert due >= s
    if d > timedelta(0):
        # A positive target ends strictly after an opening, never on the opening instant
        # of a block that was reached through a closure.
        assert cal.is_open(due - timedelta(microseconds=1))


@settings(max_examples=300, deadline=None)
@given(calendars, starts, durations, durations)
def test_adding_in_pieces_equals_adding_at_once(
    cal: BusinessCalendar, s: datetime, a: timedelta, b: timedelta
) -> None:
    assert cal.add_business_time(cal.add_business_time(s, a), b) == cal.add_business_time(s, a + b)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, durations)
def test_open_time_between_start_and_due_is_the_duration(
    cal: BusinessCalendar, s: datetime, d: timedelta
) -> None:
    assert cal.business_time_between(s, cal.add_business_time(s, d)) == d


@settings(max_examples=200, deadline=None)
@given(starts, st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(hours=30)))
def test_holidays_and_weekends_are_skipped(s: datetime, d: timedelta) -> None:
    """No open time is counted on a Saturday, Sunday, holiday or cuti bersama day."""
    due = OFFICE.add_business_time(s, d)
    for a, b in OFFICE.periods_from(s):
        if a >= due:
            break
        for instant in (a, b):
            local = instant.astimezone(WIB).date()
            assert local.weekday() < 5
            assert local not in indonesian_holidays(local.year)


@settings(max_examples=400, deadline=None)
@given(calendars, starts, st.lists(durations, min_size=1, max_size=5))
def test_fast_path_matches_the_reference_walk(
    cal: BusinessCalendar, s: datetime, ds: list[timedelta]
) -> None:
    assert cal.add_business_times(s, ds) == cal._add_walk(s, ds)  # noqa: SLF001  # the reference


def test_long_durations_and_far_starts() -> None:
    s = datetime(2031, 6, 1, 3, 0, tzinfo=UTC)
    d = [timedelta(hours=h) for h in (1, 500, 2000)]
    assert OFFICE.add_business_times(s, d) == OFFICE._add_walk(s, d)  # noqa: SLF001
    early = datetime(2020, 1, 1, tzinfo=UTC)  # before the cached range: it is rebuilt
    assert OFFICE.add_business_times(early, d) == OFFICE._add_walk(early, d)  # noqa: SLF001


@settings(max_examples=300, deadline=None)
@given(
    calendars,
    starts,
    st.lists(st.integers(0, 4 * 86400 * 1_000_000), min_size=2, max_size=12),
    st.lists(
        st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(hours=80)),
        min_size=1,
        max_size=5,
    ),
)
def test_answers_shifted_from_the_last_start_match_the_reference_walk(
    cal: BusinessCalendar, s: datetime, gaps: list[int], ds: list[timedelta]
) -> None:
    """Starts near each other (the same open stretch, the next block, a closed night)
    with the same durations: later answers are the kept ones shifted, where they stay in
    their open periods (``_Prefix.add``), else walked again: always the walk's answers."""
    for gap in gaps:
        at = s + timedelta(microseconds=gap)
        assert cal.add_business_times(at, ds) == cal._add_walk(at, ds)  # noqa: SLF001


def test_a_shifted_answer_never_lands_on_an_opening_instant() -> None:
    """Mon 08:00 + 1 h is 09:00; a start 1.5 h of open time earlier (Fri 15:30) is due at
    Friday's closing 16:30, the earliest instant with that much open time, not at Monday's
    opening 07:30 (where the kept answer, shifted, would land)."""
    cal = office()
    hour = [timedelta(hours=1)]
    monday = datetime(2026, 2, 2, 8, 0, tzinfo=WIB)
    assert cal.add_business_times(monday, hour) == [datetime(2026, 2, 2, 9, 0, tzinfo=WIB)]
    friday = datetime(2026, 1, 30, 15, 30, tzinfo=WIB)
    assert cal.add_business_times(friday, hour) == [datetime(2026, 1, 30, 16, 30, tzinfo=WIB)]
    assert cal.add_business_times(friday, hour) == cal._add_walk(friday, hour)  # noqa: SLF001
