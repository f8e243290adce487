"""Serial links to the peers (I/O edge): pyserial ports, bulk reads, COBS frame splitting.

Ports are opened with `serial.serial_for_url` so a UART (/dev/ttyAMA1), a USB
adapter, a pseudo-terminal or `loop://` all work unchanged, and with
`exclusive=True` so a second daemon on the same port is refused. Reads take
whatever `in_waiting` holds and split on 0x00 ourselves: pyserial's
`read_until` reads one byte per call (measured ~8 ms per 256-byte frame).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import serial

from voter.core.drops import Drop
from voter.core.frame import Frame, FrameSplitter

READ_MAX = 65536


class LinkError(Exception):
    """A port that cannot be opened (busy, missing, no permission): one line for the user."""


class PortError(Exception):
    """A serial port that cannot be opened, as one line for the user (which port, why)."""


def open_port(url: str, baud: int, write_timeout_s: float | None) -> serial.SerialBase:
    """Open `url` exclusively, non-blocking reads, with stale input discarded.

    The one place ports are opened: board links, the HIL control line and the rig's
    link ports all want a busy port named as such rather than pyserial's errno text.
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


@dataclass
class Link:
    peer: int
    url: str
    port: serial.SerialBase
    splitter: FrameSplitter  #: this link's cluster: a frame from another one fails its CRC
    bytes_in: int = 0
    bytes_out: int = 0
    write_errors: int = 0
    read_errors: int = 0

    @classmethod
    def open(
        cls, peer: int, url: str, baud: int, cluster: str, write_timeout_s: float = 0.05
    ) -> Link:
        try:
            port = open_port(url, baud, write_timeout_s)
        except PortError as e:
            raise LinkError(f"link to node {peer}: {e}") from None
        return cls(peer, url, port, FrameSplitter(cluster))

    def fileno(self) -> int | None:
        try:
            return int(self.port.fileno())
        except (AttributeError, NotImplementedError, OSError, ValueError):
            return None  # loop:// and other URL handlers have no descriptor

    def read_frames(self) -> list[Frame | Drop]:
        """Everything that arrived since the last call, as frames and drops."""
        try:
            waiting = self.port.in_waiting
            data = self.port.read(min(max(waiting, 1), READ_MAX)) if waiting else b""
        except (serial.SerialException, OSError):
            self.read_errors += 1
            return []
        if not data:
            return []
        self.bytes_in += len(data)
        return self.splitter.feed(data)

    def write(self, data: bytes) -> bool:
        """Send bytes; a full or broken link is counted, never raised (the peer may be dead)."""
        try:
            self.port.write(data)
        except (serial.SerialException, serial.SerialTimeoutException, OSError):
            self.write_errors += 1
            return False
        self.bytes_out += len(data)
        return True

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()
