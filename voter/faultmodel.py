"""The one fault model (SPEC.md): what a HIL fault is, parsed once, written once.

A fault is a small frozen dataclass, one per kind, and `Fault` is their union;
everything that injects, counts or reports a fault takes these objects. They
have three written forms, each produced and read here and nowhere else:

- the `--fault KIND:TARGET[:PARAM]` text (`parse_fault`, `Fault.describe`);
- a field table (`fault_from_table`, `to_table`): a campaign's `[[scenario.fault]]`,
  and the JSON the link fabric and run.json get;
- a control-channel command for a fault a board carries out itself
  (`to_command`, `fault_from_command`): the same fields, `cmd` for `kind` and no
  `node` (the command goes to the board).

The model lives with the board (`voter`), not the rig, because a board in HIL
mode must read its commands with the same rules the rig wrote them with.
Every value is checked when the object is made (`__post_init__`), so a bad
fault is one `FaultSpecError` line whichever form it came in, never a run
that injects nothing or a probability of 2.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeGuard

from voter.core.adversary import Strategy

__all__ = [
    "KINDS",
    "BoardFault",
    "ClockDrift",
    "ClockStep",
    "Crash",
    "Fault",
    "FaultSpecError",
    "LinkBitflip",
    "LinkDelay",
    "LinkDrop",
    "LinkFault",
    "LinkJitter",
    "LinkSelector",
    "MemoryBitflip",
    "SensorFault",
    "SensorMode",
    "Stall",
    "Strategy",
    "Traitor",
    "Window",
    "fault_from_command",
    "fault_from_table",
    "parse_fault",
]


class FaultSpecError(ValueError):
    """A fault that cannot be parsed or cannot happen (one line for the user)."""


class SensorMode(StrEnum):
    """How a faulty sensor lies to its (loyal) board (ArduPilot's SIM_*_FAIL, PX4's failures).

    `stuck` and `spike` are the first two names, kept: stuck = frozen, spike = a step of
    +5000 on channel 0.
    """

    FROZEN = "frozen"  # repeats the last reading before the fault
    STEP = "step"  # + amount (default 5000)
    DRIFT = "drift"  # + amount per second since from_tick (default 50)
    NOISE = "noise"  # + Gaussian noise of standard deviation amount (default 100)
    DROPOUT = "dropout"  # no sample (ERROR)
    STUCK = "stuck"
    SPIKE = "spike"


#: the amount a mode uses when the fault names none
SENSOR_AMOUNT = {SensorMode.STEP: 5000.0, SensorMode.DRIFT: 50.0, SensorMode.NOISE: 100.0}
SENSOR_CHANNELS_MAX = 32


def number_text(x: float) -> str:
    """The shortest text that reads back as exactly `x` (so describe() round-trips)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _need(ok: bool, kind: str, why: str) -> None:
    if not ok:
        raise FaultSpecError(f"{kind}: {why}")


def _finite(kind: str, **values: float) -> None:
    for name, x in values.items():
        _need(math.isfinite(x), kind, f"{name} must be a finite number, got {x}")


@dataclass(frozen=True)
class Window:
    """Ticks in which a fault acts: from_tick..to_tick inclusive (to_tick None: to the end)."""

    from_tick: int = 0
    to_tick: int | None = None

    def __post_init__(self) -> None:
        _need(self.from_tick >= 0, "window", f"from_tick must be >= 0, got {self.from_tick}")
        _need(
            self.to_tick is None or self.to_tick >= self.from_tick,
            "window",
            f"to_tick {self.to_tick} is before from_tick {self.from_tick}",
        )

    def active(self, tick: int) -> bool:
        return tick >= self.from_tick and (self.to_tick is None or tick <= self.to_tick)

    def fields(self) -> dict[str, int]:
        out = {"from_tick": self.from_tick}
        if self.to_tick is not None:
            out["to_tick"] = self.to_tick
        return out


ALWAYS = Window()
# The domains of the values, checked when a fault is made (so for a campaign, --fault text and
# a control command alike). The upper bounds are limits on the rig, not physics: a board frozen
# or a frame held a minute is already "gone", and a rate beyond them would make a tick's work
# (bit flips, stall draws) unbounded.
PPM_MAX = 1_000_000  # exclusive: at -1e6 ppm a clock stands still, beyond it runs backwards
MS_MAX = 60_000.0  # longest stall, clock step, link delay or jitter, traitor lateness
STALL_RATE_HZ_MAX = 1000.0
MEMORY_RATE_HZ_MAX = 10_000.0
_LINK_RE = re.compile(r"^(\*|\d+-\d+|\d+>\d+)$")


