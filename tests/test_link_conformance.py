"""Every ByteLink keeps the contract of voter/bytelink.py: one suite, run against each of them.

Real ptys and real pyserial, no mocks. Each case is a cable: `near` is the
implementation under test, `far` the other end (the same object for loop://,
which loops back to itself; a pty master for a pyserial port on the slave path).
"""

from __future__ import annotations

import random
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from voter.bytelink import (
    ByteLink,
    FdLink,
    LinkClosed,
    LinkFull,
    MemoryLink,
    SerialLink,
    memory_pair,
    open_pty,
    pty_pair,
)

BAUD = 921600
#: a write a pyserial port always takes whole while its reader keeps up (loop:// holds 4 KiB)
SERIAL_CHUNK = 1024
BIG = 64 * 1024


@dataclass
class Cable:
    near: ByteLink
    far: ByteLink
    #: the most one write may carry while the reader keeps up (a queueing link: anything)
    chunk: int

    @property
    def loopback(self) -> bool:
        return self.near is self.far


def _serial_pty() -> Cable:
    master, path = open_pty()
    return Cable(SerialLink.open(path, BAUD), master, SERIAL_CHUNK)


def _serial_loop() -> Cable:
    port = SerialLink.open("loop://", BAUD)
    return Cable(port, port, SERIAL_CHUNK)


def _fd_pty_pair() -> Cable:
    master, slave = pty_pair()
    return Cable(master, slave, BIG)


def _memory() -> Cable:
    a, b = memory_pair()
    return Cable(a, b, BIG)


MAKERS: dict[str, Callable[[], Cable]] = {
    "serial-pty": _serial_pty,
    "serial-loop": _serial_loop,
    "fd-pty-pair": _fd_pty_pair,
    "memory": _memory,
}


@pytest.fixture(params=sorted(MAKERS))
def cable(request: pytest.FixtureRequest) -> Iterator[Cable]:
    c = MAKERS[request.param]()
    yield c
    c.near.close()
    c.far.close()


def _wait_readable(link: ByteLink, timeout_s: float) -> None:
    fd = link.fileno()
    if fd is None:
        time.sleep(min(timeout_s, 0.001))
    else:
        select.select([fd], [], [], timeout_s)


def receive(src: ByteLink, dst: ByteLink, n: int, timeout_s: float = 5.0) -> bytes:
    """Read `dst` until `n` bytes came (flushing `src`'s queue meanwhile) or the time is up."""
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        src.flush()
        got += dst.read()
        if len(got) < n:
            _wait_readable(dst, 0.01)
    return bytes(got)


def drain(src: ByteLink, dst: ByteLink, quiet_s: float = 0.2) -> bytes:
    """Everything `dst` gets until nothing came for `quiet_s`."""
    got = bytearray()
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        src.flush()
        data = dst.read()
        if data:
            got += data
            last = time.monotonic()
        else:
            _wait_readable(dst, 0.005)
    return bytes(got)


def directions(c: Cable) -> list[tuple[ByteLink, ByteLink]]:
    return [(c.near, c.far)] if c.loopback else [(c.near, c.far), (c.far, c.near)]


def test_bytes_written_arrive_in_order(cable: Cable) -> None:
    """Writes arrive in the order they were made, none lost, none doubled, both ways."""
    for src, dst in directions(cable):
        sent = [bytes([k]) * (k + 1) for k in range(40)]
        for piece in sent:
            src.write(piece)
        want = b"".join(sent)
        assert want == receive(src, dst, len(want))


def test_a_read_returns_what_arrived_so_far(cable: Cable) -> None:
    """A read does not wait for more: a reader reassembles the stream from partial reads."""
    src, dst = cable.near, cable.far
    src.write(b"hello ")
    assert b"hello " == receive(src, dst, 6)
    src.write(b"world")
    assert b"world" == receive(src, dst, 5)


def test_read_on_an_empty_link_returns_no_bytes(cable: Cable) -> None:
    for src, dst in directions(cable):
        assert b"" == dst.read()
        src.flush()
        assert b"" == dst.read()


def test_close_then_write_or_read_raises_link_closed(cable: Cable) -> None:
    """A closed end refuses both directions, says so, and may be closed again."""
    cable.near.close()
    with pytest.raises(LinkClosed):
        cable.near.write(b"x")
    with pytest.raises(LinkClosed):
        cable.near.read()
    assert cable.near.fileno() is None
    cable.near.close()


def test_the_peers_close_is_seen(cable: Cable) -> None:
    """Once the far end closes, a near read raises LinkClosed (after what was in flight)."""
    if cable.loopback:
        pytest.skip("loop:// has no peer")
    cable.far.close()
    deadline = time.monotonic() + 2.0
    with pytest.raises(LinkClosed):
        while time.monotonic() < deadline:
            cable.near.read()
            _wait_readable(cable.near, 0.01)


def test_a_full_link_refuses_a_write_and_keeps_what_it_took(cable: Cable) -> None:
    """Nobody reads: writes end in LinkFull; what was accepted before still arrives, in order.

    A queueing link refuses the write whole; a pyserial port may have sent a head of
    it before its write timeout (`lost` bounds the rest).
    """
    chunk = bytes(range(256)) * 4
    accepted = bytearray()
    full: LinkFull | None = None
    piece = b""
    for k in range(8192):  # 8 MiB: more than any link here holds
        piece = bytes([k % 251]) + chunk[1:]
        try:
            cable.near.write(piece)
        except LinkFull as e:
            full = e
            break
        accepted += piece
    assert full is not None, "8 MiB went into a link nobody reads"
    assert 0 < full.lost <= len(chunk)
    got = drain(cable.near, cable.far)
    assert got.startswith(bytes(accepted))
    assert (bytes(accepted) + piece).startswith(got)  # at most a head of the refused write
    if isinstance(cable.near, (FdLink, MemoryLink)):
        assert got == bytes(accepted) and full.lost == len(chunk)
    cable.near.write(b"after")  # room again once the reader caught up
    assert b"after" == receive(cable.near, cable.far, 5)


def test_fileno_works_with_select(cable: Cable) -> None:
    """Where an end has a descriptor, select(2) says when there is something to read."""
    checked = 0
    for src, dst in directions(cable):
        fd = dst.fileno()
        if fd is None:
            assert isinstance(dst, (MemoryLink, SerialLink))  # loop:// has none either
            continue
        assert ([], [], []) == select.select([fd], [], [], 0)
        src.write(b"x")
        src.flush()
        ready, _, _ = select.select([fd], [], [], 2.0)
        assert [fd] == ready
        assert b"x" == dst.read()
        checked += 1
    if not checked:
        pytest.skip("no descriptor (memory, loop://): such a link is polled")


def test_a_64_kib_write_arrives_intact(cable: Cable) -> None:
    """64 KiB of random bytes, in one write where the link queues, arrive exactly."""
    data = random.Random(7).randbytes(BIG)
    got = bytearray()
    for k in range(0, BIG, cable.chunk):
        piece = data[k : k + cable.chunk]
        cable.near.write(piece)
        got += receive(cable.near, cable.far, len(piece) if cable.chunk < BIG else 0, 5.0)
    got += receive(cable.near, cable.far, BIG - len(got), 10.0)
    assert len(data) == len(got)
    assert data == bytes(got)
