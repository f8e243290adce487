"""voter.core.validity: each check voids the channel it should, counts why, and nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voter.core.validity import (
    DENSITY,
    RANGE,
    RATE,
    STALE,
    TIMEOUT,
    ChannelLimits,
    Validity,
    from_limits,
)

NAMES = ("a", "b")
PERIOD_S = 0.02


OFF = ChannelLimits()


def checks(a: ChannelLimits, b: ChannelLimits = OFF) -> Validity:
    return Validity((a, b), NAMES, PERIOD_S)


def run(v: Validity, samples: list[float | None]) -> list[str | None]:
    """Channel a's samples, tick by tick (channel b a steady 1.0): the reason per tick."""
    out: list[str | None] = []
    for k, x in enumerate(samples):
        reading, flagged = v.check(k, (x, 1.0))
        assert isinstance(reading, tuple)
        if "a" in flagged:
            assert reading[0] is None, "a voided channel goes out as ERROR"
        else:
            assert reading[0] == x, "a channel that passes goes out unchanged"
        assert reading[1] == 1.0
        out.append(flagged.get("a"))
    return out


def test_no_thresholds_means_no_checks() -> None:
    """Off by default: a cluster without [validity] runs no checks (today's behaviour)."""
    assert from_limits((ChannelLimits(), ChannelLimits()), NAMES, PERIOD_S) is None
    assert from_limits((ChannelLimits(min=0.0), ChannelLimits()), NAMES, PERIOD_S) is not None


def test_out_of_range() -> None:
    v = checks(ChannelLimits(min=0.0, max=10.0))
    assert [None, RANGE, None, RANGE, None] == run(v, [0.0, -0.5, 10.0, 10.5, 5.0])


def test_stale_after_k_equal_samples_and_back_when_it_moves() -> None:
    """The K-th equal sample running is stuck; every one after it too, until it changes."""
    v = checks(ChannelLimits(stale_samples=3))
    got = run(v, [1.0, 2.0, 2.0, 2.0, 2.0, 2.1, 2.1])
    assert [None, None, None, STALE, STALE, None, None] == got


def test_rate_of_change_against_the_last_valid_sample() -> None:
    """10 units/s at 50 Hz is 0.2 a tick; a step stays invalid until time allows it."""
    v = checks(ChannelLimits(max_rate=10.0))
    got = run(v, [0.0, 0.2, 1.2, 1.2, 1.2, 1.2, 1.2])
    # 1.0 above the last valid 0.2 (tick 1): allowed 0.2 per tick since, so from tick 6
    assert [None, None, RATE, RATE, RATE, RATE, None] == got


def test_timeout_after_ticks_without_a_sample() -> None:
    """A missing sample is ERROR anyway; `timeout_ticks` of them running is a timeout."""
    v = checks(ChannelLimits(timeout_ticks=3))
    got = run(v, [1.0, None, None, None, None, 1.1])
    assert [None, None, None, TIMEOUT, TIMEOUT, None] == got


def test_error_density_voids_even_passing_samples() -> None:
    """More than errors_max failures in the window: good samples stay out until they age."""
    v = checks(ChannelLimits(min=0.0, error_window=5, errors_max=1))
    got = run(v, [1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # errors at ticks 1, 2; the window of 5 ticks holds both until tick 6
    assert [None, RANGE, RANGE, DENSITY, DENSITY, DENSITY, None, None] == got


def test_counts_per_channel_and_reason() -> None:
    v = checks(ChannelLimits(max=1.0), ChannelLimits(stale_samples=2))
    v.check(0, (2.0, 5.0))
    v.check(1, (2.0, 5.0))
    v.check(2, (0.0, 6.0))
    assert {("a", RANGE): 2, ("b", STALE): 1} == v.counts
    assert {"a": {"range": 2}, "b": {"stale": 1}} == v.summary()


def test_a_missing_reading_is_every_channel_missing() -> None:
    v = checks(ChannelLimits(timeout_ticks=1), ChannelLimits(timeout_ticks=1))
    reading, flagged = v.check(0, None)
    assert (None, None) == reading
    assert {"a": TIMEOUT, "b": TIMEOUT} == flagged


floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(floats, floats), min_size=1, max_size=30))
def test_checks_only_ever_void_channels(samples: list[tuple[float, float]]) -> None:
    """Whatever comes in: a channel goes out as it came or as None, never as another value."""
    v = checks(
        ChannelLimits(min=-1e5, max=1e5, stale_samples=2, max_rate=1e3),
        ChannelLimits(error_window=4, errors_max=1, max_rate=1.0),
    )
    for k, reading in enumerate(samples):
        out, flagged = v.check(k, reading)
        assert isinstance(out, tuple)
        for ch, (x, y) in enumerate(zip(reading, out, strict=True)):
            assert y == x or (y is None and NAMES[ch] in flagged)


def test_the_decision_line_carries_the_voided_channels_and_reads_back() -> None:
    """`invalid` is in the line only when a channel was voided (hashes of runs without
    checks are unchanged), and parse gives it back."""
    from voter.core.record import DecisionRecord

    plain = DecisionRecord(tick=3, node=0)
    assert "invalid" not in plain.to_json()
    flagged = DecisionRecord(tick=3, node=0, invalid={"altitude_m": STALE})
    line = flagged.to_json()
    assert {"altitude_m": "stale"} == line["invalid"]
    assert flagged == DecisionRecord.parse(line)