@dataclass(frozen=True)
class LinkSelector:
    """Which link directions a link fault touches: "a-b" (both), "a>b" (one), "*" (all)."""

    ends: tuple[int, int] | None  # None: every link
    one_way: bool = False

    @classmethod
    def parse(cls, text: str, nodes: int) -> LinkSelector:
        if not _LINK_RE.match(text):
            raise FaultSpecError(f"link {text!r} must be 'a-b', 'a>b' or '*'")
        if text == "*":
            return cls(None)
        a, b = (_node(x, nodes) for x in re.split(r"[->]", text))
        if a == b:
            raise FaultSpecError(f"link {text!r} joins a board to itself")
        return cls((a, b), ">" in text)

    def __str__(self) -> str:
        if self.ends is None:
            return "*"
        return f"{self.ends[0]}{'>' if self.one_way else '-'}{self.ends[1]}"

    def carries(self, src: int, dst: int) -> bool:
        """Does this selector cover frames from board `src` to board `dst`?"""
        if self.ends is None:
            return True
        if self.one_way:
            return self.ends == (src, dst)
        return set(self.ends) == {src, dst}

    def boards(self) -> tuple[int, ...]:
        """Boards at the ends ('*' -> none in particular)."""
        return () if self.ends is None else self.ends


def _node(text: object, nodes: int | None) -> int:
    if isinstance(text, bool):
        raise FaultSpecError(f"{text!r} is not a node id")
    try:
        n = int(str(text))
    except ValueError:
        raise FaultSpecError(f"{text!r} is not a node id") from None
    if nodes is not None and not 0 <= n < nodes:
        raise FaultSpecError(f"node {n} is not in 0..{nodes - 1}")
    return n


# -- the kinds ------------------------------------------------------------------------
# Each kind: its fields, their checks, its --fault text and its field table.
# `_params()` is the table without kind, target and window: the one serialisation.


@dataclass(frozen=True)
class Traitor:
    """A board that lies (any strategy of `Strategy`); `value`: the fixed lie of `lie`."""

    kind: ClassVar[str] = "traitor"
    node: int
    strategy: Strategy = Strategy.EQUIVOCATE
    value: tuple[Any, ...] | None = None
    delay_ms: float = 0.0  # late: how late (0: the board's default, 0.6 of a period)
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, delay_ms=self.delay_ms)
        _need(
            0 <= self.delay_ms <= MS_MAX,
            self.kind,
            f"delay_ms must be >= 0 and <= {MS_MAX:g}, got {number_text(self.delay_ms)}",
        )

    def describe(self) -> str:
        return f"traitor:{self.node}:{self.strategy}"

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": str(self.strategy)}
        if self.value is not None:
            out["value"] = list(self.value)
        if self.delay_ms:
            out["delay_ms"] = self.delay_ms
        return out


@dataclass(frozen=True)
class LinkBitflip:
    """Bit errors at `ber` per bit, in bursts of `burst` adjacent bits."""

    kind: ClassVar[str] = "link-bitflip"
    link: LinkSelector
    ber: float
    burst: int = 1
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, ber=self.ber)
        _need(
            0.0 <= self.ber <= 1.0,
            self.kind,
            f"ber (bit error rate) must be in [0, 1], got {number_text(self.ber)}",
        )
        _need(self.burst >= 1, self.kind, f"burst must be >= 1 bit, got {self.burst}")

    def describe(self) -> str:
        return f"link-bitflip:{self.link}:{number_text(self.ber)}"

    def _params(self) -> dict[str, Any]:
        return {"ber": self.ber, "burst": self.burst}


@dataclass(frozen=True)
class LinkDrop:
    """Each frame lost with probability `p`."""

    kind: ClassVar[str] = "link-drop"
    link: LinkSelector
    p: float
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, p=self.p)
        _need(
            0.0 <= self.p <= 1.0,
            self.kind,
            f"p (drop probability) must be in [0, 1], got {number_text(self.p)}",
        )

    def describe(self) -> str:
        return f"link-drop:{self.link}:{number_text(self.p)}"

    def _params(self) -> dict[str, Any]:
        return {"p": self.p}


