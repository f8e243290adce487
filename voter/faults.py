"""Faults a daemon in HIL mode takes on command: traitor strategies, memory flips, clock drift.

Only `voterd --hil` opens the control socket; a board in service has no way to
receive these. Commands are JSON datagrams (documented in docs/hil.md):

    {"cmd": "traitor", "strategy": "equivocate", "value": [..], "from_tick": 10, "to_tick": 90}
    {"cmd": "memory-bitflip", "rate_hz": 10, "bits": 1}
    {"cmd": "clock-drift", "ppm": 500}
    {"cmd": "clock-step", "ms": -5, "at_tick": 150}   (the board's clock jumps)
    {"cmd": "stall", "ms": 60, "at_tick": 150}        (frozen, like SIGSTOP or a GC pause)
    {"cmd": "stall", "ms": 60, "rate_hz": 0.2, "from_tick": 0, "to_tick": 900}
    {"cmd": "sensor", "mode": "stuck" | "spike" | "dropout", "from_tick": 100, "to_tick": 200}
    {"cmd": "clear"}
    {"cmd": "crash", "at_tick": 150}      (process: exit abruptly, non-zero; systemd restarts)
    {"cmd": "restart", "start_in_s": 1.5} (process: re-execute with a common start)

Frame-level strategies (late, garbage, replay) act on what the daemon writes;
the others become a voter.core adversary. All randomness comes from one seeded
generator so a run can be replayed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from voter.core.adversary import Adversary, make_adversary
from voter.core.secded import EccStore
from voter.core.values import Invalid, ReadingDomain

CORE_STRATEGIES = ("silent", "equivocate", "lie", "flip", "random", "forge", "withhold")
FRAME_STRATEGIES = ("late", "garbage", "replay")
STRATEGIES = CORE_STRATEGIES + FRAME_STRATEGIES
SENSOR_MODES = ("stuck", "spike", "dropout")
SPIKE = 5000.0


#: Commands the daemon carries out on its process rather than on its fault state.
PROCESS_COMMANDS = ("crash", "restart")
RESTART_MAX_S = 10.0
#: longest stall or clock step a command may ask for
STALL_MS_MAX = 60_000.0


class FaultCommandError(ValueError):
    """A control datagram that is not a valid command (counted and logged, never fatal)."""


@dataclass
class Window:
    from_tick: int = 0
    to_tick: int | None = None

    def active(self, tick: int) -> bool:
        return tick >= self.from_tick and (self.to_tick is None or tick <= self.to_tick)


@dataclass
class FaultState:
    domain: ReadingDomain
    rng: random.Random
    period_s: float
    #: (window, strategy, value, late_ms): the first active one rules a tick
    traitors: list[tuple[Window, str, Any, float]] = field(default_factory=list)
    memory_rate_hz: float = 0.0
    memory_bits: int = 1
    memory_window: Window = field(default_factory=Window)
    drift_ppm: float = 0.0
    #: (window, mode) sensor faults: the board stays loyal, its sensor lies to it
    sensor: list[tuple[Window, str]] = field(default_factory=list)
    #: stalls: (window, ms, at_tick or None, rate_hz)
    stalls: list[tuple[Window, float, int | None, float]] = field(default_factory=list)
    #: clock steps: at_tick -> seconds
    clock_steps: dict[int, float] = field(default_factory=dict)
    _last_reading: Any = None
    injected_memory: int = 0
    injected_stalls: int = 0
    commands: int = 0

    def apply(self, raw: bytes) -> dict[str, Any]:
        """Parse and apply one command datagram; returns it (for the log)."""
        cmd = parse_command(raw)
        window = Window(
            int(cmd.get("from_tick", 0)),
            None if cmd.get("to_tick") is None else int(cmd["to_tick"]),
        )
        kind = cmd["cmd"]
        if kind == "traitor":
            strategy = cmd.get("strategy")
            if strategy not in STRATEGIES:
                raise FaultCommandError(f"strategy must be one of {', '.join(STRATEGIES)}")
            late_ms = float(cmd.get("delay_ms") or 0.6 * self.period_s * 1000)
            if len(self.traitors) >= 64:
                raise FaultCommandError("too many traitor windows (64)")
            value = cmd.get("value")
            if value is not None:
                try:
                    value = self.domain.normalize(value)
                except Invalid:
                    raise FaultCommandError(
                        f"value must be a reading of {self.domain.channels} floats"
                    ) from None
            self.traitors.append((window, strategy, value, late_ms))
        elif kind == "memory-bitflip":
            bits = int(cmd.get("bits", 1))
            if bits not in (1, 2):
                raise FaultCommandError("bits must be 1 or 2")
            self.memory_rate_hz, self.memory_bits = float(cmd["rate_hz"]), bits
            self.memory_window = window
        elif kind == "sensor":
            mode = cmd.get("mode")
            if mode not in SENSOR_MODES:
                raise FaultCommandError(f"sensor mode must be one of {', '.join(SENSOR_MODES)}")
            if len(self.sensor) >= 64:
                raise FaultCommandError("too many sensor windows (64)")
            self.sensor.append((window, mode))
        elif kind == "clock-drift":
            self.drift_ppm = float(cmd["ppm"])
        elif kind == "clock-step":
            ms, at = _number(cmd, "ms"), cmd.get("at_tick")
            if ms == 0 or abs(ms) > STALL_MS_MAX:
                raise FaultCommandError(f"clock-step: ms must be non-zero, within +-{STALL_MS_MAX}")
            if not isinstance(at, int) or not _tick(at) or len(self.clock_steps) >= 64:
                raise FaultCommandError("clock-step: at_tick must be a tick >= 0 (64 at most)")
            self.clock_steps[at] = ms / 1000
        elif kind == "stall":
            ms, at, rate = _number(cmd, "ms"), cmd.get("at_tick"), cmd.get("rate_hz")
            if not 0 < ms <= STALL_MS_MAX:
                raise FaultCommandError(f"stall: ms must be in (0, {STALL_MS_MAX}]")
            if (at is None) == (rate is None):
                raise FaultCommandError("stall: give at_tick or rate_hz (one of them)")
            if at is not None and not _tick(at):
                raise FaultCommandError("stall: at_tick must be a tick >= 0")
            if rate is not None and not (isinstance(rate, int | float) and 0 < rate <= 1000):
                raise FaultCommandError("stall: rate_hz must be in (0, 1000]")
            if len(self.stalls) >= 64:
                raise FaultCommandError("too many stalls (64)")
            self.stalls.append((window, ms, None if at is None else int(at), float(rate or 0)))
        elif kind == "clear":
            self.traitors, self.memory_rate_hz, self.drift_ppm = [], 0.0, 0.0
            self.sensor, self.stalls, self.clock_steps = [], [], {}
        else:
            raise FaultCommandError(f"unknown command {kind!r}")
        self.commands += 1
        return cmd

    def _active(self, tick: int) -> tuple[Window, str, Any, float] | None:
        for t in self.traitors:
            if t[0].active(tick):
                return t
        return None

    def traitor(self, tick: int) -> str | None:
        t = self._active(tick)
        return None if t is None else t[1]

    def late_ms(self, tick: int) -> float:
        t = self._active(tick)
        return 0.0 if t is None else t[3]

    def adversary(self, tick: int) -> Adversary | None:
        """The core adversary for `tick`, or None for an honest tick (or a frame-level fault)."""
        name = self.traitor(tick)
        if name is None or name in FRAME_STRATEGIES:
            return None
        active = self._active(tick)
        return make_adversary(name, self.domain, self.rng, None if active is None else active[2])

    def memory_fault(self, tick: int) -> Any:
        """A callback flipping bits in the ECC store this tick, or None."""
        if self.memory_rate_hz <= 0 or not self.memory_window.active(tick):
            return None
        expected = self.memory_rate_hz * self.period_s
        flips = int(expected) + (1 if self.rng.random() < expected - int(expected) else 0)
        if flips == 0:
            return None

        def inject(store: EccStore) -> None:
            for _ in range(flips):
                key = "table"
                words = store.bit_count(key) // 72
                word = self.rng.randrange(words)
                bits = self.rng.sample(range(72), self.memory_bits)
                for b in bits:
                    store.flip_bit(key, word * 72 + b)
                self.injected_memory += 1

        return inject

    def stall_s(self, tick: int) -> tuple[float, str] | None:
        """A freeze in this tick: (seconds, "before-send" | "after-send"), or None.

        Where it lands matters (measured: a board stopped before writing round 1 sent
        it late and published a vector of its own value only; one stopped just after
        published after the period), so both places are drawn.
        """
        for window, ms, at, rate in self.stalls:
            if at is not None:
                hit = tick == at
            else:
                hit = window.active(tick) and self.rng.random() < rate * self.period_s
            if hit:
                self.injected_stalls += 1
                return ms / 1000, self.rng.choice(("before-send", "after-send"))
        return None

    def clock_step_s(self, tick: int) -> float:
        """How far the board's clock jumps when it reaches `tick` (0.0: no jump); once."""
        return self.clock_steps.pop(tick, 0.0)

    def garbage(self, size: int) -> bytes:
        """Random bytes shaped like a frame (non-zero body, then the delimiter)."""
        body = bytes(self.rng.randrange(1, 256) for _ in range(max(4, size - 1)))
        return body + b"\x00"

    def corrupt_reading(self, tick: int, reading: Any) -> Any:
        """The reading as a faulty sensor delivers it (stuck, spike, dropout), any source."""
        mode = next((m for w, m in self.sensor if w.active(tick)), None)
        if mode is None or reading is None:
            if mode is None:
                self._last_reading = reading
            return None if mode == "dropout" else reading
        if mode == "dropout":
            return None
        if mode == "stuck":
            if self._last_reading is None:
                self._last_reading = reading
            return self._last_reading
        spiked = list(reading)
        if spiked and spiked[0] is not None:
            spiked[0] += SPIKE
        return tuple(spiked)


