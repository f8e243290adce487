"""voter.join: the tick a starting board learns from its peers' round-1 frames, or a cold start."""

from __future__ import annotations

import pytest

from voter.core.driver import Timing
from voter.core.frame import WIRE_VERSION, Drop, Frame, encode_frame
from voter.join import Joiner, first_tick, listen_s

PERIOD_S = 0.02
BAUD = 115_200
TIMING = Timing(PERIOD_S, rounds=2, nodes=4, latency_s=0.001)  # f = 1, slot 8 ms


def round1(src: int, tick: int, dst: int = 0, rnd: int = 1) -> Frame:
    return Frame(WIRE_VERSION, "t", src, dst, tick, rnd, ())


def offset_of(frame: Frame, arrival_s: float) -> float:
    """What the joiner should make of `frame` read at `arrival_s`: its t0 minus our time."""
    delay_s = len(encode_frame(frame)) * 10 / BAUD + TIMING.latency_s
    return frame.tick * PERIOD_S + delay_s - arrival_s


def test_two_agreeing_peers_are_a_quorum_and_set_the_offset() -> None:
    """f = 1 of 4: two peers within slot/2 of each other settle the tick."""
    j = Joiner(0, TIMING, BAUD)
    j.observe(1, round1(1, 10), 0.1)
    assert not j.quorum()
    j.observe(2, round1(2, 10), 0.1)
    assert j.quorum()
    offset, how, peers = j.verdict()
    assert "peers" == how
    assert [1, 2] == peers
    assert offset == pytest.approx(offset_of(round1(1, 10), 0.1))


def test_peers_far_apart_are_no_quorum_and_the_lower_median_is_followed() -> None:
    """Two peers a tick apart (beyond slot/2) do not agree; the board follows the lower median."""
    j = Joiner(0, TIMING, BAUD)
    j.observe(1, round1(1, 10), 0.1)
    j.observe(2, round1(2, 11), 0.1)
    assert not j.quorum()
    offset, how, peers = j.verdict()
    assert ("peers", [1, 2]) == (how, peers)
    assert offset == pytest.approx(offset_of(round1(1, 10), 0.1))


def test_nobody_heard_is_a_cold_start() -> None:
    j = Joiner(0, TIMING, BAUD)
    assert not j.quorum()
    assert (0.0, "cold", []) == j.verdict()


def test_only_a_peers_own_round1_frame_to_us_counts() -> None:
    """Other rounds, frames for another board, relayed sources and drops say nothing."""
    j = Joiner(0, TIMING, BAUD)
    j.observe(1, round1(1, 10, rnd=2), 0.1)
    j.observe(1, round1(1, 10, dst=2), 0.1)
    j.observe(1, round1(3, 10), 0.1)
    j.observe(1, Drop("crc"), 0.1)
    assert not j.quorum()
    assert "cold" == j.verdict()[1]


def test_what_is_heard_counts_only_once_taken_in_by_quorum() -> None:
    """The verdict is what the last `quorum()` took in (the daemon asks after every wait)."""
    j = Joiner(0, TIMING, BAUD)
    j.observe(1, round1(1, 10), 0.1)
    assert "cold" == j.verdict()[1]
    j.quorum()
    assert "peers" == j.verdict()[1]


def test_fault_bound_is_the_timing_quorums() -> None:
    assert TIMING.f == Joiner(0, TIMING, BAUD).f == 1


def test_first_tick_is_the_next_whole_tick_and_never_negative() -> None:
    assert 3 == first_tick(0.0, 0.05, PERIOD_S)
    assert 1 == first_tick(0.0, 0.0, PERIOD_S)
    assert 0 == first_tick(1.0, 0.0, PERIOD_S)


def test_listen_default_is_five_periods_and_at_least_half_a_second() -> None:
    assert 0.5 == listen_s(PERIOD_S, None)
    assert 1.0 == listen_s(0.2, None)
    assert 0.0 == listen_s(PERIOD_S, 0.0)