@dataclass(frozen=True)
class LinkDelay:
    """Every frame `delay_ms` late (and those behind it: a line does not reorder)."""

    kind: ClassVar[str] = "link-delay"
    link: LinkSelector
    delay_ms: float
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, delay_ms=self.delay_ms)
        _need(
            0 <= self.delay_ms <= MS_MAX,
            self.kind,
            f"delay must be >= 0 ms and <= {MS_MAX:g} ms, got {number_text(self.delay_ms)}",
        )

    def describe(self) -> str:
        return f"link-delay:{self.link}:{number_text(self.delay_ms)}ms"

    def _params(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_ms}


@dataclass(frozen=True)
class LinkJitter:
    """Each frame a uniform random extra delay in [0, max_ms]."""

    kind: ClassVar[str] = "link-jitter"
    link: LinkSelector
    max_ms: float
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, max_ms=self.max_ms)
        _need(
            0 <= self.max_ms <= MS_MAX,
            self.kind,
            f"jitter must be >= 0 ms (a delay cannot be negative) and <= {MS_MAX:g} ms, "
            f"got {number_text(self.max_ms)}",
        )

    def describe(self) -> str:
        return f"link-jitter:{self.link}:{number_text(self.max_ms)}ms"

    def _params(self) -> dict[str, Any]:
        return {"max_ms": self.max_ms}


@dataclass(frozen=True)
class MemoryBitflip:
    """Bit flips in a board's memory at `rate_hz`, `bits` (1 correctable, 2 detectable) each."""

    kind: ClassVar[str] = "memory-bitflip"
    node: int
    rate_hz: float
    bits: int = 1
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, rate_hz=self.rate_hz)
        _need(
            0 < self.rate_hz <= MEMORY_RATE_HZ_MAX,
            self.kind,
            f"rate must be > 0 and <= {MEMORY_RATE_HZ_MAX:g} per second, "
            f"got {number_text(self.rate_hz)}",
        )
        _need(self.bits in (1, 2), self.kind, f"bits must be 1 or 2, got {self.bits}")

    def describe(self) -> str:
        return f"memory-bitflip:{self.node}:{number_text(self.rate_hz)}/s:{self.bits}"

    def _params(self) -> dict[str, Any]:
        return {"rate_hz": self.rate_hz, "bits": self.bits}


@dataclass(frozen=True)
class Crash:
    """The board dies at `at_tick` and is restarted as systemd would."""

    kind: ClassVar[str] = "crash"
    node: int
    at_tick: int
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _need(self.at_tick >= 0, self.kind, f"at_tick must be >= 0, got {self.at_tick}")

    def describe(self) -> str:
        return f"crash:{self.node}@{self.at_tick}"

    def _params(self) -> dict[str, Any]:
        return {"at_tick": self.at_tick}


@dataclass(frozen=True)
class ClockDrift:
    """The board's oscillator runs `ppm` fast (or slow, negative)."""

    kind: ClassVar[str] = "clock-drift"
    node: int
    ppm: float
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, ppm=self.ppm)
        # At -1e6 ppm the clock stands still (the simulator divides by 1 + ppm/1e6); beyond
        # +-1e6 it runs backwards or twice as fast: that is a broken clock, not a drift.
        _need(
            -PPM_MAX < self.ppm < PPM_MAX,
            self.kind,
            f"ppm must be in (-{PPM_MAX}, {PPM_MAX}), got {number_text(self.ppm)}",
        )

    def describe(self) -> str:
        return f"clock-drift:{self.node}:{number_text(self.ppm)}ppm"

    def _params(self) -> dict[str, Any]:
        return {"ppm": self.ppm}


