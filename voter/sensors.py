"""Where a board's reading comes from each tick: simulated, CSV replay, an external process,
a Linux IIO device (voter.sensor_iio) or a flight controller's MAVLink stream
(voter.sensor_mavlink).

A missing reading is ERROR (None) or a None channel, never 0. Sources sit at the
I/O edge (they may read files and sockets); the agreement core only sees values.
Set-up problems are a SensorError (one line, before the board ticks); a failure
while running is a missing reading, counted by the source, never an exception.
"""

from __future__ import annotations

import _random
import contextlib
import csv
import hashlib
import json
import math
import os
import random
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

Reading = tuple[float | None, ...]


class SensorError(Exception):
    """A sensor source that cannot be set up (one line for the user)."""


class SensorSource(Protocol):
    channels: int

    def read(self, tick: int) -> Reading | None:
        """The reading sampled at `tick`; None when there is none (ERROR)."""
        ...

    def close(self) -> None: ...


def _seed(rng: _random.Random, text: str) -> None:
    """Give `rng` the state of `random.Random(text)`: random.py's seeding of a str (version 2:
    the text and its SHA-512 as one integer), without random.py's Python-level `__init__`
    and `seed`, which were most of a compiled sensor read."""
    raw = text.encode()
    rng.seed(int.from_bytes(raw + hashlib.sha512(raw).digest()))


def _normals(rng: _random.Random, count: int) -> list[float]:
    """`count` successive `rng.gauss(0.0, 1.0)` draws of a freshly seeded generator, in
    `random.gauss`'s own arithmetic (Box-Muller pairs, the sine kept for the next draw).

    The same floats, so the same readings and history hashes, without a Python call per
    channel: the sensor was ~1/10 of a simulated tick once the core was compiled.
    """
    out: list[float] = []
    draw = rng.random
    while len(out) < count:
        x2pi = draw() * _TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - draw()))
        out.append(math.cos(x2pi) * g2rad)
        out.append(math.sin(x2pi) * g2rad)
    return out[:count]


_TWOPI = 2.0 * math.pi


class SimSensor:
    """A small air-data model: altitude, airspeed, pitch (and more channels as slow sines).

    Deterministic from (seed, tick): every board sees the same physical truth;
    each board adds its own noise, bias and slow drift from (seed, node). Sensor faults
    (stuck, spike, dropout) are applied on top by the HIL fault layer
    (voter.faults.FaultState.corrupt_reading), for any source.
    """

    def __init__(self, channels: int, node: int, seed: int = 0, period_s: float = 0.02) -> None:
        self.channels = channels
        self.node = node
        self.seed = seed
        self.period_s = period_s
        rng = random.Random(f"{seed}/{node}/bias")
        self.bias = [rng.gauss(0.0, 0.05) for _ in range(channels)]
        # each board's sensor also wanders off slowly (units per second), as real ones do
        self.drift = [rng.gauss(0.0, 0.002) for _ in range(channels)]
        self.noise = [0.5, 0.2, 0.05] + [0.01] * max(0, channels - 3)
        self._rng = _random.Random()  # re-seeded for every read (`_seed`)

    def truth(self, tick: int) -> list[float]:
        t = tick * self.period_s
        base = [
            1000.0 + 50.0 * math.sin(t / 20.0),  # altitude, m
            60.0 + 5.0 * math.sin(t / 7.0),  # airspeed, m/s
            2.0 + 3.0 * math.sin(t / 3.0),  # pitch, deg
        ]
        base += [math.sin(t / (5.0 + i)) for i in range(max(0, self.channels - 3))]
        return base[: self.channels]

    def read(self, tick: int) -> Reading | None:
        _seed(self._rng, f"{self.seed}/{self.node}/{tick}")
        t = tick * self.period_s
        z = _normals(self._rng, self.channels)
        values = [
            round(x + b + d * t + (0.0 + zi * n), 4)  # `rng.gauss(0.0, n)`: mu + z * sigma
            for x, b, d, n, zi in zip(
                self.truth(tick), self.bias, self.drift, self.noise, z, strict=True
            )
        ]
        return tuple(values)

    def close(self) -> None:
        pass


