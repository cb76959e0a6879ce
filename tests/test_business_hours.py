"""Business-time arithmetic: exact examples (weekend, holiday, DST) and properties over random instants."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.business_hours import Schedule

CHICAGO = ZoneInfo("America/Chicago")
H = 3600
WORKDAY = ((9 * H, 18 * H),)
SPLIT_FRIDAY = ((9 * H, 13 * H), (14 * H, 18 * H))
OFFICE = Schedule(CHICAGO, week=(WORKDAY,) * 4 + (SPLIT_FRIDAY, (), ()),
                  holidays=frozenset({date(2026, 12, 25), date(2026, 12, 26)}))
CALENDAR = Schedule(CHICAGO)


def at(*parts: int, zone: ZoneInfo = CHICAGO) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def test_an_interval_inside_business_hours_counts_in_full() -> None:
    assert OFFICE.elapsed(at(2026, 11, 30, 10), at(2026, 11, 30, 12, 30)) == 2.5 * H


def test_the_weekend_does_not_count() -> None:
    # Friday 17:00 (1 h left) to Monday 10:00 (1 h in): 2 business hours over 65 wall hours.
    assert OFFICE.elapsed(at(2026, 11, 27, 17), at(2026, 11, 30, 10)) == 2 * H


def test_the_friday_lunch_break_does_not_count() -> None:
    assert OFFICE.elapsed(at(2026, 11, 27, 12), at(2026, 11, 27, 15)) == 2 * H


def test_holidays_do_not_count() -> None:
    # Thu 24 Dec 17:00 -> Mon 28 Dec 10:00: Christmas (Fri) and the 26th are holidays, then the weekend.
    assert OFFICE.elapsed(at(2026, 12, 24, 17), at(2026, 12, 28, 10)) == 2 * H
    assert OFFICE.elapsed(at(2026, 12, 25, 0), at(2026, 12, 26, 0)) == 0


def test_a_whole_week_counts_its_opening_hours() -> None:
    assert OFFICE.elapsed(at(2026, 11, 30), at(2026, 12, 7)) == (4 * 9 + 8) * H


def test_a_dst_change_counts_real_seconds() -> None:
    # Chicago springs forward on Sunday 8 March 2026 and falls back on Sunday 1 November 2026.
    assert CALENDAR.elapsed(at(2026, 3, 8), at(2026, 3, 9)) == 23 * H
    assert CALENDAR.elapsed(at(2026, 11, 1), at(2026, 11, 2)) == 25 * H
    every_day = Schedule(CHICAGO, week=(((0, 86400),),) * 7)
    assert every_day.elapsed(at(2026, 3, 8), at(2026, 3, 9)) == 23 * H
    assert every_day.elapsed(at(2026, 11, 1), at(2026, 11, 2)) == 25 * H
    # Opening hours inside the gap begin when the clocks show a real time again (03:00).
    night = Schedule(CHICAGO, week=(((2 * H + 1800, 4 * H),),) * 7)
    assert night.elapsed(at(2026, 3, 8), at(2026, 3, 9)) == 1 * H
    # ... and an hour that happens twice counts twice.
    small_hours = Schedule(CHICAGO, week=(((0, 3 * H),),) * 7)
    assert small_hours.elapsed(at(2026, 11, 1), at(2026, 11, 1, 12)) == 4 * H
    assert small_hours.elapsed(at(2026, 10, 31), at(2026, 10, 31, 12)) == 3 * H
    # Friday before the change 17:00 to Monday after it 10:00: still 2 business hours.
    assert OFFICE.elapsed(at(2026, 3, 6, 17), at(2026, 3, 9, 10)) == 2 * H


def test_reached_skips_closed_time() -> None:
    assert OFFICE.reached(at(2026, 11, 27, 17), 2 * H) == at(2026, 11, 30, 10)
    assert OFFICE.reached(at(2026, 12, 24, 17, 30), H) == at(2026, 12, 28, 9, 30)
    assert OFFICE.reached(at(2026, 11, 28, 3), 30 * 60) == at(2026, 11, 30, 9, 30)
    assert CALENDAR.reached(at(2026, 3, 7, 12), 24 * H) == at(2026, 3, 8, 13)


def test_reached_is_none_without_business_time() -> None:
    closed = Schedule(CHICAGO, week=((),) * 7)
    assert closed.reached(at(2026, 1, 1), 60) is None


INSTANTS = st.floats(min_value=at(2025, 10, 1), max_value=at(2027, 4, 1), allow_nan=False)
ZONES = st.sampled_from([CHICAGO, ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")])


def _ranges() -> st.SearchStrategy:
    """A day's ranges: sorted, not overlapping, whole minutes (what the config accepts)."""
    cuts = st.lists(st.integers(0, 24 * 60), min_size=0, max_size=6, unique=True).map(sorted)
    return cuts.map(lambda c: tuple((c[i] * 60, c[i + 1] * 60) for i in range(0, len(c) - 1, 2)))


SCHEDULES = st.builds(
    lambda zone, week, holidays: Schedule(zone, week=week, holidays=frozenset(holidays)),
    ZONES, st.one_of(st.none(), st.tuples(*[_ranges()] * 7)),
    st.lists(st.dates(date(2025, 10, 1), date(2027, 4, 1)), max_size=20))