@dataclass(frozen=True)
class Stall:
    """The board freezes `ms` (a GC pause, SIGSTOP), once at `at_tick` or at `rate_hz`."""

    kind: ClassVar[str] = "stall"
    node: int
    ms: float
    at_tick: int | None = None
    rate_hz: float = 0.0
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, ms=self.ms, rate_hz=self.rate_hz)
        _need(
            0 < self.ms <= MS_MAX,
            self.kind,
            f"a stall lasts > 0 ms and <= {MS_MAX:g} ms, got {number_text(self.ms)}",
        )
        _need(
            not (self.at_tick is not None and self.rate_hz),
            self.kind,
            "takes at_tick or rate_hz, not both (stall:2:60ms@150 or stall:2:60ms/5s)",
        )
        _need(
            self.at_tick is not None or self.rate_hz != 0,
            self.kind,
            "needs at_tick or rate_hz (stall:2:60ms@150 or stall:2:60ms/5s)",
        )
        _need(
            self.at_tick is not None or 0 < self.rate_hz <= STALL_RATE_HZ_MAX,
            self.kind,
            f"rate_hz must be > 0 and <= {STALL_RATE_HZ_MAX:g}, got {number_text(self.rate_hz)}",
        )
        _need(
            self.at_tick is None or self.at_tick >= 0,
            self.kind,
            f"at_tick must be >= 0, got {self.at_tick}",
        )

    def describe(self) -> str:
        return f"stall:{self.node}:{number_text(self.ms)}ms{self._when()}"

    def _when(self) -> str:
        if self.at_tick is not None:
            return f"@{self.at_tick}"
        text = number_text(1.0 / self.rate_hz)
        if 1.0 / float(text) == self.rate_hz:
            return f"/{text}s"
        return f"/{number_text(self.rate_hz)}hz"  # a rate whose period does not read back exactly

    def _params(self) -> dict[str, Any]:
        if self.at_tick is not None:
            return {"ms": self.ms, "at_tick": self.at_tick}
        return {"ms": self.ms, "rate_hz": self.rate_hz}


@dataclass(frozen=True)
class ClockStep:
    """The board's clock jumps by `ms` (signed) when it reaches `at_tick`."""

    kind: ClassVar[str] = "clock-step"
    node: int
    ms: float
    at_tick: int
    window: Window = ALWAYS

    def __post_init__(self) -> None:
        _finite(self.kind, ms=self.ms)
        _need(
            self.ms != 0, self.kind, "a clock step of 0 ms does nothing (it is signed, e.g. -5ms)"
        )
        _need(
            abs(self.ms) <= MS_MAX,
            self.kind,
            f"a clock step is at most {MS_MAX:g} ms either way, got {number_text(self.ms)}",
        )
        _need(self.at_tick >= 0, self.kind, f"at_tick must be >= 0, got {self.at_tick}")

    def describe(self) -> str:
        return f"clock-step:{self.node}:{number_text(self.ms)}ms@{self.at_tick}"

    def _params(self) -> dict[str, Any]:
        return {"ms": self.ms, "at_tick": self.at_tick}


@dataclass(frozen=True)
class SensorFault:
    """The board stays loyal; its sensor lies to it (frozen, step, drift, noise, dropout).

    `channel`: the one channel affected (None: every channel); `amount`: the step, the
    drift per second or the noise's standard deviation (None: the mode's default).
    """

    kind: ClassVar[str] = "sensor"
    node: int
    mode: SensorMode = SensorMode.SPIKE
    window: Window = ALWAYS
    channel: int | None = None
    amount: float | None = None

    def __post_init__(self) -> None:
        if self.amount is not None:
            _finite(self.kind, amount=self.amount)
        _need(
            self.channel is None or 0 <= self.channel < SENSOR_CHANNELS_MAX,
            self.kind,
            f"channel must be in 0..{SENSOR_CHANNELS_MAX - 1}, got {self.channel}",
        )
        _need(
            self.amount is None or self.mode in SENSOR_AMOUNT,
            self.kind,
            f"{self.mode} takes no amount (only {', '.join(SENSOR_AMOUNT)} do)",
        )
        _need(
            not (self.mode == SensorMode.NOISE and self.amount is not None and self.amount < 0),
            self.kind,
            "noise amount is a standard deviation (>= 0)",
        )

    def amount_or_default(self) -> float:
        return SENSOR_AMOUNT.get(self.mode, 0.0) if self.amount is None else self.amount

    def describe(self) -> str:
        w = self.window
        extra = "" if self.amount is None else f":amount={number_text(self.amount)}"
        extra += "" if self.channel is None else f":channel={self.channel}"
        span = "" if w.to_tick is None else f":{w.from_tick}-{w.to_tick}"
        return f"sensor:{self.node}:{self.mode}{extra}{span}"

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": str(self.mode)}
        if self.channel is not None:
            out["channel"] = self.channel
        if self.amount is not None:
            out["amount"] = self.amount
        return out


