"""Readings from a flight controller's MAVLink stream on a serial port (pymavlink's parser only).

Each channel names one numeric field of one message, `"ATTITUDE.pitch"`, times an optional
scale. Every tick reads what the port holds (non-blocking, at most `MAX_BYTES_PER_TICK`),
parses it with pymavlink's sans-I/O parser (robust parsing: a CRC failure is a counted
bad-data message, not an exception) and keeps the latest value of each channel; a value older
than `stale_ticks` is None. A port that fails mid-run (USB flight controller unplugged) is
counted and reopened about once a second, never an exception. pymavlink's `mavutil` is not
used: it mixes every transport; pyserial's `serial_for_url` already gives us ports.

Only this module imports pymavlink (the `mavlink` extra); without it, opening a MAVLink
sensor is one line naming the install command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import serial

from voter.sensors import Reading, SensorError

#: ~90 ms of a 115200 baud line: the most parsing one tick does (the rest waits in the OS buffer)
MAX_BYTES_PER_TICK = 1024
INSTALL_HINT = "pip install 'voter[mavlink]'"
_NUMERIC = {
    "float", "double", "int8_t", "uint8_t", "int16_t", "uint16_t",
    "int32_t", "uint32_t", "int64_t", "uint64_t", "uint8_t_mavlink_version",
}  # fmt: skip


def _dialect() -> Any:
    """The ardupilotmega dialect: common plus ArduPilot's own messages, MAVLink 1 and 2."""
    try:
        from pymavlink.dialects.v20 import ardupilotmega
    except ImportError:
        raise SensorError(f'sensor kind "mavlink" needs pymavlink: {INSTALL_HINT}') from None
    return ardupilotmega


def parse_channels(dialect: Any, channels: Sequence[str]) -> list[tuple[str, str]]:
    """`"MESSAGE.field"` -> (MESSAGE, field), checked against the dialect (numeric scalars only)."""
    by_name = {cls.msgname: cls for cls in dialect.mavlink_map.values()}
    out: list[tuple[str, str]] = []
    for ch in channels:
        msg, _, field = ch.partition(".")
        cls = by_name.get(msg)
        if cls is None:
            raise SensorError(f"MAVLink channel {ch!r}: no message {msg!r} (e.g. ATTITUDE.pitch)")
        types = dict(zip(cls.fieldnames, cls.fieldtypes, strict=True))
        lengths = dict(zip(cls.ordered_fieldnames, cls.array_lengths, strict=True))
        if field not in types:
            raise SensorError(
                f"MAVLink channel {ch!r}: {msg} has no field {field!r} "
                f"(fields: {', '.join(cls.fieldnames)})"
            )
        if types[field] not in _NUMERIC or lengths[field]:
            raise SensorError(f"MAVLink channel {ch!r}: {types[field]} field, not a number")
        out.append((msg, field))
    return out


def _open(port: str, baud: int) -> serial.SerialBase:
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=0)
    except (serial.SerialException, OSError, ValueError) as e:
        raise SensorError(f"cannot open MAVLink port {port}: {e}") from None


class MavlinkSensor:
    """The latest value of each channel from one MAVLink stream."""

    def __init__(
        self,
        port: str,
        channels: Sequence[str],
        *,
        baud: int = 57600,
        scale: Sequence[float] | None = None,
        stale_ticks: int = 25,
        reopen_ticks: int = 50,
        sysid: int = 0,
    ) -> None:
        dialect = _dialect()
        fields = parse_channels(dialect, channels)
        scale = list(scale) if scale is not None else [1.0] * len(fields)
        self.channels = len(fields)
        self.port_name, self.baud = port, baud
        self.stale_ticks, self.reopen_ticks, self.sysid = stale_ticks, reopen_ticks, sysid
        #: message name -> (channel index, field, scale) for every channel fed by it
        self.wanted: dict[str, list[tuple[int, str, float]]] = {}
        for i, ((msg, field), k) in enumerate(zip(fields, scale, strict=True)):
            self.wanted.setdefault(msg, []).append((i, field, k))
        self.messages = 0  # parsed messages of any type
        self.bad = 0  # bytes pymavlink could not parse (CRC, framing)
        self.errors = 0  # port failures
        self._latest: list[tuple[float | None, int]] = [(None, -(10**9))] * self.channels
        self._parser = dialect.MAVLink(None)
        self._parser.robust_parsing = True
        self._port: serial.SerialBase | None = _open(port, baud)
        self._retry_at = 0

    def read(self, tick: int) -> Reading | None:
        for msg in self._parser.parse_buffer(self._receive(tick)) or ():
            self._take(msg, tick)
        values = tuple(v if tick - at <= self.stale_ticks else None for v, at in self._latest)
        return None if all(v is None for v in values) else values

    def _receive(self, tick: int) -> bytes:
        if self._port is None:
            if tick < self._retry_at:
                return b""
            try:
                self._port = _open(self.port_name, self.baud)
            except SensorError:
                self._retry_at = tick + self.reopen_ticks
                return b""
        try:
            return bytes(self._port.read(MAX_BYTES_PER_TICK))
        except (serial.SerialException, OSError):
            self.errors += 1
            self._port.close()
            self._port, self._retry_at = None, tick + self.reopen_ticks
            return b""

    def _take(self, msg: Any, tick: int) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA":
            self.bad += 1
            return
        self.messages += 1
        if self.sysid and msg.get_srcSystem() != self.sysid:
            return
        for i, field, k in self.wanted.get(kind, ()):
            value = getattr(msg, field, None)
            if isinstance(value, int | float) and math.isfinite(value * k):
                self._latest[i] = (float(value) * k, tick)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None
