"""Admission control: the timing budget's arithmetic, its one-line diagnosis, the CPU measurement.

The arithmetic is tested with injected CPU profiles and frame sizes, so every
figure is known exactly; the measurement is tested for its wiring (a fake clock
that advances a fixed step per read) and for sane output, never for speed: the
host has two shared cores.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

from tests.test_voter_cli import assert_user_error, run
from voter.budget import (
    DEFAULT_EXTRA_ROUND1_BYTES,
    MIN_TICKS,
    Budget,
    CpuProfile,
    admit,
    floor_rate,
    measure_tick_cpu,
    one_tick_frames,
    percentile,
    timing_budget,
)
from voter.config import load_cluster
from voter.core.protocol import Algorithm

MS = 1e-3


def profile(
    round_p99_ms: tuple[float, ...] = (1.0, 2.0),
    decide_p99_ms: float = 1.0,
    *,
    nodes: int = 4,
    m: int = 1,
    algorithm: Algorithm = "om",
) -> CpuProfile:
    """A fixed profile: p50 = half the p99, send and receive half the round each."""
    rounds = tuple(x * MS for x in round_p99_ms)
    return CpuProfile(
        nodes=nodes,
        m=m,
        algorithm=algorithm,
        channels=3,
        ticks=100,
        clock="fixed",
        send_p99_s=tuple(x / 2 for x in rounds),
        recv_p99_s=tuple(x / 2 for x in rounds),
        round_p50_s=tuple(x / 2 for x in rounds),
        round_p99_s=rounds,
        decide_p50_s=decide_p99_ms * MS / 2,
        decide_p99_s=decide_p99_ms * MS,
    )


def named_rate(message: str) -> float:
    found = re.search(r"the highest rate that fits is ([0-9.]+) Hz", message)
    assert found, message
    return float(found.group(1))


# -- the arithmetic -------------------------------------------------------------------------
def test_budget_arithmetic_round_binds() -> None:
    """Needs per round are CPU p99 + wire + latency + precision; slots are 0.8 T / rounds.

    Frames of 88 and 200 bytes at 800 kBd (+12 timing bytes in round 1): wire 1.25 and
    2.5 ms; with CPU 1 and 2 ms, latency 0.5, precision 0.5: round 1 needs 3.25 ms,
    round 2 needs 5.5 ms. Two rounds share 0.8 T, so T >= 2 * 5.5 / 0.8 = 13.75 ms:
    72.7 Hz. Deciding (1 ms in 0.2 T) alone would allow 200 Hz.
    """
    b = timing_budget(50.0, (88, 200), profile(), 800_000, 0.5 * MS, 0.5 * MS)
    r1, r2 = b.round_needs
    assert (r1.round, r2.round) == (1, 2)
    assert r1.wire_s == pytest.approx(100 * 10 / 800_000)  # 12 timing bytes counted
    assert r1.total_s == pytest.approx(3.25 * MS)
    assert r2.total_s == pytest.approx(5.5 * MS)
    assert b.slot_s == pytest.approx(8 * MS) and b.decide_slot_s == pytest.approx(4 * MS)
    assert b.fits and b.rounds_fit and b.decide_fits
    assert b.max_tick_hz == pytest.approx(1 / 13.75e-3)
    assert b.highest_hz == 72.7
    assert (b.binding, b.binding_term) == ("round 2", "wire")
    assert b.message.startswith("50 Hz fits: round 2 needs 5.5 ms of its 8.0 ms slot")

    over = b.at(100.0)
    assert not over.fits and not over.rounds_fit and over.decide_fits
    assert over.message == (
        "100 Hz does not fit: round 2 needs 5.5 ms (CPU p99 2.0 + wire 2.5 + latency 0.50 + "
        "precision 0.50; wire is the largest) but its slot is 4.0 ms; "
        "the highest rate that fits is 72.7 Hz"
    )


def test_named_highest_rate_fits_and_five_percent_more_does_not() -> None:
    """The rate the message names really fits; 1.05 times it does not (for many budgets)."""
    for cpu, decide, size, baud, lat, prec in itertools.product(
        (0.05, 0.3, 3.2),
        (0.1, 2.0, 9.0),
        (40, 322, 3000),
        (115_200, 921_600, 0),
        (0.0, 2.4),
        (0.5,),
    ):
        b = timing_budget(
            1000.0, (size // 3, size), profile((cpu, cpu * 1.5), decide), baud, lat * MS, prec * MS
        )
        named = named_rate(b.message)
        assert named == b.highest_hz
        assert b.at(named).fits, b.at(named).message
        assert not b.at(named * 1.05).fits, b.at(named * 1.05).message


@pytest.mark.parametrize(
    ("rounds_ms", "decide_ms", "baud", "latency_ms", "precision_ms", "term", "label"),
    [
        ((3.2, 0.1), 0.1, 921_600, 0.5, 0.5, "cpu", "CPU p99 is the largest"),
        ((0.1, 0.1), 0.1, 9_600, 0.5, 0.5, "wire", "wire is the largest"),
        ((0.1, 0.1), 0.1, 921_600, 2.4, 0.5, "latency", "latency is the largest"),
        ((0.1, 0.1), 0.1, 921_600, 0.5, 3.0, "precision", "precision is the largest"),
        ((0.1, 0.1), 9.0, 921_600, 0.5, 0.5, "decide", "deciding needs 9.0 ms"),
    ],
)
def test_message_names_the_binding_term(
    rounds_ms: tuple[float, float],
    decide_ms: float,
    baud: int,
    latency_ms: float,
    precision_ms: float,
    term: str,
    label: str,
) -> None:
    """A rate that does not fit is refused in one line naming what binds it."""
    b = timing_budget(
        1000.0, (30, 60), profile(rounds_ms, decide_ms), baud, latency_ms * MS, precision_ms * MS
    )
    assert not b.fits
    assert b.binding_term == term
    assert "\n" not in b.message
    assert b.message.startswith("1000 Hz does not fit: ")
    assert label in b.message, b.message
    assert b.at(b.highest_hz).fits


def test_decide_phase_binds() -> None:
    """finish_tick's p99 must fit the 20 % of the period left after the rounds."""
    b = timing_budget(50.0, (30, 60), profile((0.1, 0.1), 5.0), 921_600, 0.0, 0.0)
    assert not b.fits and b.rounds_fit and not b.decide_fits
    assert b.binding == "decide"
    assert b.max_tick_hz == pytest.approx(0.2 / 5e-3)
    assert b.message == (
        "50 Hz does not fit: deciding needs 5.0 ms (finish_tick CPU p99) but the decide "
        "phase is 4.0 ms (20% of the period); the highest rate that fits is 40 Hz"
    )