LinkFault = LinkBitflip | LinkDrop | LinkDelay | LinkJitter
#: faults a board carries out on itself, on command over its control channel
BoardFault = Traitor | MemoryBitflip | ClockDrift | Stall | ClockStep | SensorFault
Fault = LinkFault | BoardFault | Crash
TYPES: tuple[type[Any], ...] = (
    Traitor,
    LinkBitflip,
    LinkDrop,
    LinkDelay,
    LinkJitter,
    MemoryBitflip,
    Crash,
    ClockDrift,
    Stall,
    ClockStep,
    SensorFault,
)
LINK_TYPES = (LinkBitflip, LinkDrop, LinkDelay, LinkJitter)
BOARD_TYPES = (Traitor, MemoryBitflip, ClockDrift, Stall, ClockStep, SensorFault)
_BY_KIND: dict[str, type[Any]] = {t.kind: t for t in TYPES}
KINDS = tuple(_BY_KIND)
#: One example per kind, for help texts and error messages.
EXAMPLES = (
    "traitor:3:equivocate",
    "link-bitflip:0-1:1e-4",
    "link-drop:0-1:0.01",
    "link-delay:0-1:5ms",
    "link-jitter:0-1:3ms",
    "memory-bitflip:2:10/s",
    "crash:1@150",
    "clock-drift:2:500ppm",
    "stall:2:60ms@150",
    "stall:2:60ms/5s",
    "clock-step:2:-5ms@150",
    "sensor:0:spike",
    "sensor:0:frozen:20-90",
    "sensor:0:step:amount=80:channel=0",
)


def is_link(f: Fault) -> TypeGuard[LinkFault]:
    return isinstance(f, LINK_TYPES)


def is_board(f: Fault) -> TypeGuard[BoardFault]:
    """Does a board carry `f` out on itself (on command), rather than a link or the rig?"""
    return isinstance(f, BOARD_TYPES)


def target(f: Fault) -> dict[str, Any]:
    """The board or link a fault is on, as a table field."""
    return {"link": str(f.link)} if isinstance(f, LINK_TYPES) else {"node": f.node}


def to_table(f: Fault) -> dict[str, Any]:
    """The campaign-table / JSON form of `f` (fault_from_table gives it back)."""
    return {"kind": f.kind, **target(f), **f._params(), **f.window.fields()}


def to_command(f: BoardFault | Crash) -> dict[str, Any]:
    """The control-channel command that makes a board carry out `f` on itself."""
    return {"cmd": f.kind, **f._params(), **f.window.fields()}


def boards(f: Fault) -> tuple[int, ...]:
    """Boards a fault is on: its node, or its link's ends ('*': none in particular)."""
    return f.link.boards() if isinstance(f, LINK_TYPES) else (f.node,)


# -- reading the three forms ---------------------------------------------------------


class _Fields:
    """Typed reads from a table or command, each mistake one FaultSpecError line."""

    def __init__(self, kind: str, raw: Mapping[str, Any]) -> None:
        self.kind, self.raw = kind, raw

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def number(self, key: str, default: float | None = None) -> float:
        v = self.raw.get(key, default)
        if v is None:
            raise FaultSpecError(f"{self.kind} fault needs {key}")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise FaultSpecError(f"{self.kind}: {key} must be a number, got {v!r}")
        return float(v)

    def whole(self, key: str, default: int | None = None) -> int:
        v = self.raw.get(key, default)
        if v is None:
            raise FaultSpecError(f"{self.kind} fault needs {key}")
        if isinstance(v, bool) or not isinstance(v, int):
            raise FaultSpecError(f"{self.kind}: {key} must be a whole number, got {v!r}")
        return v

    def choice(self, key: str, enum: type[StrEnum], default: str) -> Any:
        v = self.raw.get(key, default)
        try:
            return enum(v)
        except ValueError:
            names = ", ".join(e.value for e in enum)
            raise FaultSpecError(f"{self.kind}: {key} must be one of {names}, got {v!r}") from None

    def window(self) -> Window:
        to = self.whole("to_tick") if self.has("to_tick") else None
        return Window(self.whole("from_tick", 0), to)


