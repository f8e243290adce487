"""Null-modem cables: what one end's user writes comes out at the other end, both ways."""

from __future__ import annotations

import os
import threading
import time

from hil.nullmodem import Cables


def _read(fd: int, n: int, timeout_s: float = 5.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.001)
    return bytes(got)


def test_a_cable_carries_bytes_both_ways_in_order() -> None:
    cables = Cables(2)
    server = threading.Thread(target=cables.serve, daemon=True)
    a_path, b_path = cables.ends[1]
    a = os.open(a_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    b = os.open(b_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        server.start()
        data = bytes(range(256)) * 16
        os.write(a, data)
        assert data == _read(b, len(data))
        os.write(b, b"back")
        assert b"back" == _read(a, 4)
        assert 0 == cables.dropped
    finally:
        cables.stop()
        server.join(timeout=5)
        os.close(a)
        os.close(b)
        cables.close()


def test_an_end_nobody_reads_drops_what_does_not_fit_and_counts_it() -> None:
    """Past the end's buffer, whole reads are dropped and counted; the writer never blocks."""
    cables = Cables(1)
    a_path, _ = cables.ends[0]
    a = os.open(a_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    server = threading.Thread(target=cables.serve, daemon=True)
    try:
        server.start()
        deadline = time.monotonic() + 10.0
        while cables.dropped == 0 and time.monotonic() < deadline:
            try:
                os.write(a, b"x" * 1024)
            except BlockingIOError:
                time.sleep(0.001)
        assert cables.dropped > 0
    finally:
        cables.stop()
        server.join(timeout=5)
        os.close(a)
        cables.close()