def _number(cmd: dict[str, Any], key: str) -> float:
    v = cmd.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise FaultCommandError(f"{cmd['cmd']}: {key} must be a number")
    return float(v)


def _tick(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_command(raw: bytes) -> dict[str, Any]:
    """A control datagram as a dict with a 'cmd' string (FaultCommandError otherwise)."""
    try:
        cmd = json.loads(raw)
    except ValueError:
        raise FaultCommandError("not JSON") from None
    if not isinstance(cmd, dict) or not isinstance(cmd.get("cmd"), str):
        raise FaultCommandError("expected an object with a 'cmd' string")
    return cmd


def check_process_command(cmd: dict[str, Any]) -> dict[str, Any]:
    """Validate `crash` (optional at_tick >= 0) and `restart` (0 < start_in_s <= 10)."""
    if cmd["cmd"] == "crash":
        at = cmd.get("at_tick")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
            raise FaultCommandError("crash: at_tick must be a tick number >= 0")
        return cmd
    delay = cmd.get("start_in_s", 1.5)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise FaultCommandError("restart: start_in_s must be a number")
    if not 0 < delay <= RESTART_MAX_S:
        raise FaultCommandError(f"restart: start_in_s must be in (0, {RESTART_MAX_S:g}]")
    return cmd