def _from_fields(kind: str, where: int | LinkSelector, x: _Fields) -> Fault:
    """The one constructor from named fields (a table and a command both end here)."""
    w = x.window()
    if isinstance(where, LinkSelector):
        match kind:
            case "link-bitflip":
                return LinkBitflip(where, x.number("ber"), x.whole("burst", 1), w)
            case "link-drop":
                return LinkDrop(where, x.number("p"), w)
            case "link-delay":
                return LinkDelay(where, x.number("delay_ms"), w)
        return LinkJitter(where, x.number("max_ms"), w)
    node = where
    match kind:
        case "traitor":
            value = x.raw.get("value")
            if value is not None and not isinstance(value, list | tuple):
                raise FaultSpecError(f"traitor: value must be a list of readings, got {value!r}")
            strategy = x.choice("strategy", Strategy, "equivocate")
            lie = None if value is None else tuple(value)
            return Traitor(node, strategy, lie, x.number("delay_ms", 0.0), w)
        case "memory-bitflip":
            return MemoryBitflip(node, x.number("rate_hz"), x.whole("bits", 1), w)
        case "crash":
            return Crash(node, x.whole("at_tick"), w)
        case "clock-drift":
            return ClockDrift(node, x.number("ppm"), w)
        case "stall":
            if x.has("at_tick") and x.has("rate_hz"):
                raise FaultSpecError("stall takes at_tick or rate_hz, not both")
            if not x.has("at_tick") and not x.has("rate_hz"):
                raise FaultSpecError("stall needs at_tick or rate_hz")
            at = x.whole("at_tick") if x.has("at_tick") else None
            rate = x.number("rate_hz", 0.0)
            if at is None and not rate > 0:
                raise FaultSpecError(
                    f"stall: rate_hz must be > 0 and <= {STALL_RATE_HZ_MAX:g}, "
                    f"got {number_text(rate)}"
                )
            return Stall(node, x.number("ms"), at, rate, w)
        case "clock-step":
            return ClockStep(node, x.number("ms"), x.whole("at_tick"), w)
    channel = x.whole("channel") if x.has("channel") else None
    amount = x.number("amount") if x.has("amount") else None
    return SensorFault(node, x.choice("mode", SensorMode, "spike"), w, channel, amount)


def _kind(raw: object, what: str) -> str:
    if not isinstance(raw, str) or raw not in _BY_KIND:  # a list or table is not hashable
        raise FaultSpecError(f"{what} must be one of {', '.join(KINDS)}, got {raw!r}")
    return str(raw)


def table_keys(kind: str) -> frozenset[str]:
    """The keys a table of `kind` may have: its fields, named as the dataclass names them."""
    own = {f.name for f in dataclasses.fields(_BY_KIND[kind])} - {"window"}
    return frozenset(own | {"kind", "from_tick", "to_tick"})


def fault_from_table(t: Mapping[str, Any], nodes: int) -> Fault:
    """A `[[scenario.fault]]` table of a campaign (SPEC.md field names), or its JSON."""
    kind = _kind(t.get("kind"), "fault kind")
    unknown = set(t) - table_keys(kind)
    if unknown:
        raise FaultSpecError(f"{kind} fault: unknown key(s): {', '.join(sorted(unknown))}")
    x = _Fields(kind, t)
    if _BY_KIND[kind] in LINK_TYPES:
        if "link" not in t:
            raise FaultSpecError(f"{kind} fault needs link")
        return _from_fields(kind, LinkSelector.parse(str(t["link"]), nodes), x)
    if "node" not in t:
        raise FaultSpecError(f"{kind} fault needs node")
    return _from_fields(kind, _node(t["node"], nodes), x)


def fault_from_command(cmd: Mapping[str, Any], node: int) -> BoardFault | Crash:
    """A control-channel command as the board `node` it was sent to reads it."""
    kind = _kind(cmd.get("cmd"), "command")
    if _BY_KIND[kind] in LINK_TYPES:
        raise FaultSpecError(f"{kind} is done by the link fabric, not by a board")
    f = _from_fields(kind, node, _Fields(kind, cmd))
    assert not isinstance(f, LINK_TYPES)
    return f


# -- the --fault text ---------------------------------------------------------------


def _float(text: str, what: str, suffix: str = "") -> float:
    raw = text.removesuffix(suffix) if suffix else text
    try:
        return float(raw)
    except ValueError:
        raise FaultSpecError(f"{what} {text!r} is not a number") from None


