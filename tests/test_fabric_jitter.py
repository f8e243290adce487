"""The fabric's link-jitter fault: bounded random extra delay per frame, never reordering."""

from __future__ import annotations

import os
import random
import select
import threading
import time
from pathlib import Path

import pytest

from hil.fabric import Fabric, FabricError, start_process
from voter.faultmodel import FaultSpecError, LinkJitter, fault_from_table

MAX_MS = 3.0
SEED = 7


def jitter(link: str = "0-1", **kw: object) -> LinkJitter:
    fault = fault_from_table({"kind": "link-jitter", "link": link, "max_ms": MAX_MS, **kw}, 2)
    assert isinstance(fault, LinkJitter)
    return fault


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_negative_jitter_is_refused(bad: float) -> None:
    """A negative (or NaN) bound is a clear error, not a silent no-op."""
    with pytest.raises(FaultSpecError, match=r"max_ms must be a finite number|jitter must be >= 0"):
        jitter(max_ms=bad)


def test_the_fabric_process_refuses_a_bad_jitter_in_one_line(tmp_path: Path) -> None:
    """The fabric process exits on a bad fault and start_process says why in one line."""
    bad = {"kind": "link-jitter", "link": "0-1", "max_ms": -2.0}
    spec = {"nodes": 2, "baud": 0, "seed": 0, "faults": [bad]}
    with pytest.raises(FabricError, match="jitter must be >= 0"):
        start_process(spec, tmp_path)


def test_the_fabric_process_refuses_a_board_fault(tmp_path: Path) -> None:
    """A fault a board carries out is not the fabric's: one line, not a silent no-op."""
    spec = {
        "nodes": 2,
        "baud": 0,
        "seed": 0,
        "faults": [{"kind": "crash", "node": 1, "at_tick": 3}],
    }
    with pytest.raises(FabricError, match="crash:1@3 is not a link fault"):
        start_process(spec, tmp_path)


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_scheduled_delays_stay_in_bound_and_in_order() -> None:
    """Each frame is due within [wire, wire + max] after it arrived, or with the one ahead of it."""
    fabric = Fabric(2, 115200, seed=SEED, t0=time.monotonic())
    try:
        clock = ManualClock()
        fabric.now = clock  # type: ignore[method-assign]
        fault = jitter()
        fabric.add_fault(fault)
        d = fabric.direction(0, 1)
        frame = b"x" * 11 + b"\x00"  # 12 bytes: ~1.04 ms on the wire at 115200 baud
        wire_s = len(frame) * d.byte_time()
        held = 0
        prev_due = 0.0
        for i in range(500):
            clock.t = i * 0.002  # the wire is free again before each frame
            fabric._frame(d, frame)
            due = d.queue[-1][0]
            extra = due - clock.t - wire_s
            assert due >= prev_due, "a frame would overtake the one ahead of it"
            if due == prev_due and extra > 0:
                held += 1  # waiting for a more delayed frame ahead
            else:
                assert 0.0 <= extra <= fault.max_ms / 1000 + 1e-12
            prev_due = due
        assert 500 == d.channel.stats.jittered_frames
        assert held > 0, "the test never exercised ordering"
    finally:
        fabric.close()


def test_no_jitter_outside_its_window() -> None:
    """Frames in ticks before from_tick and after to_tick pass with wire time only, uncounted."""
    fabric = Fabric(2, 0, seed=SEED, tick_s=0.02)
    try:
        clock = ManualClock()
        fabric.now = clock  # type: ignore[method-assign]
        fabric.add_fault(jitter("0>1", from_tick=50, to_tick=99))
        d = fabric.direction(0, 1)
        for tick in (49, 100):
            fabric.tick0 = time.monotonic() - (tick + 0.5) * 0.02  # the fabric is in `tick`
            clock.t = tick * 0.02
            fabric._frame(d, b"a\x00")
            assert clock.t == d.queue[-1][0]
        assert 0 == d.channel.stats.jittered_frames
        fabric.tick0 = time.monotonic() - 75.5 * 0.02
        fabric._frame(d, b"a\x00")
        assert 1 == d.channel.stats.jittered_frames
    finally:
        fabric.close()


def test_no_fault_before_the_fabric_knows_tick_0() -> None:
    """A pty cluster tells the fabric its tick 0 at start; until then no tick's fault acts."""
    fabric = Fabric(2, 0, seed=SEED, tick_s=0.02)
    try:
        fabric.add_fault(jitter("0>1"))
        d = fabric.direction(0, 1)
        assert -1 == fabric.tick()
        fabric._frame(d, b"a\x00")
        assert 0 == d.channel.stats.jittered_frames
    finally:
        fabric.close()


def test_jittered_frames_arrive_in_order_and_no_earlier_than_drawn() -> None:
    """Real ptys: every frame arrives, in order, each at least its drawn jitter after its write."""
    count = 150
    fabric = Fabric(2, 0, seed=SEED, t0=time.monotonic())
    fault = jitter("0>1")
    fabric.add_fault(fault)
    # the fabric's only use of its seeded generator is one uniform draw per jittered frame
    rng = random.Random(SEED)
    drawn_s = [rng.uniform(0.0, fault.max_ms / 1000) for _ in range(count)]
    server = threading.Thread(target=fabric.serve, daemon=True)
    src = os.open(fabric.ends[(0, 1)], os.O_RDWR | os.O_NOCTTY)
    dst = os.open(fabric.ends[(1, 0)], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        server.start()
        written: list[int] = []
        for i in range(count):
            written.append(time.monotonic_ns())
            os.write(src, f"{i}\x00".encode())
            time.sleep(0.0005)  # closer than the jitter: unordered release would reorder
        got: list[tuple[int, int]] = []
        buf = b""
        deadline = time.monotonic() + 30.0  # generous: only a hang fails this
        while len(got) < count and time.monotonic() < deadline:
            if not select.select([dst], [], [], 0.1)[0]:
                continue
            now = time.monotonic_ns()
            buf += os.read(dst, 4096)
            *frames, buf = buf.split(b"\x00")
            got += [(int(f), now) for f in frames]
    finally:
        fabric.stop()
        server.join(timeout=5)
        os.close(src)
        os.close(dst)
        fabric.close()
    seqs = [seq for seq, _ in got]
    assert list(range(count)) == seqs
    early = [i for i, t in got if (t - written[i]) / 1e9 < drawn_s[i]]
    assert [] == early, "frames released before their drawn jitter"
    assert count == fabric.direction(0, 1).channel.stats.jittered_frames
    assert 0 == fabric.direction(1, 0).channel.stats.jittered_frames
