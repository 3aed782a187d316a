"""Business-hours arithmetic: worked examples, DST, holidays, and algebraic properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import tzdata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from starter.runtime.policy_file import DEFAULT_POLICY, load_policy
from workflows.common.calendar import WEEKDAYS, BusinessCalendar, parse_hhmm

BERLIN = ZoneInfo("Europe/Berlin")
US = timedelta(microseconds=1)
H = timedelta(hours=1)

POLICY = load_policy(DEFAULT_POLICY)
OFFICE = POLICY.calendars["office"]
ALWAYS = POLICY.calendars["around-the-clock"]
FULL_DAYS_BERLIN = BusinessCalendar(name="full", timezone="Europe/Berlin", hours={d: ["00:00-24:00"] for d in WEEKDAYS})
SPLIT_NY = BusinessCalendar(
    name="split",
    timezone="America/New_York",
    hours={"mon": ["08:00-12:00", "13:00-17:30"], "wed": "13:00-24:00", "thu": ["00:00-02:00"], "sat": ["10:00-14:00"]},
    holidays=[date(2026, 7, 4), date(2026, 11, 26)],
)
LORD_HOWE = BusinessCalendar(
    name="lh", timezone="Australia/Lord_Howe", hours={d: ["01:00-03:00", "09:00-17:00"] for d in WEEKDAYS}
)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


# ----- the worked examples ---------------------------------------------------------------


def test_default_office_calendar_is_what_the_policy_file_says() -> None:
    assert OFFICE.timezone == "Europe/Berlin"
    assert set(OFFICE.hours) == {"mon", "tue", "wed", "thu", "fri"}
    assert {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)} <= set(OFFICE.holidays)


def test_one_business_hour_from_friday_evening_is_monday_morning() -> None:
    due = OFFICE.add(berlin(2026, 11, 27, 17, 30), H)
    assert due == berlin(2026, 11, 30, 9, 30)
    assert due.astimezone(BERLIN).strftime("%a %H:%M") == "Mon 09:30"
    assert OFFICE.elapsed(berlin(2026, 11, 27, 17, 30), due) == H


def test_add_from_a_closed_instant_starts_at_the_next_opening() -> None:
    assert OFFICE.add(berlin(2026, 11, 28, 12, 0), H) == berlin(2026, 11, 30, 10, 0)  # Saturday
    assert OFFICE.add(berlin(2026, 11, 30, 6, 0), 30 * timedelta(minutes=1)) == berlin(2026, 11, 30, 9, 30)
    assert OFFICE.add(berlin(2026, 11, 30, 18, 0), H) == berlin(2026, 12, 1, 10, 0)  # 18:00 is already closed


def test_add_that_ends_exactly_at_closing_time_stays_on_that_day() -> None:
    assert OFFICE.add(berlin(2026, 11, 30, 9, 0), 9 * H) == berlin(2026, 11, 30, 18, 0)
    assert OFFICE.add(berlin(2026, 11, 30, 9, 0), 9 * H + US) == berlin(2026, 12, 1, 9, 0) + US


def test_holidays_are_skipped() -> None:
    # Wed 2026-12-23 17:00 + 2h: 1h on the 23rd, then 24th (Thu), 25th (Fri) holidays, 26th Sat, 27th Sun.
    assert OFFICE.add(berlin(2026, 12, 23, 17, 0), 2 * H) == berlin(2026, 12, 28, 10, 0)
    assert OFFICE.elapsed(berlin(2026, 12, 23, 0, 0), berlin(2026, 12, 29, 0, 0)) == 9 * H + 9 * H  # 23rd and 28th
    assert not OFFICE.is_open(berlin(2026, 12, 24, 10, 0))
    assert OFFICE.next_open(berlin(2026, 12, 24, 10, 0)) == berlin(2026, 12, 28, 9, 0)
    # The same span without holidays counts the Thursday and Friday too.
    plain = OFFICE.model_copy(update={"holidays": ()})
    assert plain.elapsed(berlin(2026, 12, 23, 0, 0), berlin(2026, 12, 29, 0, 0)) == 4 * 9 * H


def test_new_year_holidays() -> None:
    # Wed 2026-12-30 17:00 + 2h: 31st and 1st are holidays, 2nd/3rd weekend -> Mon 2027-01-04 10:00.
    assert OFFICE.add(berlin(2026, 12, 30, 17, 0), 2 * H) == berlin(2027, 1, 4, 10, 0)


def test_elapsed_over_a_week() -> None:
    assert OFFICE.elapsed(berlin(2026, 11, 30, 0, 0), berlin(2026, 12, 7, 0, 0)) == 45 * H
    assert OFFICE.elapsed(berlin(2026, 11, 27, 17, 30), berlin(2026, 11, 30, 9, 30)) == H
    assert OFFICE.elapsed(berlin(2026, 11, 30, 12, 0), berlin(2026, 11, 30, 11, 0)) == timedelta(0)


def test_is_open_is_half_open_at_interval_ends() -> None:
    assert OFFICE.is_open(berlin(2026, 11, 30, 9, 0))
    assert OFFICE.is_open(berlin(2026, 11, 30, 17, 59, 59))
    assert not OFFICE.is_open(berlin(2026, 11, 30, 18, 0))
    assert not OFFICE.is_open(berlin(2026, 11, 30, 8, 59, 59))
    assert OFFICE.next_open(berlin(2026, 11, 30, 12, 0)) == berlin(2026, 11, 30, 12, 0)


def test_instants_in_other_zones_are_the_same_instants() -> None:
    start = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # = 17:30 Berlin
    assert OFFICE.add(start, H) == berlin(2026, 11, 30, 9, 30)
    ny = ZoneInfo("America/New_York")
    assert OFFICE.add(start.astimezone(ny), H) == berlin(2026, 11, 30, 9, 30)
    assert OFFICE.add(start, H).utcoffset() == timedelta(0)  # results are UTC


def test_split_hours_and_24_00_end() -> None:
    ny = ZoneInfo("America/New_York")
    mon = datetime(2026, 6, 1, 11, 30, tzinfo=ny)
    # 30 min to 12:00, lunch closed, then 13:00 + 30 min
    assert SPLIT_NY.add(mon, H) == datetime(2026, 6, 1, 13, 30, tzinfo=ny)
    # Wednesday 13:00-24:00 runs straight into Thursday 00:00-02:00
    wed = datetime(2026, 6, 3, 23, 0, tzinfo=ny)
    assert SPLIT_NY.add(wed, 2 * H) == datetime(2026, 6, 4, 1, 0, tzinfo=ny)
    assert SPLIT_NY.elapsed(datetime(2026, 6, 3, 0, 0, tzinfo=ny), datetime(2026, 6, 5, 0, 0, tzinfo=ny)) == 13 * H
    assert SPLIT_NY.is_open(datetime(2026, 6, 4, 0, 0, tzinfo=ny))
    assert not SPLIT_NY.is_open(datetime(2026, 6, 4, 2, 0, tzinfo=ny))
    # Thanksgiving (a Thursday) is a holiday: Wed 23:30 + 1h -> 30 min Wed, then Sat 10:00 + 30 min
    assert SPLIT_NY.add(datetime(2026, 11, 25, 23, 30, tzinfo=ny), H) == datetime(2026, 11, 28, 10, 30, tzinfo=ny)


def test_always_open_is_plain_arithmetic() -> None:
    a = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert ALWAYS.add(a, 5 * H) == a + 5 * H
    assert ALWAYS.elapsed(a, a + 49 * H) == 49 * H
    assert ALWAYS.is_open(a)
    assert ALWAYS.next_open(a) == a


def test_zero_and_negative_durations() -> None:
    a = berlin(2026, 11, 28, 12, 0)  # closed (Saturday)
    assert OFFICE.add(a, timedelta(0)) == a
    assert OFFICE.add(a, -H) == a
    assert OFFICE.elapsed(a, a) == timedelta(0)


# ----- daylight saving time -----------------------------------------------------------


def test_full_day_calendar_counts_23_hours_on_spring_forward_day() -> None:
    assert FULL_DAYS_BERLIN.elapsed(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)) == 23 * H
    assert FULL_DAYS_BERLIN.elapsed(berlin(2026, 3, 28, 0, 0), berlin(2026, 3, 29, 0, 0)) == 24 * H
    # a day of business time from the start of that day ends at the next local day's 01:00
    assert FULL_DAYS_BERLIN.add(berlin(2026, 3, 29, 0, 0), 24 * H) == berlin(2026, 3, 30, 1, 0)


def test_full_day_calendar_counts_25_hours_on_fall_back_day() -> None:
    assert FULL_DAYS_BERLIN.elapsed(berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 26, 0, 0)) == 25 * H
    assert FULL_DAYS_BERLIN.add(berlin(2026, 10, 25, 0, 0), 24 * H) == berlin(2026, 10, 25, 23, 0)


def test_full_day_calendar_is_real_time() -> None:
    a, b = berlin(2026, 3, 20, 5, 0), berlin(2026, 11, 2, 7, 0)
    assert FULL_DAYS_BERLIN.elapsed(a, b) == b - a  # aware subtraction is in real time


def test_office_opens_at_nine_local_after_both_shifts() -> None:
    # Sunday 2026-03-29 is the spring-forward day; Monday opens 09:00 CEST = 07:00 UTC
    opening = OFFICE.next_open(berlin(2026, 3, 29, 12, 0))
    assert opening == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert opening.astimezone(BERLIN).time() == time(9, 0)
    # before it: Friday 2026-03-27 opened at 09:00 CET = 08:00 UTC
    assert OFFICE.next_open(berlin(2026, 3, 27, 6, 0)) == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
    # Sunday 2026-10-25 falls back; Monday opens 09:00 CET = 08:00 UTC
    opening = OFFICE.next_open(berlin(2026, 10, 25, 12, 0))
    assert opening == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert opening.astimezone(BERLIN).time() == time(9, 0)
    # A business week across the shift is still 45 hours, and Friday 17:30 + 1h is Monday 09:30 local.
    assert OFFICE.elapsed(berlin(2026, 3, 23, 0, 0), berlin(2026, 3, 30, 0, 0)) == 45 * H
    assert OFFICE.add(berlin(2026, 3, 27, 17, 30), H) == berlin(2026, 3, 30, 9, 30)
    assert OFFICE.add(berlin(2026, 10, 23, 17, 30), H) == berlin(2026, 10, 26, 9, 30)


def test_night_interval_across_the_shift_counts_real_hours() -> None:
    night = BusinessCalendar(name="night", timezone="Europe/Berlin", hours={"sun": ["01:00-04:00"]})
    assert night.elapsed(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)) == 2 * H  # 02:00-03:00 does not exist
    assert night.elapsed(berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 26, 0, 0)) == 4 * H  # 02:00-03:00 happens twice
    assert night.elapsed(berlin(2026, 4, 5, 0, 0), berlin(2026, 4, 6, 0, 0)) == 3 * H


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island shifts by 30 minutes (02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on 2026-04-05).
    lh = ZoneInfo("Australia/Lord_Howe")
    day = timedelta(days=1)
    start = datetime(2026, 10, 4, 0, 0, tzinfo=lh)
    assert LORD_HOWE.elapsed(start, start + day) == 2 * H - timedelta(minutes=30) + 8 * H
    start = datetime(2026, 4, 5, 0, 0, tzinfo=lh)
    assert LORD_HOWE.elapsed(start, datetime(2026, 4, 6, 0, 0, tzinfo=lh)) == 2 * H + timedelta(minutes=30) + 8 * H


# ----- validation --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["add", "elapsed", "next_open", "is_open"])
@pytest.mark.parametrize("cal", [OFFICE, ALWAYS], ids=["office", "always"])
def test_naive_datetimes_are_rejected(method: str, cal: BusinessCalendar) -> None:
    naive = datetime(2026, 11, 27, 17, 30)
    aware = naive.replace(tzinfo=UTC)
    calls = {
        "add": lambda: cal.add(naive, H),
        "elapsed": lambda: cal.elapsed(aware, naive),
        "next_open": lambda: cal.next_open(naive),
        "is_open": lambda: cal.is_open(naive),
    }
    with pytest.raises(ValueError, match="no time zone"):
        calls[method]()
    if method == "elapsed":
        with pytest.raises(ValueError, match="no time zone"):
            cal.elapsed(naive, aware)


def test_parse_hhmm() -> None:
    assert parse_hhmm("00:00") == 0
    assert parse_hhmm("09:30") == 570
    assert parse_hhmm("24:00") == 1440
    for bad in ("24:01", "25:00", "9", "09:60", "ab:cd", "-1:00", "09:00:00", ""):
        with pytest.raises(ValueError, match="HH:MM"):
            parse_hhmm(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hours": {"mon": ["18:00-09:00"]}}, "start must be before end"),
        ({"hours": {"mon": ["09:00-09:00"]}}, "start must be before end"),
        ({"hours": {"mon": ["0900-1800"]}}, "must be HH:MM"),
        ({"hours": {"mon": ["09:00"]}}, "must look like '09:00-18:00'"),
        ({"hours": {"funday": ["09:00-18:00"]}}, "allowed: mon, tue, wed, thu, fri, sat, sun"),
        ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "hours.mon: 09:00-12:00 overlaps 11:00-13:00"),
        ({"hours": {}}, "no opening hours"),
        ({"hours": {"mon": ["09:00-18:00"]}, "timezone": "Mars/Olympus"}, "IANA"),
    ],
)
def test_invalid_calendars(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar(name="c", **kwargs)


def test_adjacent_intervals_and_long_weekday_names_are_fine() -> None:
    cal = BusinessCalendar(name="c", hours={"Monday": ["12:00-18:00", "09:00-12:00"]})
    assert set(cal.hours) == {"mon"}
    monday = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert cal.add(monday, 9 * H) == monday + 9 * H


def test_add_gives_up_clearly_when_the_calendar_never_has_enough_time() -> None:
    with pytest.raises(ValueError, match=r"no .* of business time"):
        OFFICE.add(berlin(2026, 1, 1, 0, 0), timedelta(days=10_000))


def test_elapsed_is_not_truncated_over_long_spans() -> None:
    a = datetime(2025, 1, 1, tzinfo=UTC)
    b = a + timedelta(days=1600)
    assert FULL_DAYS_BERLIN.elapsed(a, b) == b - a


# ----- properties ----------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns"]
# Instants near the transitions, so the properties see them more than by chance.
TRANSITIONS = [
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    """Random weekly hours on a 15-minute grid in a random zone, with a few holidays."""
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        points = sorted(draw(st.lists(st.integers(0, 96), unique=True, max_size=6)))
        pairs = list(zip(points[::2], points[1::2], strict=False))
        if pairs:
            hours[day] = [f"{a // 4:02d}:{a % 4 * 15:02d}-{b // 4:02d}:{b % 4 * 15:02d}" for a, b in pairs]
    if not hours:
        hours["wed"] = ["10:00-11:00"]
    holidays = draw(st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=8))
    return BusinessCalendar(name="random", timezone=draw(st.sampled_from(ZONES)), hours=hours, holidays=holidays)


def weekly_open(cal: BusinessCalendar) -> timedelta:
    return sum(
        (timedelta(minutes=parse_hhmm(i.end) - parse_hhmm(i.start)) for ivs in cal.hours.values() for i in ivs),
        timedelta(0),
    )


any_calendar = st.one_of(calendars(), st.sampled_from([OFFICE, FULL_DAYS_BERLIN, SPLIT_NY, LORD_HOWE]))
instants = st.one_of(
    st.datetimes(datetime(2025, 6, 1), datetime(2027, 6, 1), timezones=st.just(UTC)),
    st.builds(lambda t, m: t + timedelta(minutes=m), st.sampled_from(TRANSITIONS), st.integers(-300, 300)),
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def business_durations(cal: BusinessCalendar) -> st.SearchStrategy[timedelta]:
    """Up to ~20 weeks of the calendar's opening time, microsecond precision."""
    limit = weekly_open(cal) * 20
    return st.integers(0, int(limit / US)).map(lambda n: n * US)