def _tick(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FaultSpecError(f"tick {text!r} is not a whole number") from None


def _rate(text: str) -> float:
    """`5s`, `500ms` (one every ...) or `0.2hz` (so many per second) -> rate in Hz."""
    low = text.lower()
    if low.endswith("hz"):
        rate_hz = _float(low[:-2], "stall rate")
        if not rate_hz > 0:
            raise FaultSpecError(
                f"stall: rate_hz must be > 0 and <= {STALL_RATE_HZ_MAX:g}, got {text!r}"
            )
        return rate_hz
    if low.endswith("ms"):
        period_s = _float(low[:-2], "stall period") / 1000.0
    else:
        period_s = _float(low.removesuffix("s"), "stall period")
    if not period_s > 0 or not math.isfinite(period_s):
        raise FaultSpecError(f"stall period {text!r} must be a positive time, e.g. 5s")
    return 1.0 / period_s


def parse_fault(text: str, nodes: int) -> Fault:
    """`KIND:TARGET[:PARAM]` as on the firmware-sim command line (SPEC.md)."""
    kind, _, rest = text.partition(":")
    if kind not in _BY_KIND:
        raise FaultSpecError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "crash":
        who, at, tick = rest.partition("@")
        if not at:
            raise FaultSpecError("crash takes NODE@TICK, e.g. crash:1@150")
        return Crash(_node(who, nodes), _tick(tick))
    who, *params = rest.split(":")
    if not who:
        raise FaultSpecError(f"{kind} needs a target: {kind}:TARGET[:PARAM]")
    if _BY_KIND[kind] in LINK_TYPES:
        return _parse_link(kind, LinkSelector.parse(who, nodes), params[0] if params else "")
    return _parse_board(kind, _node(who, nodes), params)


def _parse_link(kind: str, link: LinkSelector, param: str) -> Fault:
    match kind:
        case "link-bitflip":
            return LinkBitflip(link, _float(param or "1e-4", "ber"))
        case "link-drop":
            return LinkDrop(link, _float(param or "0.01", "p"))
        case "link-delay":
            return LinkDelay(link, _float(param or "5ms", "delay", "ms"))
    if not param:
        raise FaultSpecError("link-jitter takes LINK:MAXms, e.g. link-jitter:0-1:3ms")
    return LinkJitter(link, _float(param, "jitter", "ms"))


def _parse_board(kind: str, node: int, params: list[str]) -> Fault:
    param = params[0] if params else ""
    match kind:
        case "traitor":
            return _from_fields(kind, node, _Fields(kind, {"strategy": param or "equivocate"}))
        case "memory-bitflip":
            bits = int(_float(params[1], "bits")) if len(params) > 1 else 1
            return MemoryBitflip(node, _float(param or "10/s", "rate", "/s"), bits)
        case "sensor":
            return _parse_sensor(node, param, params[1:])
        case "stall":
            return _parse_stall(node, param)
        case "clock-step":
            step, at, tick = param.partition("@")
            if not step or not at:
                raise FaultSpecError("clock-step takes NODE:±MSms@TICK, e.g. clock-step:2:-5ms@150")
            return ClockStep(node, _float(step, "clock step", "ms"), _tick(tick))
    return ClockDrift(node, _float(param or "500ppm", "drift", "ppm"))


def _parse_sensor(node: int, mode: str, rest: list[str]) -> SensorFault:
    """sensor:NODE:MODE[:amount=X][:channel=C][:FROM-TO], e.g. sensor:0:step:amount=80:20-90."""
    fields: dict[str, Any] = {"mode": mode or "spike"}
    for part in rest:
        key, eq, value = part.partition("=")
        if eq and key in ("amount", "channel"):
            fields[key] = _float(value, key) if key == "amount" else _tick(value)
        elif re.fullmatch(r"\d+-\d+", part):
            first, _, last = part.partition("-")
            fields["from_tick"], fields["to_tick"] = _tick(first), _tick(last)
        else:
            raise FaultSpecError(
                f"sensor: {part!r} is not amount=X, channel=C or FROM-TO "
                "(e.g. sensor:0:frozen:20-90, sensor:0:step:amount=80:channel=0)"
            )
    f = _from_fields("sensor", node, _Fields("sensor", fields))
    assert isinstance(f, SensorFault)
    return f


def _parse_stall(node: int, param: str) -> Stall:
    usage = "stall takes NODE:MSms@TICK or NODE:MSms/PERIOD, e.g. stall:2:60ms@150, stall:2:60ms/5s"
    at, slash = "@" in param, "/" in param
    if at and slash:
        raise FaultSpecError(f"stall: @TICK or /PERIOD, not both ({usage})")
    if not at and not slash:
        raise FaultSpecError(usage)
    length, _, when = param.partition("@" if at else "/")
    ms = _float(length, "stall length", "ms")
    if at:
        return Stall(node, ms, at_tick=_tick(when))
    return Stall(node, ms, rate_hz=_rate(when))
