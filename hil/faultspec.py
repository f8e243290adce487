"""The one fault vocabulary (SPEC.md): `--fault KIND:TARGET[:PARAM]` strings and campaign tables.

A `Fault` knows where it is carried out: link faults go to the link fabric,
node faults become HIL control commands, a crash is done by the rig (SIGKILL,
then a restart as systemd would). It also knows which board it makes faulty,
so the checker and the fault-bound accounting agree with the injection.

Every fault is validated here, in one place, whichever way it was written: a
bad value is one `FaultSpecError` line for the user, never a run that silently
injects nothing (or a probability of 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = (
    "traitor",
    "link-bitflip",
    "link-drop",
    "link-delay",
    "link-jitter",
    "memory-bitflip",
    "crash",
    "clock-drift",
    "stall",
    "clock-step",
    "sensor",
)
#: Faults of a board's timing: it is slow or its clock jumps, it does not lie.
TIMING_KINDS = ("stall", "clock-step")
SENSOR_MODES = ("stuck", "spike", "dropout")
TRAITOR_STRATEGIES = (
    "silent",
    "equivocate",
    "lie",
    "flip",
    "random",
    "late",
    "garbage",
    "replay",
    "forge",
    "withhold",
)
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
)
_LINK_RE = re.compile(r"^(\*|\d+-\d+|\d+>\d+)$")


class FaultSpecError(ValueError):
    """A fault that cannot be parsed (one line for the user)."""


def _num(x: float) -> str:
    """The shortest text that reads back as exactly `x` (so describe() round-trips)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


@dataclass(frozen=True)
class Fault:
    kind: str
    node: int | None = None
    link: str | None = None
    strategy: str | None = None
    value: Any = None
    ber: float = 0.0
    burst: int = 1
    p: float = 0.0
    delay_ms: float = 0.0
    rate_hz: float = 0.0
    bits: int = 1
    at_tick: int | None = None
    ppm: float = 0.0
    mode: str | None = None  # sensor: stuck | spike | dropout
    from_tick: int = 0
    to_tick: int | None = None
    #: stall: how long the board is frozen; clock-step: how far its clock jumps (signed)
    ms: float = 0.0
    #: link-jitter: each frame gets a uniform random extra delay in [0, max_ms]
    max_ms: float = 0.0

    def describe(self) -> str:
        """The `--fault` text of this fault (parse_fault(describe()) gives it back)."""
        match self.kind:
            case "traitor":
                return f"traitor:{self.node}:{self.strategy}"
            case "link-bitflip":
                return f"link-bitflip:{self.link}:{_num(self.ber)}"
            case "link-drop":
                return f"link-drop:{self.link}:{_num(self.p)}"
            case "link-delay":
                return f"link-delay:{self.link}:{_num(self.delay_ms)}ms"
            case "link-jitter":
                return f"link-jitter:{self.link}:{_num(self.max_ms)}ms"
            case "memory-bitflip":
                return f"memory-bitflip:{self.node}:{_num(self.rate_hz)}/s:{self.bits}"
            case "crash":
                return f"crash:{self.node}@{self.at_tick}"
            case "clock-drift":
                return f"clock-drift:{self.node}:{_num(self.ppm)}ppm"
            case "stall":
                return f"stall:{self.node}:{_num(self.ms)}ms{self._stall_when()}"
            case "clock-step":
                return f"clock-step:{self.node}:{_num(self.ms)}ms@{self.at_tick}"
            case "sensor":
                window = "" if self.to_tick is None else f":{self.from_tick}-{self.to_tick}"
                return f"sensor:{self.node}:{self.mode}{window}"
        return self.kind

    def _stall_when(self) -> str:
        if self.at_tick is not None:
            return f"@{self.at_tick}"
        period_s = 1.0 / self.rate_hz if self.rate_hz else math.inf
        text = _num(period_s)
        if math.isfinite(period_s) and 1.0 / float(text) == self.rate_hz:
            return f"/{text}s"
        return f"/{_num(self.rate_hz)}hz"  # a rate whose period does not read back exactly

    def link_ends(self) -> tuple[int, ...]:
        """Boards at the ends of a link fault ('*' -> every board)."""
        if self.link is None:
            return ()
        if self.link == "*":
            return ()
        return tuple(int(x) for x in re.split(r"[->]", self.link))

    def control_command(self) -> dict[str, Any] | None:
        """The HIL control datagram for a node fault, or None."""
        window: dict[str, Any] = {"from_tick": self.from_tick}
        if self.to_tick is not None:
            window["to_tick"] = self.to_tick
        if self.kind == "traitor":
            cmd: dict[str, Any] = {"cmd": "traitor", "strategy": self.strategy, **window}
            if self.value is not None:
                cmd["value"] = self.value
            if self.strategy == "late" and self.delay_ms:
                cmd["delay_ms"] = self.delay_ms
            return cmd
        if self.kind == "memory-bitflip":
            return {"cmd": "memory-bitflip", "rate_hz": self.rate_hz, "bits": self.bits, **window}
        if self.kind == "clock-drift":
            return {"cmd": "clock-drift", "ppm": self.ppm}
        if self.kind == "stall":
            if self.at_tick is not None:
                return {"cmd": "stall", "ms": self.ms, "at_tick": self.at_tick}
            return {"cmd": "stall", "ms": self.ms, "rate_hz": self.rate_hz, **window}
        if self.kind == "clock-step":
            return {"cmd": "clock-step", "ms": self.ms, "at_tick": self.at_tick}
        if self.kind == "sensor":
            return {"cmd": "sensor", "mode": self.mode, **window}
        return None

    def fabric_fault(self, tick_s: float) -> dict[str, Any] | None:
        """The link-fabric fault for a link fault, with its tick window turned into seconds."""
        if not self.kind.startswith("link-"):
            return None
        spec: dict[str, Any] = {"kind": self.kind, "link": self.link}
        if self.kind == "link-jitter":
            spec["max_ms"] = self.max_ms
        else:
            spec.update(ber=self.ber, burst=self.burst, p=self.p, delay_ms=self.delay_ms)
        spec["start_s"] = self.from_tick * tick_s
        spec["end_s"] = None if self.to_tick is None else (self.to_tick + 1) * tick_s
        return spec