def test_round1_timing_payload_is_counted() -> None:
    """The extra round-1 bytes go on the wire of round 1 only; 0 removes them."""
    kw = {"latency_s": 0.0, "precision_s": 0.0}
    with_extra = timing_budget(10.0, (100, 100), profile((0, 0), 0), 10_000, **kw)
    without = timing_budget(
        10.0, (100, 100), profile((0, 0), 0), 10_000, **kw, extra_round1_bytes=0
    )
    extra_s = DEFAULT_EXTRA_ROUND1_BYTES * 10 / 10_000
    assert with_extra.round_needs[0].wire_s - without.round_needs[0].wire_s == pytest.approx(
        extra_s
    )
    assert with_extra.round_needs[1] == without.round_needs[1]
    assert with_extra.binding == "round 1" and with_extra.max_tick_hz < without.max_tick_hz


def test_precision_as_a_share_of_the_slot() -> None:
    """A precision bound of slot / 8 (the driver's default) is solved for T with the slot.

    CPU 1 ms a round, nothing else fixed: 1 ms + slot/8 <= slot, slot = 0.4 T, so
    T >= 2 * 1 ms / (0.8 * 7/8): 350 Hz.
    """
    b = timing_budget(
        100.0, (10, 10), profile((1.0, 1.0), 0.1), 0, 0.0, 0.0, 0, precision_fraction=1 / 8
    )
    assert b.round_needs[0].precision_s == pytest.approx(b.slot_s / 8)
    assert b.max_tick_hz == pytest.approx(350.0)
    top = b.at(b.highest_hz)
    assert top.fits and top.worst_round.total_s == pytest.approx(top.slot_s)
    assert not b.at(b.highest_hz * 1.05).fits
    with pytest.raises(ValueError, match="precision_fraction"):
        timing_budget(50.0, (10, 10), profile(), 0, 0.0, 0.0, precision_fraction=1.0)


def test_no_wire_limit_without_a_baud_rate() -> None:
    """baud 0 (links that are not emulated serial lines): wire time is 0."""
    b = timing_budget(50.0, (300, 300), profile(), 0, 0.5 * MS, 0.5 * MS)
    assert all(r.wire_s == 0.0 for r in b.round_needs)


