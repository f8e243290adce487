"""The runtime fault-bound monitor and the planned degradation OM(m) <-> SM(m); pure.

Every input is agreed data: the agreed vector a board decided and the set of
peers diagnosis isolated (itself a function of agreed vectors). So every loyal
board that decided tick k computes the same census, the same margin and the
same plan for tick k + 2, and the switch needs no extra message
(docs/design.md, "Planned degradation"). What this module must not do: look at
anything one board saw alone (its drops, its timing), or keep history a
restarted board could not rebuild. The plan for tick k + 2 is a function of the
vector of tick k only, so a board that missed a tick re-learns the mode from
the next vector it decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voter.core.protocol import Algorithm, hybrid_bound_holds, is_oral, oral_bound
from voter.core.values import Value

#: ticks between the agreed vector that shows a condition and the switch it causes: tick
#: k's vector is confirmed during round 1 of k + 1, so k + 2 is the first tick every board
#: that confirmed k can open under the new algorithm
SWITCH_DELAY_TICKS = 2


@dataclass(frozen=True, slots=True)
class DegradeConfig:
    """`[degrade]` in the cluster file: on when present."""

    #: the algorithm to fall back to when one more fault would break the running one
    to: Algorithm = Algorithm.SM


@dataclass(frozen=True, slots=True)
class Census:
    """Peers observed faulty in one agreed vector, by class.

    `manifest`: ERROR entries of peers that are not isolated (silent, crashed, late,
    undecodable: every loyal board sees the same ERROR). `isolated`: peers diagnosis
    shut out (proven equivocators: asymmetric faults that are now ERROR to all).
    Symmetric and hidden asymmetric faults leave no mark in an agreed vector; the
    margin is what is left for them.
    """

    manifest: int = 0
    isolated: int = 0

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(self, manifest: int = 0, isolated: int = 0) -> None:
        object.__setattr__(self, "manifest", manifest)
        object.__setattr__(self, "isolated", isolated)

    @property
    def total(self) -> int:
        return self.manifest + self.isolated


def census(vector: Sequence[Value], isolated: Iterable[int]) -> Census:
    """The census of one agreed vector (isolated peers' entries are already ERROR in it)."""
    out = frozenset(isolated)
    manifest = sum(1 for j, v in enumerate(vector) if v is None and j not in out)
    return Census(manifest, len(out))


def margin(algorithm: str, nodes: int, m: int, c: Census) -> int:
    """How many more arbitrary (asymmetric) faults `algorithm` tolerates on top of `c`;
    negative when the observed faults alone already break its bound.

    OM(m): N >= 3f + 1 and f <= m, every fault counts. OMH(m): N > 2a + 2s + b + m,
    a <= m; a silent peer is manifest (b), an isolated one is counted as asymmetric
    (its relays still reach the oral majorities). SM(m): N >= f + 2 and at most m
    signers lie; a peer that signs nothing (silent, or isolated: its entry and its
    relays are refused) cannot lie, so it costs a node but not a round.
    """
    if algorithm == Algorithm.OMH:
        b, a = c.manifest, c.isolated
        if not hybrid_bound_holds(nodes, m, a, 0, b):
            return -1
        extra = 0
        while hybrid_bound_holds(nodes, m, a + extra + 1, 0, b):
            extra += 1
        return extra
    if is_oral(algorithm):
        return min(m, oral_bound(nodes)) - c.total
    return min(m, nodes - 2 - c.total)


def plan(base: Algorithm, fallback: Algorithm | None, nodes: int, m: int, c: Census) -> Algorithm:
    """The algorithm to run SWITCH_DELAY_TICKS after the vector that gave `c`.

    The base algorithm while it tolerates one more fault; the fallback when it does
    not and the fallback tolerates more; the base again once the faulty peers are back
    (re-admitted, or their entries no longer ERROR). No memory: see the module doc.
    """
    if fallback is None or margin(base, nodes, m, c) >= 1:
        return base
    if margin(fallback, nodes, m, c) > margin(base, nodes, m, c):
        return fallback
    return base


#: where a `mode` event's plan came from: a confirmed agreed vector, or (a board that lost
#: track) the frames of f + 1 peers, so at least one loyal board, running the other algorithm
AGREED = "agreed"
PEERS = "peers"


@dataclass
class ModeMonitor:
    """One board's view of the bound and of which algorithm each coming tick runs.

    The driver calls `observe` when it decides tick k (census and margin), `confirm`
    when round 1 of k + 1 shows N - f boards hold the same vector (then, and only then,
    k plans k + 2), `lost` when f + 1 peers' frames of k were of the other algorithm,
    and `open` when a tick opens.
    """

    me: int
    nodes: int
    m: int
    base: Algorithm
    #: the algorithm to degrade to (None: monitor only, never switch, log nothing)
    fallback: Algorithm | None = None
    #: tick -> (the algorithm it runs, why, the census behind it), for ticks planned ahead
    planned: dict[int, tuple[Algorithm, str, Census]] = field(default_factory=dict)
    #: tick -> the census of this board's vector of that tick (until it is confirmed)
    censuses: dict[int, Census] = field(default_factory=dict)
    last: Census = Census()
    last_margin: int | None = None
    #: the algorithm of the last tick opened (None before the first)
    running: Algorithm | None = None

    def algorithm_at(self, tick: int) -> Algorithm:
        """The algorithm tick `tick` runs as far as this board knows: its plan, else the
        algorithm running now (the base before the first tick)."""
        got = self.planned.get(tick)
        if got is not None:
            return got[0]
        return self.base if self.running is None else self.running

    def sure_of(self, tick: int) -> bool:
        """Does this board know which algorithm `tick` runs? Yes for the cluster's first
        ticks (no vector before them: the base) and when a confirmed agreed vector planned
        it; otherwise it must not publish the tick (docs/design.md, "Planned degradation")."""
        if self.fallback is None or tick < SWITCH_DELAY_TICKS:
            return True
        got = self.planned.get(tick)
        return got is not None and got[1] == AGREED

    def observe(
        self, tick: int, vector: Sequence[Value], isolated: Iterable[int]
    ) -> list[dict[str, Any]]:
        """This board decided `tick`: its census and margin (a `bound` event on a change)."""
        c = census(vector, isolated)
        running = self.running or self.base
        now = margin(running, self.nodes, self.m, c)
        changed = now != self.last_margin
        self.last, self.last_margin = c, now
        if self.fallback is None:
            return []
        self.censuses[tick] = c
        for old in [t for t in self.censuses if t < tick - SWITCH_DELAY_TICKS]:
            del self.censuses[old]
        return [self._bound_event(tick, running, now, c)] if changed else []

    def confirm(self, tick: int) -> None:
        """N - f boards hold our vector of `tick`: the plan it makes is the cluster's."""
        c = self.censuses.pop(tick, None)
        if self.fallback is None or c is None:
            return
        target = plan(self.base, self.fallback, self.nodes, self.m, c)
        self.planned[tick + SWITCH_DELAY_TICKS] = (target, AGREED, c)
        for old in [t for t in self.planned if t < tick]:
            del self.planned[old]

    def lost(self, tick: int, peers: int, threshold: int) -> None:
        """`peers` peers sent frames of the other algorithm in `tick`: with `threshold` (f + 1)
        of them a loyal board runs it, so this board lost track: it follows from tick + 1,
        unless a confirmed vector already planned that tick."""
        if self.fallback is None or peers < threshold:
            return
        now = self.running or self.base
        other = self.base if now == self.fallback else self.fallback
        for t in (tick + 1, tick + SWITCH_DELAY_TICKS):
            got = self.planned.get(t)
            if got is None or got[1] != AGREED:
                self.planned[t] = (other, PEERS, self.last)

    def open(self, tick: int) -> list[dict[str, Any]]:
        """Tick `tick` opens: the algorithm it runs, and a `mode` event if that is a switch."""
        alg = self.algorithm_at(tick)
        got = self.planned.get(tick)
        prev, self.running = self.running, alg
        if prev is None or prev == alg or self.fallback is None or got is None:
            return []
        _, why, c = got
        return [
            {
                "event": "mode",
                "node": self.me,
                "tick": tick,
                "algorithm": str(alg),
                "from": str(prev),
                "why": why,
                "manifest": c.manifest,
                "isolated": c.isolated,
            }
        ]

    def _bound_event(self, tick: int, running: Algorithm, now: int, c: Census) -> dict[str, Any]:
        return {
            "event": "bound",
            "node": self.me,
            "tick": tick,
            "algorithm": str(running),
            "margin": now,
            "manifest": c.manifest,
            "isolated": c.isolated,
        }

    def status(self) -> str:
        """For STATUS=: the running algorithm and how many more faults its bound allows."""
        alg = self.running or self.base
        if self.last_margin is None:
            return f"mode {alg}"
        c = self.last
        return (
            f"mode {alg} margin {self.last_margin} (manifest {c.manifest}, isolated {c.isolated})"
        )


def sizing_algorithm(algorithm: Algorithm, degrade: DegradeConfig | None) -> Algorithm:
    """The algorithm whose frames size the timing budget: the fallback's (signed frames
    are the larger) when the cluster may switch to it."""
    return algorithm if degrade is None else degrade.to


def parse_degrade(algorithm: Algorithm, to: object) -> DegradeConfig:
    """`[degrade] to = "sm"` for an OM or OMH cluster (ValueError with the one line to print)."""
    if to != Algorithm.SM:
        raise ValueError(f'to must be "sm", got {to!r}')
    if not is_oral(algorithm):
        raise ValueError(f'needs algorithm "om" or "omh" (got {str(algorithm)!r})')
    return DegradeConfig(Algorithm.SM)
