"""The MAVLink output: the voted values as NAMED_VALUE_FLOAT, the board's health as HEARTBEAT
and STATUSTEXT, on a serial port (a flight controller's TELEM port, a radio) or over UDP.

Why these messages (docs/deploy.md, "Outputs"): NAMED_VALUE_FLOAT carries a
value under a name of up to 10 characters, so any number of channels go out
self-described, and every ground station shows and plots it (QGroundControl's
MAVLink Inspector, Mission Planner), PX4 logs it and an ArduPilot Lua script can
read it. DEBUG_VECT holds three values, DEBUG_FLOAT_ARRAY is not read by
ArduPilot, and the distance/altitude messages would give one channel a meaning
the vote does not know.

Each message's time_boot_ms is the tick's place on the cluster's time line
(tick × period, ms): the same on every board for the same tick, so a reader lines
up boards, and recovers the tick as round(time_boot_ms × tick_hz / 1000).

Health: a HEARTBEAT (MAV_TYPE_ONBOARD_CONTROLLER) once a second and whenever the
board starts or stops withholding: system_status ACTIVE while it publishes,
CRITICAL while it withholds; and a STATUSTEXT naming the change and its reason
(at most one a second; the heartbeat carries the state in between). A withheld
tick's values are not sent: a loyal board never publishes what it cannot vouch for.

pymavlink is used only to encode (its sans-I/O MAVLink class); the bytes are
written here, never blocking: a full serial buffer or socket drops the message
and counts it.
"""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any

from voter.bytelink import PortError, open_port
from voter.config import OutputConfig
from voter.core.record import DecisionRecord
from voter.output import OutputError
from voter.output_udp import udp_socket

#: MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID (not an autopilot)
MAV_TYPE_ONBOARD_CONTROLLER = 18
MAV_AUTOPILOT_INVALID = 8
#: MAV_STATE_ACTIVE: publishing; MAV_STATE_CRITICAL: withholding
MAV_STATE_ACTIVE = 4
MAV_STATE_CRITICAL = 5
#: MAV_SEVERITY_WARNING, MAV_SEVERITY_NOTICE
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5
HEARTBEAT_EVERY_S = 1.0
STATUSTEXT_EVERY_S = 1.0


def _mavlink_class() -> Any:
    """pymavlink's MAVLink 2 encoder for the common message set (the `mavlink` extra)."""
    try:
        from pymavlink.dialects.v20 import common
    except ImportError:
        raise OutputError("output.mavlink needs pymavlink: pip install 'voter[mavlink]'") from None
    return common.MAVLink


class _Transport:
    """Where the encoded bytes go: a connected UDP socket or a serial port, never blocking."""

    def __init__(self, url: str, baud: int) -> None:
        self.sock: socket.socket | None = None
        self.dest: tuple[str, int] = ("", 0)
        self.warnings: list[str] = []
        self.fd: int | None = None
        self.errors = 0
        if url.startswith("udp:"):
            self.sock, self.dest, self.warnings = udp_socket(
                url.removeprefix("udp:"), "output.mavlink"
            )
            return
        port_url = url.removeprefix("serial:")
        try:
            # write_timeout 0: pyserial never waits; the descriptor is written directly below.
            self.port = open_port(port_url, baud, write_timeout_s=0)
        except PortError as e:
            raise OutputError(f"output.mavlink: {e}") from None
        self.fd = self.port.fileno()

    def write(self, data: bytes) -> None:
        """One whole message, or nothing (a cut message would cost the reader a resync)."""
        try:
            if self.sock is not None:
                self.sock.sendto(data, self.dest)
                return
            assert self.fd is not None
            # pyserial's own non-blocking write spins on EAGAIN; os.write says it.
            if os.write(self.fd, data) != len(data):
                self.errors += 1
        except OSError:
            self.errors += 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        elif self.fd is not None:
            self.port.close()
            self.fd = None


class MavlinkOutput:
    """Sends the voted values and the board's health as MAVLink 2 messages."""

    def __init__(
        self, oc: OutputConfig, node: int, channels: tuple[str, ...], tick_hz: float
    ) -> None:
        mavlink = _mavlink_class()
        self.node = node
        self.tick_hz = tick_hz
        self.names = [n.encode() for n in (oc.mavlink_names or channels)]
        #: values go out every `every`-th tick: at most mavlink_hz per second
        self.every = max(1, round(tick_hz / oc.mavlink_hz))
        self.link = _Transport(oc.mavlink, oc.mavlink_baud)
        self.warnings = self.link.warnings
        self.mav = mavlink(
            self.link, srcSystem=oc.mavlink_system, srcComponent=oc.mavlink_component
        )
        self._heartbeat_at = -math.inf
        self._text_at = -math.inf
        self._publishing: bool | None = None
        #: the state the last STATUSTEXT told (None: nothing told yet)
        self._told: bool | None = None
        #: withheld ticks the texts have not told yet (the rate limit held them back)
        self._untold = 0
        self._untold_reason = ""

    @property
    def errors(self) -> int:
        return self.link.errors

    def time_ms(self, tick: int) -> int:
        """The tick on the cluster's time line, in ms (uint32, wraps after 49 days)."""
        return round(tick * 1000 / self.tick_hz) & 0xFFFFFFFF

    def decided(self, record: DecisionRecord, health: dict[str, Any]) -> None:
        ms = self.time_ms(record.tick)
        publishing = record.withheld is None
        if publishing and record.tick % self.every == 0 and isinstance(record.output, list):
            for name, value in zip(self.names, record.output, strict=False):
                if isinstance(value, int | float) and math.isfinite(value):
                    self.mav.named_value_float_send(ms, name, float(value))
        now = time.monotonic()
        changed = publishing != self._publishing
        self._publishing = publishing
        if changed or now - self._heartbeat_at >= HEARTBEAT_EVERY_S:
            status = MAV_STATE_ACTIVE if publishing else MAV_STATE_CRITICAL
            self.mav.heartbeat_send(
                MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, 0, 0, status
            )
            self._heartbeat_at = now
        if record.withheld is not None and self._told is not False:
            self._untold += 1
            self._untold_reason = record.withheld
        if (publishing != self._told or self._untold) and now - self._text_at >= STATUSTEXT_EVERY_S:
            self._status_text(record.tick, record.withheld)
            self._told, self._text_at = publishing, now

    def _status_text(self, tick: int, withheld: str | None) -> None:
        """The change since the last text; a short withholding the rate limit held back is
        still told (a board that withheld for 3 ticks between two texts says so)."""
        me = f"voter {self.node}"
        if withheld is not None:
            severity, text = SEVERITY_WARNING, f"{me}: withholding ({withheld})"
        elif self._untold:
            severity = SEVERITY_WARNING
            text = f"{me}: publishing, withheld {self._untold} ({self._untold_reason})"
        else:
            severity, text = SEVERITY_NOTICE, f"{me}: publishing at tick {tick}"
        self._untold, self._untold_reason = 0, ""
        self.mav.statustext_send(severity, text[:50].encode())

    def close(self) -> None:
        self.link.close()