@PROPS
@given(cal=any_calendar, a=instants, data=st.data())
def test_elapsed_inverts_add(cal: BusinessCalendar, a: datetime, data: st.DataObject) -> None:
    d = data.draw(business_durations(cal))
    due = cal.add(a, d)
    assert due >= a
    assert cal.elapsed(a, due) == d
    if d > timedelta(0):
        # never inside a closed period, except exactly at the end of an open interval
        assert cal.is_open(due - US)
        assert cal.elapsed(a, due - US) == d - US  # and it is the earliest such instant
    if d > timedelta(0) and cal.is_open(a):
        assert cal.elapsed(a, a + min(d, US)) == min(d, US)


@PROPS
@given(cal=any_calendar, a=instants, data=st.data())
def test_add_is_monotonic(cal: BusinessCalendar, a: datetime, data: st.DataObject) -> None:
    d1, d2 = sorted([data.draw(business_durations(cal)), data.draw(business_durations(cal))])
    assert cal.add(a, d1) <= cal.add(a, d2)
    if d1 < d2:
        assert cal.add(a, d1) < cal.add(a, d2)


@PROPS
@given(cal=any_calendar, points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_is_additive_and_bounded_by_wall_time(cal: BusinessCalendar, points: list[datetime]) -> None:
    a, b, c = sorted(points)
    ab, bc, ac = cal.elapsed(a, b), cal.elapsed(b, c), cal.elapsed(a, c)
    assert ab + bc == ac
    assert timedelta(0) <= ab <= b - a
    assert cal.elapsed(c, a) == timedelta(0)


@PROPS
@given(cal=any_calendar, a=instants)
def test_next_open(cal: BusinessCalendar, a: datetime) -> None:
    nxt = cal.next_open(a)
    assert nxt >= a
    assert cal.is_open(nxt)
    assert cal.elapsed(a, nxt) == timedelta(0)
    assert cal.is_open(a) == (nxt == a)


def _oracle_is_open(cal: BusinessCalendar, at: datetime) -> bool:
    """Wall-clock reading of the calendar, independent of the interval arithmetic."""
    local = at.astimezone(cal.zone)
    if local.date() in cal.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(
        parse_hhmm(i.start) <= minute < parse_hhmm(i.end) for i in cal.hours.get(WEEKDAYS[local.weekday()], ())
    )


def _transition_day(cal: BusinessCalendar, at: datetime) -> bool:
    day = at.astimezone(cal.zone).date()
    lo = datetime.combine(day, time(0), tzinfo=cal.zone)
    hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.zone)
    return lo.utcoffset() != hi.utcoffset()


