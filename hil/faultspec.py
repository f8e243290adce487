"""The one fault vocabulary (SPEC.md): `--fault KIND:TARGET[:PARAM]` strings and campaign tables.

A `Fault` knows where it is carried out: link faults go to the link fabric,
node faults become HIL control commands, a crash is done by the rig (SIGKILL,
then a restart as systemd would). It also knows which board it makes faulty,
so the checker and the fault-bound accounting agree with the injection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = (
    "traitor",
    "link-bitflip",
    "link-drop",
    "link-delay",
    "memory-bitflip",
    "crash",
    "clock-drift",
    "sensor",
)
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
_LINK_RE = re.compile(r"^(\*|\d+-\d+|\d+>\d+)$")


class FaultSpecError(ValueError):
    """A fault that cannot be parsed (one line for the user)."""


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

    def describe(self) -> str:
        match self.kind:
            case "traitor":
                return f"traitor:{self.node}:{self.strategy}"
            case "link-bitflip":
                return f"link-bitflip:{self.link}:{self.ber:g}"
            case "link-drop":
                return f"link-drop:{self.link}:{self.p:g}"
            case "link-delay":
                return f"link-delay:{self.link}:{self.delay_ms:g}ms"
            case "memory-bitflip":
                return f"memory-bitflip:{self.node}:{self.rate_hz:g}/s:{self.bits}"
            case "crash":
                return f"crash:{self.node}@{self.at_tick}"
            case "clock-drift":
                return f"clock-drift:{self.node}:{self.ppm:g}ppm"
            case "sensor":
                window = "" if self.to_tick is None else f":{self.from_tick}-{self.to_tick}"
                return f"sensor:{self.node}:{self.mode}{window}"
        return self.kind

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
        if self.kind == "sensor":
            return {"cmd": "sensor", "mode": self.mode, **window}
        return None

    def fabric_fault(self, tick_s: float) -> dict[str, Any] | None:
        """The link-fabric fault for a link fault, with its tick window turned into seconds."""
        if not self.kind.startswith("link-"):
            return None
        spec: dict[str, Any] = {
            "kind": self.kind,
            "link": self.link,
            "ber": self.ber,
            "burst": self.burst,
            "p": self.p,
            "delay_ms": self.delay_ms,
        }
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


def parse_fault(text: str, nodes: int) -> Fault:
    """`KIND:TARGET[:PARAM]` as on the firmware-sim command line (SPEC.md)."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "crash":
        target, at, tick = rest.partition("@")
        if not at:
            raise FaultSpecError("crash takes NODE@TICK, e.g. crash:1@150")
        return Fault("crash", node=_node(target, nodes), at_tick=int(_float(tick, "tick")))
    parts = rest.split(":")
    if len(parts) < 1 or not parts[0]:
        raise FaultSpecError(f"{kind} needs a target: {kind}:TARGET[:PARAM]")
    target, params = parts[0], parts[1:]
    param = params[0] if params else ""
    if kind == "traitor":
        strategy = param or "equivocate"
        if strategy not in TRAITOR_STRATEGIES:
            raise FaultSpecError(f"strategy must be one of {', '.join(TRAITOR_STRATEGIES)}")
        return Fault("traitor", node=_node(target, nodes), strategy=strategy)
    if kind == "link-bitflip":
        return Fault(kind, link=_link(target, nodes), ber=_float(param or "1e-4", "ber"))
    if kind == "link-drop":
        return Fault(kind, link=_link(target, nodes), p=_float(param or "0.01", "p"))
    if kind == "link-delay":
        return Fault(
            kind, link=_link(target, nodes), delay_ms=_float(param or "5ms", "delay", "ms")
        )
    if kind == "memory-bitflip":
        bits = int(_float(params[1], "bits")) if len(params) > 1 else 1
        if bits not in (1, 2):
            raise FaultSpecError("memory-bitflip bits must be 1 or 2")
        return Fault(
            kind,
            node=_node(target, nodes),
            rate_hz=_float(param or "10/s", "rate", "/s"),
            bits=bits,
        )
    if kind == "sensor":
        mode = param or "spike"
        if mode not in SENSOR_MODES:
            raise FaultSpecError(f"sensor mode must be one of {', '.join(SENSOR_MODES)}")
        lo, hi = 0, None
        if len(params) > 1:  # sensor:1:spike:100-200
            first, _, last = params[1].partition("-")
            lo, hi = int(_float(first, "tick")), int(_float(last, "tick"))
        return Fault(kind, node=_node(target, nodes), mode=mode, from_tick=lo, to_tick=hi)
    # clock-drift
    return Fault(kind, node=_node(target, nodes), ppm=_float(param or "500ppm", "drift", "ppm"))


def fault_from_table(t: Mapping[str, Any], nodes: int) -> Fault:
    """A `[[scenario.fault]]` table of a campaign (SPEC.md field names)."""
    kind = t.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"fault kind must be one of {', '.join(KINDS)}, got {kind!r}")
    common: dict[str, Any] = {"from_tick": int(t.get("from_tick", 0))}
    if t.get("to_tick") is not None:
        common["to_tick"] = int(t["to_tick"])
    try:
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
            case _:
                return Fault(kind, node=_node(str(t["node"]), nodes), ppm=float(t["ppm"]), **common)
    except KeyError as e:
        raise FaultSpecError(f"{kind} fault needs {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise FaultSpecError(f"{kind} fault: {e}") from None


def faulty_nodes(faults: list[Fault]) -> list[int]:
    """Boards the checker leaves out: traitors (they may say anything)."""
    return sorted({f.node for f in faults if f.kind == "traitor" and f.node is not None})


def fault_budget(faults: list[Fault]) -> tuple[int, list[str]]:
    """How many faults count against the bound, and why each.

    A traitor counts once, and link faults on its own links are part of it. A
    link fault between two loyal boards counts like one more faulty board (SPEC.md).
    A crash is a benign omission fault of a loyal board and counts too; memory
    faults and clock drift are meant to be turned benign by the board itself
    (ECC, crash-on-inconsistency, clock sync) and are reported, not counted.
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
    return len(counted), reasons
