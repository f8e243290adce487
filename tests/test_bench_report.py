"""`make bench`'s markdown: a rate that missed the 99 % mark must not read as if it made it."""

from __future__ import annotations

from bench.run import _md_realtime_row, _pct_down


def test_percentages_are_cut_not_rounded() -> None:
    assert _pct_down(0.98997) == "98.99"  # rounded, this read "99.00" and was not counted
    assert _pct_down(0.99) == "99.00"  # exactly the mark stays at it
    assert _pct_down(1.0) == "100.00"
    assert _pct_down(0.5931) == "59.31"


def test_realtime_row_shows_a_miss_below_the_mark() -> None:
    row = _md_realtime_row(
        "sm",
        "no baud limit",
        "—",
        {"25": {"on_time": 0.98997}, "12.5": {"on_time": 1.0}, "max_hz_on_time": 12.5},
    )
    assert "25 Hz: 98.99 %" in row
    assert "12.5 Hz: 100.00 %" in row
