"""Linux IIO sensors read through sysfs: barometers, IMUs, ADCs, rangefinders with a kernel driver.

The kernel ABI (Documentation/ABI/testing/sysfs-bus-iio) gives each channel either a
processed `in_<chan>_input` (already in the ABI's units) or `in_<chan>_raw` plus an optional
`in_<chan>_scale`/`in_<type>_scale` and `_offset`: value = (raw + offset) * scale.
Everything that can be wrong with the device or a channel is found when the source opens
(one line). After that, a file that cannot be read is a missing channel (None), counted in
`errors`, never an exception: a loose I2C wire must not stop the board.

A sysfs read is a bus transaction in the driver (I2C: ~0.5 ms; a sensor in forced mode or
waking from runtime suspend: tens of ms), so the files are read on a thread of their own at
the tick rate and `read()` hands over the latest sample, or None once it is older than
`stale_s`. The tick loop never waits for the bus.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voter.sensors import Reading, SensorError

IIO_ROOT = Path("/sys/bus/iio/devices")
_CHANNEL_FILE_RE = re.compile(r"in_(.+)_(raw|input)")
_TYPE_RE = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class IioChannel:
    """One channel's value file and the conversion the kernel tells us to apply to it."""

    path: Path
    scale: float  # kernel scale times the config's own `scale` for this channel
    offset: float  # kernel offset (raw units); 0 for a processed `_input` file


def find_device(root: Path, device: str) -> Path:
    """The device folder: `iio:deviceN` (or any folder under root), a path, or a `name`/`label`.

    Numbers (`iio:device0`) follow probe order and can change across boots; the driver's
    `name` (e.g. "bmp280") or a device-tree `label` stays, so that is what configs should use.
    """
    by_folder = root / device
    if device and by_folder.is_dir():
        return by_folder
    if "/" in device:
        raise SensorError(f"IIO device {device} is not a folder")
    if not root.is_dir():
        raise SensorError(
            f"no IIO device {device!r}: {root} does not exist (no IIO driver loaded? "
            "docs/deploy.md, Sensors)"
        )
    found: list[tuple[Path, list[str]]] = []
    for folder in sorted(p for p in _listdir(root) if p.is_dir()):
        names = [n for n in (_read_text(folder / "name"), _read_text(folder / "label")) if n]
        found.append((folder, names))
    matches = [folder for folder, names in found if device in names]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        folders_s = ", ".join(m.name for m in matches)
        raise SensorError(
            f"{len(matches)} IIO devices are named {device!r} ({folders_s}); "
            f'name one by its folder, e.g. device = "{matches[0].name}"'
        )
    have = ", ".join(f"{f.name} = {'/'.join(n) or '?'}" for f, n in found) or "none"
    raise SensorError(f"no IIO device {device!r} under {root} (devices: {have})")


def open_channels(
    folder: Path, channels: Sequence[str], user_scale: Sequence[float]
) -> list[IioChannel]:
    """Each named channel's value file and conversion; SensorError naming what is there."""
    out: list[IioChannel] = []
    for name, k in zip(channels, user_scale, strict=True):
        chan = name.removeprefix("in_")
        processed, raw = folder / f"in_{chan}_input", folder / f"in_{chan}_raw"
        if processed.is_file():
            out.append(IioChannel(processed, k, 0.0))
        elif raw.is_file():
            kind = _TYPE_RE.match(chan)
            prefixes = [f"in_{chan}"] + ([f"in_{kind.group()}"] if kind else [])
            scale = _attribute(folder, prefixes, "scale", 1.0)
            offset = _attribute(folder, prefixes, "offset", 0.0)
            out.append(IioChannel(raw, scale * k, offset))
        else:
            files = (_CHANNEL_FILE_RE.fullmatch(p.name) for p in _listdir(folder))
            have = sorted({m.group(1) for m in files if m})
            raise SensorError(
                f"IIO device {folder} has no channel {chan!r} (no in_{chan}_input or "
                f"in_{chan}_raw; channels: {', '.join(have) or 'none'})"
            )
    return out


def _attribute(folder: Path, prefixes: list[str], what: str, default: float) -> float:
    """The channel's own `_scale`/`_offset`, else the one its type shares, else the default."""
    for prefix in prefixes:
        path = folder / f"{prefix}_{what}"
        if path.exists():
            text = _read_text(path)
            try:
                value = float(text or "")
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise SensorError(f"IIO {path} is not a number: {text!r}")
            return value
    return default


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as e:
        raise SensorError(f"cannot list IIO folder {folder}: {e.strerror}") from None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


class IioSensor:
    """The latest sample of some IIO channels, taken on a thread at the tick rate."""

    def __init__(
        self,
        channels: list[IioChannel],
        period_s: float,
        stale_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = len(channels)
        self.files = channels
        self.period_s = period_s
        self.stale_s = stale_s
        self.clock = clock
        #: channel reads that failed (unreadable file, not a number) since start
        self.errors = 0
        self.samples = 0
        # One attribute, replaced whole: the reader thread's only write, atomic under the GIL.
        self._latest: tuple[float, Reading] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Reading:
        """Read every channel now (on the calling thread); a failed read is None and counted."""
        values: list[float | None] = []
        for ch in self.files:
            try:
                raw = float(ch.path.read_bytes())
            except (OSError, ValueError):
                raw = math.nan
            value = (raw + ch.offset) * ch.scale
            if math.isfinite(value):
                values.append(value)
            else:
                self.errors += 1
                values.append(None)
        self.samples += 1
        return tuple(values)

    def start(self) -> IioSensor:
        """Take a first sample (so tick 0 has one), then keep sampling on a daemon thread."""
        self._latest = (self.clock(), self.sample())
        self._thread = threading.Thread(target=self._run, name="iio-sensor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # Bounded by close(): the event ends the loop within one period.
        while not self._stop.wait(self.period_s):
            reading = self.sample()
            self._latest = (self.clock(), reading)

    def read(self, tick: int) -> Reading | None:
        latest = self._latest
        if latest is None or self.clock() - latest[0] > self.stale_s:
            return None
        reading = latest[1]
        return None if all(v is None for v in reading) else reading

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A read stuck in the driver cannot be interrupted; the thread is a daemon.
            self._thread.join(timeout=max(1.0, 2 * self.period_s))