def _node(text: str, nodes: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise FaultSpecError(f"{text!r} is not a node id") from None
    if not 0 <= n < nodes:
        raise FaultSpecError(f"node {n} is not in 0..{nodes - 1}")
    return n


def _link(text: str, nodes: int) -> str:
    if not _LINK_RE.match(text):
        raise FaultSpecError(f"link {text!r} must be 'a-b', 'a>b' or '*'")
    if text != "*":
        a, b = (int(x) for x in re.split(r"[->]", text))
        for n in (a, b):
            _node(str(n), nodes)
        if a == b:
            raise FaultSpecError(f"link {text!r} joins a board to itself")
    return text


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


def _period_rate(text: str) -> float:
    """`5s`, `500ms` (one every ...) or `0.2hz` (so many per second) -> rate in Hz."""
    low = text.lower()
    if low.endswith("hz"):
        rate_hz = _float(low[:-2], "stall rate")
        if not rate_hz > 0:
            raise FaultSpecError(f"stall: rate_hz must be > 0, got {text!r}")
        return rate_hz
    if low.endswith("ms"):
        period_s = _float(low[:-2], "stall period") / 1000.0
    else:
        period_s = _float(low.removesuffix("s"), "stall period")
    if not period_s > 0 or not math.isfinite(period_s):
        raise FaultSpecError(f"stall period {text!r} must be a positive time, e.g. 5s")
    return 1.0 / period_s


def _check(f: Fault) -> Fault:
    """Reject values no fault can have (one line). Both parsers end here."""

    def need(ok: bool, why: str) -> None:
        if not ok:
            raise FaultSpecError(f"{f.kind}: {why}")

    numbers = {"ber": f.ber, "p": f.p, "delay_ms": f.delay_ms, "rate_hz": f.rate_hz}
    numbers |= {"ppm": f.ppm, "ms": f.ms, "max_ms": f.max_ms}
    for name, x in numbers.items():
        need(math.isfinite(x), f"{name} must be a finite number, got {x}")
    need(f.from_tick >= 0, f"from_tick must be >= 0, got {f.from_tick}")
    need(
        f.to_tick is None or f.to_tick >= f.from_tick,
        f"to_tick {f.to_tick} is before from_tick {f.from_tick}",
    )
    need(f.at_tick is None or f.at_tick >= 0, f"at_tick must be >= 0, got {f.at_tick}")
    match f.kind:
        case "link-bitflip":
            need(0.0 <= f.ber <= 1.0, f"ber (bit error rate) must be in [0, 1], got {_num(f.ber)}")
            need(f.burst >= 1, f"burst must be >= 1 bit, got {f.burst}")
        case "link-drop":
            need(0.0 <= f.p <= 1.0, f"p (drop probability) must be in [0, 1], got {_num(f.p)}")
        case "link-delay":
            need(f.delay_ms >= 0, f"delay must be >= 0 ms, got {_num(f.delay_ms)}")
        case "link-jitter":
            need(
                f.max_ms >= 0,
                f"jitter must be >= 0 ms (a delay cannot be negative), got {_num(f.max_ms)}",
            )
        case "memory-bitflip":
            need(f.rate_hz > 0, f"rate must be > 0 per second, got {_num(f.rate_hz)}")
        case "crash":
            need(f.at_tick is not None, "needs at_tick, e.g. crash:1@150")
        case "stall":
            need(f.ms > 0, f"a stall lasts > 0 ms, got {_num(f.ms)}")
            need(
                not (f.at_tick is not None and f.rate_hz),
                "takes at_tick or rate_hz, not both (stall:2:60ms@150 or stall:2:60ms/5s)",
            )
            need(
                f.at_tick is not None or f.rate_hz != 0,
                "needs at_tick or rate_hz (stall:2:60ms@150 or stall:2:60ms/5s)",
            )
            need(f.at_tick is not None or f.rate_hz > 0, f"rate_hz must be > 0, got {f.rate_hz}")
        case "clock-step":
            need(f.ms != 0, "a clock step of 0 ms does nothing (the step is signed, e.g. -5ms)")
            need(f.at_tick is not None, "needs at_tick, e.g. clock-step:2:-5ms@150")
    return f


def parse_fault(text: str, nodes: int) -> Fault:
    """`KIND:TARGET[:PARAM]` as on the firmware-sim command line (SPEC.md)."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")
    return _check(_parse(kind, rest, nodes))


def _parse(kind: str, rest: str, nodes: int) -> Fault:
    if kind == "crash":
        target, at, tick = rest.partition("@")
        if not at:
            raise FaultSpecError("crash takes NODE@TICK, e.g. crash:1@150")
        return Fault("crash", node=_node(target, nodes), at_tick=_tick(tick))
    parts = rest.split(":")
    if len(parts) < 1 or not parts[0]:
        raise FaultSpecError(f"{kind} needs a target: {kind}:TARGET[:PARAM]")
    target, params = parts[0], parts[1:]
    param = params[0] if params else ""
    match kind:
        case "traitor":
            strategy = param or "equivocate"
            if strategy not in TRAITOR_STRATEGIES:
                raise FaultSpecError(f"strategy must be one of {', '.join(TRAITOR_STRATEGIES)}")
            return Fault("traitor", node=_node(target, nodes), strategy=strategy)
        case "link-bitflip":
            return Fault(kind, link=_link(target, nodes), ber=_float(param or "1e-4", "ber"))
        case "link-drop":
            return Fault(kind, link=_link(target, nodes), p=_float(param or "0.01", "p"))
        case "link-delay":
            delay = _float(param or "5ms", "delay", "ms")
            return Fault(kind, link=_link(target, nodes), delay_ms=delay)
        case "link-jitter":
            if not param:
                raise FaultSpecError("link-jitter takes LINK:MAXms, e.g. link-jitter:0-1:3ms")
            jitter = _float(param, "jitter", "ms")
            return Fault(kind, link=_link(target, nodes), max_ms=jitter)
        case "memory-bitflip":
            bits = int(_float(params[1], "bits")) if len(params) > 1 else 1
            if bits not in (1, 2):
                raise FaultSpecError("memory-bitflip bits must be 1 or 2")
            rate = _float(param or "10/s", "rate", "/s")
            return Fault(kind, node=_node(target, nodes), rate_hz=rate, bits=bits)
        case "sensor":
            mode = param or "spike"
            if mode not in SENSOR_MODES:
                raise FaultSpecError(f"sensor mode must be one of {', '.join(SENSOR_MODES)}")
            lo, hi = 0, None
            if len(params) > 1:  # sensor:1:spike:100-200
                first, _, last = params[1].partition("-")
                lo, hi = _tick(first), _tick(last)
            return Fault(kind, node=_node(target, nodes), mode=mode, from_tick=lo, to_tick=hi)
        case "stall":
            return _parse_stall(target, param, nodes)
        case "clock-step":
            step, at, tick = param.partition("@")
            if not step or not at:
                raise FaultSpecError("clock-step takes NODE:±MSms@TICK, e.g. clock-step:2:-5ms@150")
            ms = _float(step, "clock step", "ms")
            return Fault(kind, node=_node(target, nodes), ms=ms, at_tick=_tick(tick))
    # clock-drift
    return Fault(kind, node=_node(target, nodes), ppm=_float(param or "500ppm", "drift", "ppm"))


def _parse_stall(target: str, param: str, nodes: int) -> Fault:
    usage = "stall takes NODE:MSms@TICK or NODE:MSms/PERIOD, e.g. stall:2:60ms@150, stall:2:60ms/5s"
    at, slash = "@" in param, "/" in param
    if at and slash:
        raise FaultSpecError(f"stall: @TICK or /PERIOD, not both ({usage})")
    if not at and not slash:
        raise FaultSpecError(usage)
    length, _, when = param.partition("@" if at else "/")
    ms = _float(length, "stall length", "ms")
    node = _node(target, nodes)
    if at:
        return Fault("stall", node=node, ms=ms, at_tick=_tick(when))
    return Fault("stall", node=node, ms=ms, rate_hz=_period_rate(when))


def fault_from_table(t: Mapping[str, Any], nodes: int) -> Fault:
    """A `[[scenario.fault]]` table of a campaign (SPEC.md field names)."""
    kind = t.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"fault kind must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        common: dict[str, Any] = {"from_tick": int(t.get("from_tick", 0))}
        if t.get("to_tick") is not None:
            common["to_tick"] = int(t["to_tick"])
        return _check(_from_table(kind, t, nodes, common))
    except FaultSpecError:
        raise
    except KeyError as e:
        raise FaultSpecError(f"{kind} fault needs {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise FaultSpecError(f"{kind} fault: {e}") from None


def _from_table(kind: str, t: Mapping[str, Any], nodes: int, common: dict[str, Any]) -> Fault:
    match kind:
        case "traitor":
            strategy = t.get("strategy", "equivocate")
            if strategy not in TRAITOR_STRATEGIES:
                raise FaultSpecError(f"strategy must be one of {', '.join(TRAITOR_STRATEGIES)}")
            return Fault(
                kind,
                node=_node(str(t["node"]), nodes),
                strategy=strategy,
                value=t.get("value"),
                delay_ms=float(t.get("delay_ms", 0.0)),
                **common,
            )
        case "link-bitflip":
            return Fault(
                kind,
                link=_link(str(t["link"]), nodes),
                ber=float(t["ber"]),
                burst=int(t.get("burst", 1)),
                **common,
            )
        case "link-drop":
            return Fault(kind, link=_link(str(t["link"]), nodes), p=float(t["p"]), **common)
        case "link-delay":
            return Fault(
                kind, link=_link(str(t["link"]), nodes), delay_ms=float(t["delay_ms"]), **common
            )
        case "link-jitter":
            return Fault(
                kind, link=_link(str(t["link"]), nodes), max_ms=float(t["max_ms"]), **common
            )
        case "memory-bitflip":
            return Fault(
                kind,
                node=_node(str(t["node"]), nodes),
                rate_hz=float(t["rate_hz"]),
                bits=int(t.get("bits", 1)),
                **common,
            )
        case "crash":
            return Fault(
                kind, node=_node(str(t["node"]), nodes), at_tick=int(t["at_tick"]), **common
            )
        case "sensor":
            mode = t.get("mode", "spike")
            if mode not in SENSOR_MODES:
                raise FaultSpecError(f"sensor mode must be one of {', '.join(SENSOR_MODES)}")
            return Fault(kind, node=_node(str(t["node"]), nodes), mode=mode, **common)
        case "stall":
            if "at_tick" in t and "rate_hz" in t:
                raise FaultSpecError("stall takes at_tick or rate_hz, not both")
            if "at_tick" not in t and "rate_hz" not in t:
                raise FaultSpecError("stall needs at_tick or rate_hz")
            when: dict[str, Any] = (
                {"at_tick": int(t["at_tick"])}
                if "at_tick" in t
                else {"rate_hz": float(t["rate_hz"])}
            )
            if "rate_hz" in when and when["rate_hz"] <= 0:
                raise FaultSpecError(f"stall: rate_hz must be > 0, got {when['rate_hz']}")
            return Fault(
                kind, node=_node(str(t["node"]), nodes), ms=float(t["ms"]), **when, **common
            )
        case "clock-step":
            return Fault(
                kind,
                node=_node(str(t["node"]), nodes),
                ms=float(t["ms"]),
                at_tick=int(t["at_tick"]),
                **common,
            )
    return Fault(kind, node=_node(str(t["node"]), nodes), ppm=float(t["ppm"]), **common)


def validate_run(faults: Iterable[Fault], ticks: int, tick_hz: float) -> None:
    """Refuse faults that cannot happen inside a run of `ticks` ticks at `tick_hz`.

    A crash, stall or clock step at a tick past the end, a fault window that
    opens after the run, or a stall longer than the whole run would leave a run
    that "passed" without the fault it was asked to survive.
    """
    run_ms = ticks * 1000.0 / tick_hz
    for f in faults:
        what = f.describe()
        if f.at_tick is not None and f.at_tick >= ticks:
            raise FaultSpecError(
                f"{what}: tick {f.at_tick} is beyond the run (ticks 0..{ticks - 1})"
            )
        if f.from_tick >= ticks:
            raise FaultSpecError(
                f"{what}: from_tick {f.from_tick} is beyond the run (ticks 0..{ticks - 1})"
            )
        if f.kind == "stall" and f.ms > run_ms:
            raise FaultSpecError(
                f"{what}: a {_num(f.ms)} ms stall is longer than the run "
                f"({ticks} ticks at {_num(tick_hz)} Hz = {_num(run_ms)} ms)"
            )


def faulty_nodes(faults: list[Fault]) -> list[int]:
    """Boards the checker leaves out: traitors (they may say anything)."""
    return sorted({f.node for f in faults if f.kind == "traitor" and f.node is not None})


def fault_budget(faults: list[Fault]) -> tuple[int, list[str]]:
    """How many faults count against the bound, and why each.

    A traitor counts once, and link faults on its own links are part of it. A
    link fault between two loyal boards counts like one more faulty board (SPEC.md).
    A crash is a benign omission fault of a loyal board and counts too, and so do
    a stall and a clock step: for those ticks the board is late or silent, a
    benign timing fault of that board. Memory faults and clock drift are meant to
    be turned benign by the board itself (ECC, crash-on-inconsistency, clock
    sync) and are reported, not counted.
    """
    traitors = set(faulty_nodes(faults))
    reasons = [f"board {t} is a traitor" for t in sorted(traitors)]
    counted = set(traitors)
    for f in faults:
        if f.kind.startswith("link-"):
            ends = f.link_ends()
            if f.link == "*":
                reasons.append(f"{f.describe()}: every link, beyond any bound")
                return 99, reasons
            if not set(ends) & traitors:
                pair = min(ends)
                if pair not in counted:
                    counted.add(pair)
                    reasons.append(
                        f"{f.describe()} is between loyal boards: counts as board {pair} faulty"
                    )
        if f.kind == "crash" and f.node is not None and f.node not in counted:
            counted.add(f.node)
            reasons.append(f"{f.describe()}: a crashed board counts while it is down")
        if f.kind in TIMING_KINDS and f.node is not None and f.node not in counted:
            counted.add(f.node)
            reasons.append(
                f"{f.describe()}: a benign timing fault of board {f.node} (late or silent)"
            )
    return len(counted), reasons