@settings(max_examples=200, deadline=None)
@given(SCHEDULES, INSTANTS, INSTANTS, INSTANTS)
def test_elapsed_is_additive_over_adjacent_intervals(schedule: Schedule, a: float, b: float, c: float) -> None:
    a, b, c = sorted((a, b, c))
    assert abs(schedule.elapsed(a, b) + schedule.elapsed(b, c) - schedule.elapsed(a, c)) < 1e-6


@settings(max_examples=200, deadline=None)
@given(SCHEDULES, INSTANTS, INSTANTS)
def test_elapsed_is_never_negative_nor_above_wall_time(schedule: Schedule, a: float, b: float) -> None:
    assert 0 <= schedule.elapsed(a, b) <= max(0.0, b - a) + 1e-6


@settings(max_examples=200, deadline=None)
@given(ZONES, INSTANTS, INSTANTS)
def test_24x7_elapsed_is_wall_time(zone: ZoneInfo, a: float, b: float) -> None:
    a, b = sorted((a, b))
    assert Schedule(zone).elapsed(a, b) == b - a
    full = Schedule(zone, week=(((0, 86400),),) * 7)
    assert abs(full.elapsed(a, b) - (b - a)) < 1e-6


@settings(max_examples=200, deadline=None)
@given(SCHEDULES, st.dates(date(2025, 10, 1), date(2027, 3, 30)), st.floats(0, 1), st.floats(0, 1))
def test_nothing_counts_inside_a_holiday(schedule: Schedule, day: date, x: float, y: float) -> None:
    holiday = Schedule(schedule.zone, week=schedule.week, holidays=schedule.holidays | {day})
    opens = _midnight(schedule.zone, day)
    length = _midnight(schedule.zone, day + timedelta(days=1)) - opens  # 23, 24 or 25 hours
    a, b = sorted((opens + x * length, opens + y * length))
    assert holiday.elapsed(a, b) == 0


def _midnight(zone: ZoneInfo, day: date) -> float:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone).timestamp()


@settings(max_examples=200, deadline=None)
@given(SCHEDULES, INSTANTS, st.floats(1, 30 * 86400))
def test_reached_is_where_elapsed_meets_the_target(schedule: Schedule, start: float, seconds: float) -> None:
    end = schedule.reached(start, seconds)
    if end is None:
        assert schedule.elapsed(start, start + 3 * 366 * 86400) < seconds
        return
    assert abs(schedule.elapsed(start, end) - seconds) < 1e-3
    assert schedule.elapsed(start, end - 1) < seconds


def test_cutoff_is_the_start_from_which_a_wait_passes_its_target() -> None:
    # Monday 30 November 10:00: two business hours back is Friday 17:00 (the weekend does not count).
    assert OFFICE.cutoff(at(2026, 11, 30, 10), 2 * H) == at(2026, 11, 27, 17)
    # One hour back is met exactly at Monday's opening: the weekend before it adds nothing, so a wait
    # started any time after Friday's closing has only the hour.
    assert OFFICE.cutoff(at(2026, 11, 30, 10), H) == at(2026, 11, 27, 18)
    # Across Christmas (holiday Friday 25th and Saturday 26th): Monday 28th 10:00 back 2 h is Thursday 17:00.
    assert OFFICE.cutoff(at(2026, 12, 28, 10), 2 * H) == at(2026, 12, 24, 17)
    # The Friday lunch break does not count either.
    assert OFFICE.cutoff(at(2026, 11, 27, 15), 2 * H) == at(2026, 11, 27, 12)
    assert CALENDAR.cutoff(at(2026, 3, 8, 13), 24 * H) == at(2026, 3, 7, 12)  # the DST day has 23 hours
    assert Schedule(CHICAGO, week=((),) * 7).cutoff(at(2026, 1, 1), 60) is None


@settings(max_examples=300, deadline=None)
@given(SCHEDULES, INSTANTS, st.floats(0, 30 * 86400))
def test_cutoff_splits_starts_into_passed_and_not_passed(schedule: Schedule, end: float, seconds: float) -> None:
    start = schedule.cutoff(end, seconds)
    if start is None:
        assert schedule.elapsed(end - 3 * 366 * 86400, end) <= seconds + 1e-6
        return
    assert start <= end
    assert schedule.elapsed(start, end) <= seconds + 1e-6
    assert abs(schedule.elapsed(start, end) - seconds) < 1e-3
    assert schedule.elapsed(start - 1, end) > seconds  # one second earlier has passed the target


@settings(max_examples=200, deadline=None)
@given(SCHEDULES, INSTANTS, INSTANTS, st.floats(0, 10 * 86400))
def test_cutoff_agrees_with_elapsed_for_any_start(schedule: Schedule, end: float, x: float, seconds: float) -> None:
    start = schedule.cutoff(end, seconds)
    if start is None or abs(x - start) < 1e-3:
        return
    assert (x < start) == (schedule.elapsed(x, end) > seconds)


@settings(max_examples=200, deadline=None)
@given(ZONES, INSTANTS, st.floats(0, 30 * 86400))
def test_24x7_cutoff_is_wall_time(zone: ZoneInfo, end: float, seconds: float) -> None:
    assert Schedule(zone).cutoff(end, seconds) == end - seconds
