"""The checker's view of diagnosis and modes: were isolations and algorithm switches agreed,
and was a loyal board ever isolated?

Fed the loyal boards' `evidence` / `isolate` / `readmit` events (by `hil.checks.check`
and the streaming checker alike). An isolation is safe only if it is itself agreed:
every loyal board that ran the whole time logs the same peer isolated (and
re-admitted) at the same tick. A loyal peer isolated by any loyal board is a
false isolation. Detection latency is counted from the first tick a loyal board
held evidence against the peer (its first observed equivocation) or, under OM,
from the tick whose misbehaviour started the p/r count that isolated it
(`first_fault_tick` of the `isolate` event).

A planned degradation (`mode` events, docs/design.md) is checked the same way: every
loyal board that ran the whole time switches to the same algorithm at the same tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("isolate", "readmit")
#: a `mode` event is kept as (MODE, algorithm index in MODE_ALGORITHMS, tick)
MODE = "mode"
MODE_ALGORITHMS = ("om", "omh", "sm")


@dataclass
class IsolationLedger:
    loyal: list[int]
    #: per loyal board, the (kind, peer, tick) it logged
    seen: dict[int, set[tuple[str, int, int]]] = field(default_factory=dict)
    #: per peer, the first tick any loyal board logged evidence against it
    first_evidence: dict[int, int] = field(default_factory=dict)
    #: loyal boards that joined more than once (a restart forgets the diagnosis state)
    joins: dict[int, int] = field(default_factory=dict)

    def event(self, node: int, ev: Mapping[str, Any]) -> None:
        if node not in self.loyal:
            return
        kind, tick, peer = ev.get("event"), ev.get("tick"), ev.get("peer")
        if kind == "joined":
            self.joins[node] = self.joins.get(node, 0) + 1
        if kind == MODE and isinstance(tick, int) and ev.get("algorithm") in MODE_ALGORITHMS:
            peer = MODE_ALGORITHMS.index(str(ev["algorithm"]))
        if not isinstance(tick, int) or not isinstance(peer, int):
            return
        first = ev.get("first_fault_tick")  # OM's p/r count: the tick its count started
        if kind == "evidence" or (kind == "isolate" and isinstance(first, int)):
            start = tick if kind == "evidence" else int(first)  # type: ignore[arg-type]
            self.first_evidence[peer] = min(start, self.first_evidence.get(peer, start))
        if kind in KINDS or kind == MODE:
            self.seen.setdefault(node, set()).add((str(kind), peer, tick))

    def verdict(
        self, last_tick: Mapping[int, int]
    ) -> tuple[dict[str, Any], list[tuple[int, list[int], str]]]:
        """(the report's `isolation` summary, problems found as (tick, boards, one line)).

        `last_tick`: each loyal board's last decided tick; an event after the
        earliest of them is not compared (a board that stopped first never saw it).
        """
        whole = [i for i in self.loyal if self.joins.get(i, 1) <= 1 and i in last_tick]
        cutoff = min((last_tick[i] for i in whole), default=-1) + 1
        problems: list[tuple[int, list[int], str]] = []
        views = {i: {e for e in self.seen.get(i, set()) if e[2] <= cutoff} for i in whole}
        union = set().union(*views.values()) if views else set()
        for kind, peer, tick in sorted(union, key=lambda e: (e[2], e[1], e[0])):
            missing = [i for i in whole if (kind, peer, tick) not in views[i]]
            if missing:
                what = f"switch to {MODE_ALGORITHMS[peer]}" if kind == MODE else f"{kind} of {peer}"
                problems.append((tick, missing, f"{what} not logged by boards {missing}"))
        isolates = {(p, t) for ev in self.seen.values() for k, p, t in ev if k == "isolate"}
        false = sorted((p, t) for p, t in isolates if p in self.loyal)
        for peer, tick in false:
            problems.append((tick, [peer], f"loyal board {peer} isolated (false isolation)"))
        return self._summary(union, len(false)), problems

    def _summary(self, union: Iterable[tuple[str, int, int]], false: int) -> dict[str, Any]:
        isolations = sorted((t, p) for k, p, t in union if k == "isolate")
        modes = [
            {"algorithm": MODE_ALGORITHMS[a], "tick": t}
            for t, a in sorted((t, a) for k, a, t in union if k == MODE)
        ]
        latency: dict[str, int] = {}
        for tick, peer in isolations:
            start = self.first_evidence.get(peer)
            if start is not None and str(peer) not in latency:
                latency[str(peer)] = tick - start
        return {
            "isolations": [{"peer": p, "tick": t} for t, p in isolations],
            "readmissions": [{"peer": p, "tick": t} for k, p, t in sorted(union) if k == "readmit"],
            "first_evidence": {str(p): t for p, t in sorted(self.first_evidence.items())},
            "detection_latency": latency,
            "false_isolations": false,
            **({"modes": modes} if modes else {}),
        }


def describe(iso: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """An `isolation` summary in words: (isolations, re-admissions), for the run summary and
    the report page alike. The latency goes with each peer's first isolation only."""
    latency = dict(iso.get("detection_latency", {}))
    isolated = []
    for x in iso.get("isolations", []):
        first = latency.pop(str(x["peer"]), None)
        after = "" if first is None else f" ({first} ticks after the first fault seen)"
        isolated.append(f"board {x['peer']} at tick {x['tick']}{after}")
    back = [f"board {x['peer']} at tick {x['tick']}" for x in iso.get("readmissions", [])]
    return isolated, back
