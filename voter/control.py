"""The HIL control channel over a serial port: framed commands in, the board's log lines out.

On real boards the rig cannot reach a unix socket or read the board's disk, so
`voterd --hil --control serial:PORT` takes the same JSON commands on a separate
UART and streams back every line it writes to its decision log. Both directions
use the links' framing (COBS + CRC-32C + 0x00: `voter.core.seal` and
`voter.core.splitter`) under the control line's own CRC domain, so line noise is
a counted drop and never a crash. One packet's payload:

    b"C" + JSON command                        rig -> board
    b"L" + 4-byte big-endian sequence + line   board -> rig (the exact log line, no newline)

The sequence number lets the rig count lines it lost; it restarts at 0 when the
board process restarts. Writes never block the tick loop: packets queue in a
bounded buffer that is written without blocking whenever the loop passes by (the
port's descriptor as a `voter.bytelink.FdLink`); a packet that does not fit is
dropped whole and counted, so the stream stays framed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from voter.bytelink import (
    ByteLink,
    LinkClosed,
    LinkFull,
    PortError,
    nonblocking_port_link,
    open_port,
)
from voter.core.drops import Drop
from voter.core.seal import seal_payload, unseal_payload
from voter.core.splitter import Splitter

#: The CRC domain of HIL control packets: never a cluster id, so a control packet
#: can never pass as a link frame (or back) on a miswired cable.
CONTROL_DOMAIN = "voter/hil-control"

SERIAL_PREFIX = "serial:"
KIND_COMMAND = b"C"
KIND_LINE = b"L"
#: bytes of log lines a board holds back for a slow rig before it drops lines (~4 s at 50 Hz)
OUT_BUFFER_MAX = 64 * 1024


class ControlPortError(Exception):
    """The control port cannot be opened (one line for the user)."""


def serial_port_of(control: str) -> str | None:
    """The port URL of a `serial:URL` control address, None for a unix socket path."""
    if control.startswith(SERIAL_PREFIX):
        return control[len(SERIAL_PREFIX) :]
    return None


def _control_payload(body: bytes | bytearray) -> bytes | Drop:
    return unseal_payload(body, CONTROL_DOMAIN)


def control_splitter() -> Splitter[bytes]:
    """The control line's splitter: each body is a packet payload of CONTROL_DOMAIN.

    Line noise costs the packet it hits (a counted Drop) and the splitter resyncs
    at the next 0x00, exactly as on a link.
    """
    return Splitter(_control_payload)


def command_packet(cmd: dict[str, Any]) -> bytes:
    return seal_payload(
        KIND_COMMAND + json.dumps(cmd, separators=(",", ":")).encode(), CONTROL_DOMAIN
    )


def line_packet(seq: int, line: str) -> bytes:
    return seal_payload(
        KIND_LINE + (seq & 0xFFFFFFFF).to_bytes(4, "big") + line.encode(), CONTROL_DOMAIN
    )


def parse_line_packet(payload: bytes) -> tuple[int, str] | None:
    """(sequence, line) of a board->rig packet, None if it is not one."""
    if len(payload) < 5 or payload[:1] != KIND_LINE:
        return None
    return int.from_bytes(payload[1:5], "big"), payload[5:].decode("utf-8", errors="replace")


def open_control_link(url: str, baud: int, out_max: int = OUT_BUFFER_MAX) -> ByteLink:
    """The port at `url` as a link whose writes never wait (they queue up to `out_max` bytes)."""
    try:
        port = open_port(url, baud, write_timeout_s=0)
    except PortError as e:
        raise ControlPortError(f"control line: {e}") from None
    return nonblocking_port_link(port, out_max)


@dataclass
class SerialControl:
    """One end of a control line: a board's (commands in, lines out) or, in reverse, the rig's."""

    url: str
    link: ByteLink
    splitter: Splitter[bytes] = field(default_factory=control_splitter)
    seq: int = 0
    lines_dropped: int = 0
    bad_packets: int = 0
    write_errors: int = 0
    read_errors: int = 0

    @classmethod
    def open(cls, url: str, baud: int, out_max: int = OUT_BUFFER_MAX) -> SerialControl:
        return cls(url, open_control_link(url, baud, out_max))

    def fileno(self) -> int | None:
        return self.link.fileno()

    # -- in ------------------------------------------------------------------------
    def read_payloads(self) -> list[bytes]:
        """Whole packets that arrived since the last call; noise is counted in `bad_packets`."""
        try:
            data = self.link.read()
        except LinkClosed:
            self.read_errors += 1
            return []
        out: list[bytes] = []
        for item in self.splitter.feed(data) if data else []:
            if isinstance(item, Drop):
                self.bad_packets += 1
            else:
                out.append(item)
        return out

    def read_commands(self) -> list[bytes]:
        """JSON command bodies (board side); packets of another kind count as bad."""
        cmds = []
        for p in self.read_payloads():
            if p[:1] == KIND_COMMAND:
                cmds.append(p[1:])
            else:
                self.bad_packets += 1
        return cmds

    # -- out -----------------------------------------------------------------------
    def send_line(self, line: str) -> None:
        """Queue one log line (board side); never blocks, never raises."""
        self.queue(line_packet(self.seq, line.rstrip("\n")))
        self.seq += 1

    def queue(self, packet: bytes) -> bool:
        """Queue a whole packet and write what the port takes; False if it was dropped."""
        try:
            self.link.write(packet)
        except LinkFull:
            self.lines_dropped += 1
            return False
        except LinkClosed:
            self.write_errors += 1
            self.lines_dropped += 1
            return False
        return True

    @property
    def pending(self) -> int:
        return self.link.pending

    def flush(self) -> None:
        """Write what the port takes now, without waiting."""
        try:
            self.link.flush()
        except LinkClosed:
            self.write_errors += 1
            self.lines_dropped += 1  # a broken port: its backlog is gone

    def drain(self, timeout_s: float) -> None:
        """Flush for at most `timeout_s` (before the process exits or re-executes)."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            self.flush()
            if self.pending:
                time.sleep(0.002)

    def close(self) -> None:
        self.link.close()
