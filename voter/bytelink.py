"""One byte-link interface and its implementations: a serial port, a raw descriptor (pty), memory.

A `ByteLink` moves bytes from one end to the other and nothing else: no framing
(`voter.links.Link` splits frames on top of one), no faults (`hil.channel`), no
clock. The daemon's links, the HIL control line, the fabric's and the null-modem's
pty ends and the simulator's board ends all sit on one, so a newcomer learns one
contract, and tests/test_link_conformance.py checks every implementation against it:

- `write(data)`: the bytes go out after everything accepted before, in order, or
  it raises. `LinkFull(lost)`: no room now; at most `lost` bytes of this write do
  not go out (all of them where the link queues: a frame is refused whole and the
  backlog kept, so the stream loses whole writes, never their middles). `LinkClosed`:
  this end is closed or the line is gone. A write never waits longer than the
  port's write timeout (links that queue never wait).
- `flush()`: write queued bytes the line takes now, without waiting (nothing to do
  for a link that queues nothing of its own); `LinkClosed` if the line broke, with
  the queued bytes lost.
- `read()`: whatever arrived, b"" if nothing; never waits. `LinkClosed` once this
  end is closed, or the peer closed its end (bytes it sent before may be read first).
- `fileno()`: a descriptor for select(2), None where there is none (loop://, memory).
- `close()`: idempotent.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tty
from collections.abc import Callable
from typing import Protocol

import serial

#: most bytes one read returns: a link's whole backlog at 921600 baud for ~0.7 s
READ_MAX = 65536
#: bytes a queueing link holds for a slow line before it refuses writes
OUTBOX_MAX = 64 * 1024


class LinkClosed(Exception):
    """This end is closed, or the line is gone (peer hung up, device unplugged)."""

    def __init__(self, lost: int = 0) -> None:
        super().__init__(f"link closed ({lost} bytes lost)")
        self.lost = lost


class LinkFull(Exception):
    """No room on the link: at most `lost` bytes of the write did not go out."""

    def __init__(self, lost: int) -> None:
        super().__init__(f"link full ({lost} bytes lost)")
        self.lost = lost


class PortError(Exception):
    """A serial port that cannot be opened, as one line for the user (which port, why)."""


class ByteLink(Protocol):
    """Bytes in order from one end to the other; the contract is in the module docstring."""

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def read(self) -> bytes: ...

    def fileno(self) -> int | None: ...

    def close(self) -> None: ...

    @property
    def pending(self) -> int:
        """Bytes accepted but not yet handed to the line (0 for links that queue nothing)."""
        ...


# -- serial ports (pyserial) --------------------------------------------------------------
def open_port(url: str, baud: int, write_timeout_s: float | None) -> serial.SerialBase:
    """Open `url` exclusively, non-blocking reads, with stale input discarded.

    The one place ports are opened: board links, the HIL control line and the rig's
    link ports all want a busy port named as such rather than pyserial's errno text.
    `serial_for_url` makes a UART, a USB adapter, a pty path and `loop://` alike.
    """
    try:
        port = serial.serial_for_url(
            url,
            baudrate=baud,
            timeout=0,
            write_timeout=write_timeout_s,
            exclusive=True,
            do_not_open=True,
        )
        port.open()
    except serial.SerialException as e:
        msg = str(e)
        if "lock" in msg.lower() or "busy" in msg.lower() or "Resource temporarily" in msg:
            raise PortError(f"port {url} is busy (another process has it)") from None
        raise PortError(f"cannot open {url}: {msg}") from None
    except (ValueError, OSError) as e:
        raise PortError(f"cannot open {url}: {e}") from None
    with contextlib.suppress(serial.SerialException, OSError):
        port.reset_input_buffer()
    return port


def _close_port(port: serial.SerialBase) -> None:
    with contextlib.suppress(serial.SerialException, OSError):
        port.close()


def _port_fd(port: serial.SerialBase) -> int | None:
    try:
        return int(port.fileno())
    except (AttributeError, NotImplementedError, OSError, ValueError, serial.SerialException):
        return None  # loop:// and other URL handlers have no descriptor; a closed port neither


class SerialLink:
    """A pyserial port: writes go straight to the driver (up to its write timeout), nothing queued.

    Reads take whatever `in_waiting` holds: pyserial's `read_until` reads one byte
    per call (measured ~8 ms per 256-byte frame).
    """

    pending = 0

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port

    @classmethod
    def open(cls, url: str, baud: int, write_timeout_s: float | None = 0.05) -> SerialLink:
        return cls(open_port(url, baud, write_timeout_s))

    def write(self, data: bytes) -> None:
        if not self.port.is_open:
            raise LinkClosed(len(data))
        try:
            n = self.port.write(data)
        except (serial.SerialTimeoutException, queue.Full):
            # pyserial does not say how much went out before the timeout (loop:// raises
            # queue.Full from its bounded queue): all of it, at most
            raise LinkFull(len(data)) from None
        except (serial.SerialException, OSError):
            raise LinkClosed(len(data)) from None
        if n is not None and n < len(data):  # a non-blocking port (write timeout 0)
            raise LinkFull(len(data) - n)

    def flush(self) -> None:
        """Nothing is queued here (pyserial's own flush would wait for the wire: not wanted)."""

    def read(self) -> bytes:
        if not self.port.is_open:
            raise LinkClosed()
        try:
            waiting = self.port.in_waiting
            # With nothing waiting, a 1-byte read (timeout 0) is how a hung-up peer shows.
            data = self.port.read(min(max(waiting, 1), READ_MAX))
        except (serial.SerialException, OSError):
            raise LinkClosed() from None
        return bytes(data)

    def fileno(self) -> int | None:
        return _port_fd(self.port)

    def close(self) -> None:
        _close_port(self.port)


# -- raw descriptors (pty ends, a serial port's fd) -------------------------------------
class FdLink:
    """A non-blocking descriptor with a bounded outbox: writes never wait, a full one refuses.

    Used where this process stands for the copper (the fabric's and the null-modem's
    pty masters, a serial rig's ports) or must never block (the control line):
    what the line does not take now waits in the outbox and goes on `flush()`.
    """

    def __init__(
        self, fd: int, outbox_max: int = OUTBOX_MAX, on_close: Callable[[], None] | None = None
    ) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self._out = bytearray()
        self.outbox_max = outbox_max
        self._on_close = on_close

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise LinkClosed(len(data))
        if len(self._out) + len(data) > self.outbox_max:
            raise LinkFull(len(data))  # refused whole: the backlog ahead still goes out
        self._out += data
        self.flush()

    def flush(self) -> None:
        if self._fd is None:
            raise LinkClosed(len(self._out))
        if not self._out:
            return
        try:
            n = os.write(self._fd, self._out)
        except BlockingIOError:
            return
        except OSError:
            lost = len(self._out)
            self._out.clear()  # a broken line: keep no backlog
            raise LinkClosed(lost) from None
        del self._out[:n]

    @property
    def pending(self) -> int:
        return len(self._out)

    def read(self) -> bytes:
        if self._fd is None:
            raise LinkClosed()
        try:
            data = os.read(self._fd, READ_MAX)
        except BlockingIOError:
            return b""
        except OSError:
            raise LinkClosed() from None  # EIO: a pty whose other side hung up
        if not data:
            raise LinkClosed()  # end of file: the other side closed
        return data

    def fileno(self) -> int | None:
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._on_close is not None:
            self._on_close()
        else:
            with contextlib.suppress(OSError):
                os.close(fd)


def nonblocking_port_link(port: serial.SerialBase, outbox_max: int = OUTBOX_MAX) -> ByteLink:
    """An open port as a link that never blocks: an FdLink on its descriptor (closing the port).

    A port without a descriptor (loop://) stays a SerialLink: it does not block
    either, but pyserial's loop:// with write timeout 0 refuses every write (LinkFull).
    """
    fd = _port_fd(port)
    if fd is None:
        return SerialLink(port)
    return FdLink(fd, outbox_max, on_close=lambda: _close_port(port))


def open_pty(outbox_max: int = OUTBOX_MAX) -> tuple[FdLink, str]:
    """A new pty: this process's link on its master, and the tty path a board opens.

    The slave is set raw (no echo or line editing before a port opens it) and held
    open until the link closes, so the board at that end can die and reopen the path.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)

    def close_both() -> None:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    return FdLink(master, outbox_max, on_close=close_both), path


def pty_pair(outbox_max: int = OUTBOX_MAX) -> tuple[FdLink, FdLink]:
    """Both sides of one pty (master, raw slave) as links: a cable within one process."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return FdLink(master, outbox_max), FdLink(slave, outbox_max)


# -- memory (the simulator) ---------------------------------------------------------------
class MemoryLink:
    """One end of an in-memory cable; `memory_pair()` makes both. Bounded, never waits."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.inbox = bytearray()
        self.peer: MemoryLink | None = None
        self.closed = False

    pending = 0  # a write lands in the peer's inbox at once

    def write(self, data: bytes) -> None:
        peer = self.peer
        if self.closed or peer is None or peer.closed:
            raise LinkClosed(len(data))
        if len(peer.inbox) + len(data) > self.capacity:
            raise LinkFull(len(data))
        peer.inbox += data

    def flush(self) -> None:
        if self.closed:
            raise LinkClosed()

    def read(self) -> bytes:
        if self.closed:
            raise LinkClosed()
        if self.inbox:
            data = bytes(self.inbox)
            self.inbox.clear()
            return data
        if self.peer is None or self.peer.closed:
            raise LinkClosed()
        return b""

    def fileno(self) -> int | None:
        return None

    def close(self) -> None:
        self.closed = True
        self.inbox.clear()


def memory_pair(capacity: int = 1 << 20) -> tuple[MemoryLink, MemoryLink]:
    """Two joined ends; each holds at most `capacity` unread bytes."""
    a, b = MemoryLink(capacity), MemoryLink(capacity)
    a.peer, b.peer = b, a
    return a, b
