"""The fabric's link ends: a board that does not read loses whole new frames, never the backlog."""

from __future__ import annotations

import os
import time

from hil.fabric import QUEUE_BYTES_MAX, Fabric


def test_a_board_that_does_not_read_loses_new_frames_whole_and_counted() -> None:
    """Past the end's bound a released frame is refused and counted; the frames ahead arrive."""
    fabric = Fabric(2, 0, seed=0, t0=time.monotonic())
    d = fabric.direction(0, 1)
    frame = b"\x01" * 1023 + b"\x00"
    board = os.open(fabric.ends[(1, 0)], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        sent = 0
        while d.stats.overflow_bytes == 0 and sent < 4 * QUEUE_BYTES_MAX // len(frame):
            fabric._deliver(d, frame)
            sent += 1
        assert len(frame) == d.stats.overflow_bytes  # the one refused frame, not the backlog
        assert 0 < d.sink.pending <= QUEUE_BYTES_MAX
        for _ in range(10):  # more frames while still full: each one refused and counted
            fabric._deliver(d, frame)
        assert 11 * len(frame) == d.stats.overflow_bytes
        want = (sent - 1) * frame  # every accepted frame, whole and in order
        got = bytearray()
        deadline = time.monotonic() + 10.0
        while len(got) < len(want) and time.monotonic() < deadline:
            d.sink.flush()
            try:
                got += os.read(board, 65536)
            except BlockingIOError:
                time.sleep(0.001)
        assert want == bytes(got)
    finally:
        os.close(board)
        fabric.close()
