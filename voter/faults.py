"""Faults a daemon in HIL mode takes on command: traitor strategies, memory flips, clock drift.

Only `voterd --hil` opens the control socket; a board in service has no way to
receive these. Commands are JSON datagrams (documented in docs/hil.md):

    {"cmd": "traitor", "strategy": "equivocate", "value": [..], "from_tick": 10, "to_tick": 90}
    {"cmd": "memory-bitflip", "rate_hz": 10, "bits": 1}
    {"cmd": "clock-drift", "ppm": 500}
    {"cmd": "clock-step", "ms": -5, "at_tick": 150}   (the board's clock jumps)
    {"cmd": "stall", "ms": 60, "at_tick": 150}        (frozen, like SIGSTOP or a GC pause)
    {"cmd": "stall", "ms": 60, "rate_hz": 0.2, "from_tick": 0, "to_tick": 900}
    {"cmd": "sensor", "mode": "frozen" | "step" | "drift" | "noise" | "dropout",
     "channel": 0, "amount": 80.0, "from_tick": 100, "to_tick": 200}
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
from dataclasses import dataclass, field, replace
from typing import Any

from voter.core.adversary import Adversary, Strategy, make_adversary
from voter.core.memhit import MemoryHit
from voter.core.secded import EccStore
from voter.core.values import Invalid, ReadingDomain
from voter.faultmodel import (
    BoardFault,
    ClockDrift,
    ClockStep,
    FaultSpecError,
    MemoryBitflip,
    SensorFault,
    SensorMode,
    Stall,
    Traitor,
    fault_from_command,
)

SPIKE = 5000.0


#: Commands the daemon carries out on its process rather than on its fault state.
PROCESS_COMMANDS = ("crash", "restart", "start")
RESTART_MAX_S = 10.0
#: most windows of one kind a board keeps (a rig cannot grow its memory without bound)
WINDOWS_MAX = 64


class FaultCommandError(ValueError):
    """A control datagram that is not a valid command (counted and logged, never fatal)."""


@dataclass
class FaultState:
    """The faults this board has been told to carry out on itself, and what they did."""

    domain: ReadingDomain
    rng: random.Random
    period_s: float
    node: int = 0
    #: the first active one rules a tick
    traitors: list[Traitor] = field(default_factory=list)
    memory: MemoryBitflip | None = None
    drift_ppm: float = 0.0
    #: the board stays loyal, its sensor lies to it
    sensor: list[SensorFault] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    #: clock steps: at_tick -> seconds
    clock_steps: dict[int, float] = field(default_factory=dict)
    #: memory errors in the working state, per tick (voter.core.memhit; the simulator's
    #: injection campaigns hand them in as data, chosen by their own generator)
    hits: dict[int, tuple[MemoryHit, ...]] = field(default_factory=dict)
    _last_reading: Any = None
    injected_memory: int = 0
    injected_stalls: int = 0
    injected_hits: int = 0
    commands: int = 0

    @property
    def memory_bits(self) -> int:
        return 1 if self.memory is None else self.memory.bits

    def apply(self, raw: bytes) -> dict[str, Any]:
        """Parse and apply one command datagram; returns it (for the log)."""
        cmd = parse_command(raw)
        if cmd["cmd"] == "clear":
            self.traitors, self.memory, self.drift_ppm = [], None, 0.0
            self.sensor, self.stalls, self.clock_steps = [], [], {}
        else:
            try:
                fault = fault_from_command(cmd, self.node)
            except FaultSpecError as e:
                raise FaultCommandError(str(e)) from None
            if not isinstance(fault, BoardFault):
                raise FaultCommandError(f"{cmd['cmd']} is carried out on the process")
            self.add(fault)
        self.commands += 1
        return cmd

    def add(self, fault: BoardFault) -> None:
        """Take on one fault (the simulator hands them over typed; a board via `apply`)."""
        match fault:
            case Traitor():
                if fault.value is not None:
                    try:
                        lie = self.domain.normalize(fault.value)
                        fault = replace(fault, value=lie if isinstance(lie, tuple) else None)
                    except Invalid:
                        raise FaultCommandError(
                            f"value must be a reading of {self.domain.channels} floats"
                        ) from None
                self._bounded(self.traitors, "traitor windows").append(fault)
            case MemoryBitflip():
                self.memory = fault
            case SensorFault():
                if fault.channel is not None and fault.channel >= self.domain.channels:
                    raise FaultCommandError(
                        f"sensor: channel {fault.channel} is not in 0..{self.domain.channels - 1}"
                    )
                self._bounded(self.sensor, "sensor windows").append(fault)
            case ClockDrift():
                self.drift_ppm = fault.ppm
            case ClockStep():  # its ms was checked when the fault was made (faultmodel)
                if len(self.clock_steps) >= WINDOWS_MAX:
                    raise FaultCommandError(f"too many clock steps ({WINDOWS_MAX})")
                self.clock_steps[fault.at_tick] = fault.ms / 1000
            case Stall():
                self._bounded(self.stalls, "stalls").append(fault)

    @staticmethod
    def _bounded(windows: list[Any], what: str) -> list[Any]:
        if len(windows) >= WINDOWS_MAX:
            raise FaultCommandError(f"too many {what} ({WINDOWS_MAX})")
        return windows

    def _active(self, tick: int) -> Traitor | None:
        return next((t for t in self.traitors if t.window.active(tick)), None)

    def traitor(self, tick: int) -> Strategy | None:
        t = self._active(tick)
        return None if t is None else t.strategy

    def late_ms(self, tick: int) -> float:
        t = self._active(tick)
        if t is None:
            return 0.0
        return t.delay_ms or 0.6 * self.period_s * 1000

    def adversary(self, tick: int) -> Adversary | None:
        """The core adversary for `tick`, or None for an honest tick (or a frame-level fault)."""
        t = self._active(tick)
        if t is None or t.strategy.frame_level:
            return None
        return make_adversary(t.strategy, self.domain, self.rng, t.value)

    def memory_fault(self, tick: int) -> Any:
        """A callback flipping bits in the ECC store this tick, or None."""
        m = self.memory
        if m is None or not m.window.active(tick):
            return None
        expected = m.rate_hz * self.period_s
        flips = int(expected) + (1 if self.rng.random() < expected - int(expected) else 0)
        if flips == 0:
            return None

        def inject(store: EccStore) -> None:
            for _ in range(flips):
                key = "table"
                words = store.bit_count(key) // 72
                word = self.rng.randrange(words)
                bits = self.rng.sample(range(72), m.bits)
                for b in bits:
                    store.flip_bit(key, word * 72 + b)
                self.injected_memory += 1

        return inject

    def memory_hits(self, tick: int) -> tuple[MemoryHit, ...]:
        """The working-state memory errors of `tick` (once: a restarted board is not hit again)."""
        hits = self.hits.pop(tick, ())
        self.injected_hits += len(hits)
        return hits

    def stall_s(self, tick: int) -> tuple[float, str] | None:
        """A freeze in this tick: (seconds, "before-send" | "after-send"), or None.

        Where it lands matters (measured: a board stopped before writing round 1 sent
        it late and published a vector of its own value only; one stopped just after
        published after the period), so both places are drawn.
        """
        for st in self.stalls:
            if st.at_tick is not None:
                hit = tick == st.at_tick
            else:
                hit = st.window.active(tick) and self.rng.random() < st.rate_hz * self.period_s
            if hit:
                self.injected_stalls += 1
                return st.ms / 1000, self.rng.choice(("before-send", "after-send"))
        return None

    def clock_step_s(self, tick: int) -> float:
        """How far the board's clock jumps when it reaches `tick` (0.0: no jump); once."""
        return self.clock_steps.pop(tick, 0.0)

    def garbage(self, size: int) -> bytes:
        """Random bytes shaped like a frame (non-zero body, then the delimiter)."""
        body = bytes(self.rng.randrange(1, 256) for _ in range(max(4, size - 1)))
        return body + b"\x00"

    def corrupt_reading(self, tick: int, reading: Any) -> Any:
        """The reading as a faulty sensor delivers it (frozen, step, drift, noise, dropout).

        For any source: the fault sits between the sensor and the board's own checks.
        """
        f = next((f for f in self.sensor if f.window.active(tick)), None)
        if f is None:
            self._last_reading = reading
            return reading
        if reading is None or not isinstance(reading, tuple):
            return None if f.mode == SensorMode.DROPOUT else reading
        if f.mode == SensorMode.DROPOUT and f.channel is None:
            return None
        if f.mode in (SensorMode.FROZEN, SensorMode.STUCK) and self._last_reading is None:
            self._last_reading = reading
        channel = 0 if f.mode == SensorMode.SPIKE and f.channel is None else f.channel
        out = list(reading)
        for ch, x in enumerate(out):
            if (channel is None or ch == channel) and x is not None:
                out[ch] = self._corrupt(f, tick, ch, x)
        return tuple(out)

    def _corrupt(self, f: SensorFault, tick: int, ch: int, x: float) -> float | None:
        """One channel's value under the sensor fault `f`."""
        match f.mode:
            case SensorMode.DROPOUT:
                return None
            case SensorMode.FROZEN | SensorMode.STUCK:
                last = self._last_reading
                return last[ch] if isinstance(last, tuple) and ch < len(last) else x
            case SensorMode.SPIKE:
                return x + SPIKE
            case SensorMode.STEP:
                return x + f.amount_or_default()
            case SensorMode.DRIFT:
                return x + f.amount_or_default() * (tick - f.window.from_tick) * self.period_s
        return x + self.rng.gauss(0.0, f.amount_or_default())  # noise: the faults' seeded rng


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
    """Validate `crash` (optional at_tick >= 0), `restart` (0 < start_in_s <= 10, or
    when_told: start again and wait for `start`) and `start` (at or in_s)."""
    if cmd["cmd"] == "crash":
        at = cmd.get("at_tick")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
            raise FaultCommandError("crash: at_tick must be a tick number >= 0")
        return cmd
    if cmd["cmd"] == "start":
        return _check_start(cmd)
    if cmd.get("when_told") is True and "start_in_s" not in cmd:
        return cmd
    delay = cmd.get("start_in_s", 1.5)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise FaultCommandError("restart: start_in_s must be a number")
    if not 0 < delay <= RESTART_MAX_S:
        raise FaultCommandError(f"restart: start_in_s must be in (0, {RESTART_MAX_S:g}]")
    return cmd


def _check_start(cmd: dict[str, Any]) -> dict[str, Any]:
    """`start`: tick 0 `at` a CLOCK_MONOTONIC time (same host) or `in_s` seconds from now."""
    at, in_s = cmd.get("at"), cmd.get("in_s")
    if (at is None) == (in_s is None):
        raise FaultCommandError("start: give exactly one of at (monotonic s) and in_s")
    value = at if at is not None else in_s
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultCommandError("start: at / in_s must be a number")
    if in_s is not None and not 0 < in_s <= RESTART_MAX_S:
        raise FaultCommandError(f"start: in_s must be in (0, {RESTART_MAX_S:g}]")
    return cmd