@PROPS
@given(cal=any_calendar, at=instants)
def test_is_open_agrees_with_wall_clock_reading(cal: BusinessCalendar, at: datetime) -> None:
    if _transition_day(cal, at):  # wall times in a DST gap have no single reading; see the DST tests
        return
    at = at.replace(second=0, microsecond=0)
    assert cal.is_open(at) == _oracle_is_open(cal, at)


@PROPS
@given(a=instants, b=instants, seconds=st.integers(0, 10**8))
def test_always_open_is_plain_addition(a: datetime, b: datetime, seconds: int) -> None:
    d = timedelta(seconds=seconds, microseconds=seconds % 997)
    assert ALWAYS.add(a, d) == a + d
    assert ALWAYS.elapsed(a, b) == max(b - a, timedelta(0))


def test_zone_rules_come_from_the_pinned_tzdata_package_not_the_host(tmp_path: Path) -> None:
    # A host whose zone files say something else (here: "Europe/Berlin" holds Tokyo's rules) must not change
    # a due time: the calendar reads the pinned package, so a replay anywhere computes the same instants.
    import zoneinfo

    from workflows.common import calendar as cal

    (tmp_path / "Europe").mkdir()
    tokyo = resources.files("tzdata.zoneinfo").joinpath("Asia", "Tokyo").read_bytes()
    (tmp_path / "Europe" / "Berlin").write_bytes(tokyo)
    cal._zone.cache_clear()
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    try:
        zoneinfo.ZoneInfo.clear_cache()
        host = zoneinfo.ZoneInfo("Europe/Berlin")
        assert host.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=9)  # the host's (bogus) rules
        assert cal._zone("Europe/Berlin").utcoffset(datetime(2026, 1, 1)) == timedelta(hours=1)
        monday_9 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
        assert BusinessCalendar(name="b", timezone="Europe/Berlin", hours={"mon": "09:00-18:00"}).is_open(monday_9)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
        cal._zone.cache_clear()
    assert cal.TZDATA_VERSION == tzdata.IANA_VERSION


@pytest.mark.parametrize("name", ["Europe", "Nowhere/Else", "../../etc/passwd", "", "Europe/../UTC", "zone.tab", "europe/berlin"])
def test_unknown_time_zones_are_rejected_by_name(name: str) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessCalendar(name="b", timezone=name, always_open=True)
