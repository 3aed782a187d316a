"""The shared vocabulary (workflows/common/vocabulary.py): durations as the policy file and the CLI write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.common.vocabulary import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("20m", timedelta(minutes=20)),
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(minutes=90)),
        ("1h 30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("PT1H30M", timedelta(minutes=90)),
        (45, timedelta(seconds=45)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["10 minutes", "", "  ", "h", "1x", "30m1h", "1.5h", True, None, [], "P"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(days=2, seconds=5)) == "48h5s", "no days: a business day depends on the calendar"
    assert format_duration(-timedelta(hours=1)) == "-1h"


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(0, 10**9))
def test_duration_round_trip(seconds: int) -> None:
    d = timedelta(seconds=seconds)
    text = format_duration(d)
    assert parse_duration(text) == d
    assert text.endswith(("d", "h", "m", "s"))