class CsvSensor:
    """Replays a CSV file: a header of channel names, optionally a first column `tick`.

    With a `tick` column the row of that tick is used (no row = ERROR); without
    one the rows are replayed in a loop. An empty cell is a missing channel.
    """

    def __init__(self, path: Path, channels: int) -> None:
        self.channels = channels
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except OSError as e:
            raise SensorError(f"cannot read sensor CSV {path}: {e.strerror}") from None
        if len(rows) < 2:
            raise SensorError(f"sensor CSV {path} has no data rows")
        header = rows[0]
        self.by_tick: dict[int, Reading] | None = None
        data_cols = header[1:] if header and header[0] == "tick" else header
        if len(data_cols) != channels:
            raise SensorError(
                f"sensor CSV {path} has {len(data_cols)} channels, config has {channels}"
            )
        parsed: list[tuple[int | None, Reading]] = []
        for n, row in enumerate(rows[1:], start=2):
            try:
                if header[0] == "tick":
                    parsed.append((int(row[0]), tuple(_cell(c) for c in row[1:])))
                else:
                    parsed.append((None, tuple(_cell(c) for c in row)))
            except (ValueError, IndexError):
                raise SensorError(f"sensor CSV {path} line {n}: not numbers") from None
            if len(parsed[-1][1]) != channels:
                raise SensorError(f"sensor CSV {path} line {n}: expected {channels} values")
        if header[0] == "tick":
            self.by_tick = {t: r for t, r in parsed if t is not None}
        self.rows = [r for _, r in parsed]

    def read(self, tick: int) -> Reading | None:
        if self.by_tick is not None:
            return self.by_tick.get(tick)
        return self.rows[tick % len(self.rows)]

    def close(self) -> None:
        pass


def _cell(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    x = float(text)
    return x if math.isfinite(x) else None


class SocketSensor:
    """An external process feeds readings as JSON datagrams on a unix socket we bind.

    Datagram: `{"values": [..]}` (null for a missing channel). The latest one is
    used until it is older than `stale_ticks`; after that the reading is ERROR.
    Malformed datagrams are counted and ignored.
    """

    def __init__(self, path: Path, channels: int, stale_ticks: int = 5) -> None:
        self.channels = channels
        self.stale_ticks = stale_ticks
        self.path = path
        self.bad = 0
        self._latest: Reading | None = None
        self._latest_tick = -(10**9)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if path.exists():
                path.unlink()
            self._sock.bind(str(path))
        except OSError as e:
            self._sock.close()
            raise SensorError(f"cannot bind sensor socket {path}: {e.strerror}") from None
        self._sock.setblocking(False)

    def read(self, tick: int) -> Reading | None:
        while True:
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                break
            reading = self._parse(data)
            if reading is None:
                self.bad += 1
            else:
                self._latest, self._latest_tick = reading, tick
        if tick - self._latest_tick > self.stale_ticks:
            return None
        return self._latest

    def _parse(self, data: bytes) -> Reading | None:
        try:
            msg = json.loads(data)
            values = msg["values"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(values, list) or len(values) != self.channels:
            return None
        out: list[float | None] = []
        for v in values:
            if v is None:
                out.append(None)
            elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out.append(float(v))
            else:
                return None
        return tuple(out)

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def open_sensor(
    spec: Mapping[str, Any], channels: int, node: int, period_s: float, base: Path
) -> SensorSource:
    """Build the source a node's config names (`sensor = {kind = ...}`, checked by voter.config)."""
    kind = spec.get("kind", "sim")
    if kind == "sim":
        return SimSensor(channels, node, int(spec.get("seed", 0)), period_s)
    if kind == "csv":
        return CsvSensor(base / str(spec["path"]), channels)
    if kind == "socket":
        return SocketSensor(base / str(spec["path"]), channels, int(spec.get("stale_ticks", 5)))
    names = [str(c) for c in spec.get("channels", [])]
    if len(names) != channels:
        raise SensorError(f"{kind} sensor names {len(names)} channels, the cluster has {channels}")
    scale = [float(k) for k in spec.get("scale", [1.0] * channels)]
    if kind == "iio":
        from voter.sensor_iio import IIO_ROOT, IioSensor, find_device, open_channels

        folder = find_device(base / str(spec.get("root", IIO_ROOT)), str(spec["device"]))
        stale_s = float(spec.get("stale_ms", 5000 * period_s)) / 1000
        return IioSensor(open_channels(folder, names, scale), period_s, stale_s).start()
    if kind == "mavlink":
        from voter.sensor_mavlink import MavlinkSensor

        stale_ticks = math.ceil(float(spec.get("stale_ms", 500)) / 1000 / period_s)
        return MavlinkSensor(
            str(spec["port"]),
            names,
            baud=int(spec.get("baud", 57600)),
            scale=scale,
            stale_ticks=max(1, stale_ticks),
            reopen_ticks=max(1, round(1 / period_s)),
            sysid=int(spec.get("sysid", 0)),
        )
    raise SensorError(f"unknown sensor kind {kind!r} (sim, csv, socket, iio, mavlink)")
