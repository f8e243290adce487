"""Welch-Lynch fault-tolerant midpoint: drifting and lying clocks do not drag loyal boards."""

from __future__ import annotations

import random

from voter.core.clock import ClockSync, ft_midpoint, join_offset


def test_ft_midpoint_drops_extremes() -> None:
    """N=4, f=1: the mean of the middle two; too few values -> None."""
    assert 1.5 == ft_midpoint([0.0, 1.0, 2.0, 100.0], 1)
    assert ft_midpoint([0.0, 1.0], 1) is None


def simulate(
    drift_ppm: dict[int, float], liar: int | None, ticks: int = 2000, jitter_s: float = 20e-6
) -> list[float]:
    """Four boards' clocks; each tick every board observes the others and corrects itself.

    Returns each board's final phase (seconds, relative to real time)."""
    period = 0.02
    rng = random.Random(1)
    phase = {i: rng.uniform(-0.002, 0.002) for i in range(4)}
    syncs = {i: ClockSync(period, 1, step_s=0.004) for i in range(4)}
    for _ in range(ticks):
        for i in range(4):
            phase[i] += period * drift_ppm.get(i, 0.0) * 1e-6
        for i in range(4):
            for j in range(4):
                if i == j:
                    continue
                seen = phase[j] - phase[i]
                if j == liar:
                    seen = rng.uniform(-0.003, 0.003)  # a lying or broken clock
                jitter = rng.gauss(0, jitter_s) if jitter_s else 0.0
                # observe(): offset = peer_tick*T + delay - arrival_vt, arrival = T*k - seen
                syncs[i].observe(j, 100, 100 * period - seen - jitter, 0.0)
        for i in range(4):
            phase[i] += syncs[i].correction()
    return [phase[i] for i in range(4)]


def test_drifting_clock_is_pulled_in_and_does_not_drag_others() -> None:
    """Board 2 drifts 500 ppm for 40 s: it stays within 0.2 ms of the others, and pulls them by
    under a quarter of its own drift (its small lead is within the 20 us measurement noise,
    so the midpoint cannot always drop it; with no noise the pull is zero)."""
    phases = simulate({2: 500.0}, liar=None)
    alone = 2000 * 0.02 * 500e-6  # how far board 2 alone would have run ahead: 20 ms
    assert max(phases) - min(phases) < 0.0002
    assert all(abs(phases[i]) < 0.25 * alone for i in (0, 1, 3))


def test_without_noise_a_drifting_clock_does_not_move_the_others_at_all() -> None:
    """Exact measurements: the drifting board is always the dropped extreme."""
    phases = simulate({2: 500.0}, liar=None, jitter_s=0.0)
    assert all(abs(phases[i] - phases[0]) < 1e-9 for i in (1, 3))
    assert abs(phases[0]) < 0.0021  # only the start-up spread is averaged away


def test_lying_clock_does_not_drag_loyal_boards() -> None:
    """Board 3 reports random offsets every tick: loyal boards stay within 0.2 ms of each other."""
    phases = simulate({}, liar=3)
    loyal = [phases[i] for i in (0, 1, 2)]
    assert max(loyal) - min(loyal) < 0.0002


def test_join_needs_f_plus_one_agreeing_peers() -> None:
    """A joining board adopts the peers' offset only when f+1 of them agree."""
    # lower median of the peers, backed by two of them within 1 ms; the outlier is ignored
    assert 1.0001 == join_offset([1.0, 1.0001, 5.0], 1, 0.001)
    assert join_offset([1.0, 3.0], 1, 0.001) is None
    assert join_offset([2.0], 1, 0.001) is None


def test_one_slow_tick_does_not_step_the_clock() -> None:
    """A single tick whose peers all look 5 ms off is not acted on; a second one is."""
    sync = ClockSync(0.02, 1, step_s=0.004)
    for peer in (1, 2, 3):
        sync.observe(peer, 10, 10 * 0.02 + 0.005, 0.0)
    assert 0.0 == sync.correction()
    for peer in (1, 2, 3):
        sync.observe(peer, 11, 11 * 0.02 + 0.005, 0.0)
    assert abs(sync.correction() + 0.005) < 1e-12


def test_small_offsets_slew_within_the_ppm_clamp() -> None:
    """A 0.3 ms common offset is slewed by at most 1000 ppm of the period per tick."""
    sync = ClockSync(0.02, 1, step_s=0.004)
    for peer in (1, 2, 3):
        sync.observe(peer, 10, 10 * 0.02 - 0.0003, 0.0)
    assert abs(sync.correction() - 20e-6) < 1e-12