def test_bad_budget_inputs() -> None:
    with pytest.raises(ValueError, match="tick rate"):
        timing_budget(0.0, (30, 60), profile(), 921_600, 0.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        timing_budget(50.0, (30, 60), profile(), 921_600, -1e-3, 0.0)
    with pytest.raises(ValueError, match="rounds"):
        timing_budget(50.0, (30, 60, 90), profile(), 921_600, 0.0, 0.0)


def test_admit_measures_real_frames_and_refuses_a_foreign_profile() -> None:
    """admit takes frame sizes from real boards; a profile of another cluster is an error."""
    b = admit(4, 1, "om", 3, 921_600, 50.0, latency_s=0.0, precision_s=0.0, profile=profile())
    real = [max(map(len, (f.entries for f in sent))) for sent in one_tick_frames(4, 1, "om", 3)]
    assert real == [1, 2]  # round 1: own value; round 2: N-2 relays
    assert b.round_needs[1].wire_s > b.round_needs[0].wire_s - 12 * 10 / 921_600
    with pytest.raises(ValueError, match="CPU profile is for OM"):
        admit(4, 1, "sm", 3, 921_600, 50.0, latency_s=0.0, precision_s=0.0, profile=profile())
    frames = Budget((10, 10), 20)
    b = admit(
        4, 1, "om", 3, 1000, 1.0, latency_s=0.0, precision_s=0.0, profile=profile(), frames=frames
    )
    assert b.round_needs[1].wire_s == pytest.approx(0.1)


def test_scaled_profile_for_boards_sharing_cores() -> None:
    """Four boards on two cores: every CPU figure doubles, and the budget follows."""
    p = profile((1.0, 2.0), 1.0)
    double = p.scaled(2.0)
    assert double.round_p99_s == pytest.approx((2 * MS, 4 * MS))
    assert double.decide_p99_s == pytest.approx(2 * MS)
    b1 = timing_budget(50.0, (10, 10), p, 0, 0.0, 0.0)
    b2 = timing_budget(50.0, (10, 10), double, 0, 0.0, 0.0)
    assert b2.max_tick_hz == pytest.approx(b1.max_tick_hz / 2)
    with pytest.raises(ValueError):
        p.scaled(0.0)


def test_floor_rate_and_percentile() -> None:
    """Named rates round down to 3 digits; p99 is a sample really observed (nearest rank)."""
    for hz in (0.0123456, 0.99, 1.0, 9.999, 43.87, 72.72, 100.0, 227.9, 999.9, 1234.5, 1e5 / 3):
        named = floor_rate(hz)
        assert named <= hz < named * 1.05, (hz, named)
    assert floor_rate(43.87) == 43.8 and floor_rate(1234.5) == 1230
    xs = list(range(1, 101))
    assert (percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 99)


# -- the measurement ------------------------------------------------------------------------
class StepClock:
    """A clock that advances `step` ns per read: every timed section takes exactly `step`."""

    def __init__(self, step: int = 1000) -> None:
        self.now = 0
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("algorithm", ["om", "sm"])
def test_measure_tick_cpu_times_each_phase(algorithm: Algorithm) -> None:
    """Each section is read twice (start, end): send 1 step, receive 1 step, round 2 steps."""
    p = measure_tick_cpu(4, 1, algorithm, 3, samples=3, clock=StepClock())
    assert (p.nodes, p.m, p.algorithm, p.channels, p.ticks, p.rounds) == (4, 1, algorithm, 3, 3, 2)
    assert p.send_p99_s == p.recv_p99_s == (1e-6, 1e-6)
    assert p.round_p50_s == p.round_p99_s == (2e-6, 2e-6)
    assert p.decide_p50_s == p.decide_p99_s == 1e-6
    assert p.clock == "StepClock"


@pytest.mark.parametrize(("algorithm", "nodes", "m"), [("om", 4, 1), ("sm", 4, 1), ("om", 2, 0)])
def test_measure_tick_cpu_real_clock_is_sane(algorithm: Algorithm, nodes: int, m: int) -> None:
    """Positive, ordered figures from the real clock (no assertion on how fast)."""
    p = measure_tick_cpu(nodes, m, algorithm, 3, samples=4)
    assert p.ticks == 4 and p.rounds == m + 1 and p.clock == "thread_time_ns"
    for p50, p99, s, r in zip(
        p.round_p50_s, p.round_p99_s, p.send_p99_s, p.recv_p99_s, strict=True
    ):
        assert 0 < p50 <= p99 < 10.0
        assert 0 < s <= p99 and 0 < r <= p99
    assert 0 < p.decide_p50_s <= p.decide_p99_s < 10.0
    assert p.round_path_p99_s == max(p.round_p99_s)
    assert "ticks" in p.summary() and p.as_dict()["ticks"] == 4
    wall = measure_tick_cpu(nodes, m, algorithm, 3, samples=2, clock=time.perf_counter_ns)
    assert wall.clock == "perf_counter_ns" and wall.round_path_p99_s > 0


def test_measure_tick_cpu_time_budget_takes_at_least_min_ticks() -> None:
    """Without a sample count the run stops on its time budget, never below MIN_TICKS."""
    p = measure_tick_cpu(4, 1, "om", 3, time_budget_s=0.0)
    assert p.ticks == MIN_TICKS
    with pytest.raises(ValueError, match="samples"):
        measure_tick_cpu(4, 1, "om", 3, samples=0)


def test_oversized_clusters_are_refused_before_a_tick_runs() -> None:
    """OM(6) with 16 nodes would build millions of entries: refused by counting, in one line."""
    started = time.monotonic()
    with pytest.raises(ValueError, match="2162160 entries in a frame; the frame limit is 512"):
        measure_tick_cpu(16, 6, "om", 3)
    with pytest.raises(ValueError, match="frame limit"):
        admit(16, 6, "om", 3, 921_600, 50.0, latency_s=0.0, precision_s=0.0)
    assert time.monotonic() - started < 60  # a hang guard, not a speed assertion


@pytest.mark.parametrize(("nodes", "m"), [(4, 1), (5, 2), (7, 2), (6, 3)])
def test_om_entry_count_matches_real_frames(nodes: int, m: int) -> None:
    """The count used to refuse early is the real largest frame's entry count."""
    from voter.budget import _om_entries_max

    frames = one_tick_frames(nodes, m, "om", 1)
    assert max(len(f.entries) for f in frames[-1]) == _om_entries_max(nodes, m)


# -- voter cluster init ---------------------------------------------------------------------
def test_cluster_init_prints_that_the_rate_fits(tmp_path: Path) -> None:
    """A rate far inside the budget (1 Hz) gets one `timing:` line on stdout, nothing on stderr."""
    proc = run("cluster", "init", "--nodes", "4", "--out", tmp_path / "c", "--tick-hz", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.startswith("timing: ")]
    assert len(lines) == 1 and lines[0].startswith("timing: 1 Hz fits: "), proc.stdout
    assert "the highest rate that fits is" in lines[0]
    assert proc.stderr == ""


def test_cluster_init_warns_when_the_rate_does_not_fit(tmp_path: Path) -> None:
    """SM(1) frames at 1200 baud need seconds of wire: a warning naming it; init still succeeds."""
    out = tmp_path / "c"
    proc = run(
        "cluster", "init", "--nodes", "4", "--out", out, "--algorithm", "sm", "--baud", "1200",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert load_cluster(out / "cluster.toml").baud == 1200
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("voter: warning: 50 Hz does not fit: round 2 needs")
    assert "wire is the largest" in lines[0]
    assert named_rate(lines[0]) < 50
    assert "timing:" not in proc.stdout


def test_cluster_init_check_rate_refuses_and_writes_nothing(tmp_path: Path) -> None:
    """--check-rate makes the warning the usual one-line user error (exit 2), before writing."""
    out = tmp_path / "c"
    proc = run(
        "cluster", "init", "--nodes", "4", "--out", out, "--algorithm", "sm", "--baud", "1200",
        "--check-rate",
    )  # fmt: skip
    assert_user_error(proc, "50 Hz does not fit", "the highest rate that fits is")
    assert not out.exists()


def test_cluster_init_latency_and_precision_options(tmp_path: Path) -> None:
    """The timing options feed the check (latency 100 ms cannot fit 50 Hz) and are validated."""
    proc = run(
        "cluster", "init", "--nodes", "4", "--out", tmp_path / "a", "--latency-ms", "100",
    )  # fmt: skip
    assert proc.returncode == 0
    assert "latency is the largest" in proc.stderr, proc.stderr
    assert_user_error(
        run("cluster", "init", "--nodes", "4", "--out", tmp_path / "b", "--precision-ms", "-1"),
        "--precision-ms must be in [0, 1000)",
    )
    assert not (tmp_path / "b").exists()


def test_cluster_init_warns_about_frames_over_the_limit(tmp_path: Path) -> None:
    """A cluster voterd will refuse (frames over the limit) is still written, with a warning."""
    proc = run("cluster", "init", "--nodes", "16", "--m", "6", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert "voter: warning: OM(6) with 16 nodes needs" in proc.stderr
    assert "voterd will refuse this cluster" in proc.stderr
