"""Shipped test tooling (as trio.testing): run a whole interactive-consistency tick in memory.

The same loyal nodes as on the boards, joined by the in-memory round driver;
traitors get an adversary. Used by the test suite, `hil`, and benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voter.core.adversary import Adversary, ChainForge, RoundNode, Traitor
from voter.core.crypto import KeyRing
from voter.core.ic import Decision, decide, ic_params, make_node
from voter.core.protocol import Algorithm, Params
from voter.core.rounds import LinkFilter, run_tick
from voter.core.values import ReadingDomain, Value
from voter.simkeys import board_keys, cluster_keys

__all__ = ["ICRun", "board_keys", "cluster_keys", "run_ic"]


@dataclass
class ICRun:
    params: Params
    decisions: dict[int, Decision]
    messages: int
    rounds: int
    traitors: tuple[int, ...]

    def loyal(self) -> list[int]:
        return [i for i in sorted(self.decisions) if i not in self.traitors]

    def agreement(self) -> bool:
        vectors = {self.decisions[i].vector for i in self.loyal()}
        return len(vectors) <= 1

    def validity(self, readings: Mapping[int, Value]) -> bool:
        return all(
            self.decisions[i].vector[j] == readings[j] for i in self.loyal() for j in self.loyal()
        )


def run_ic(
    nodes: int,
    m: int,
    algorithm: Algorithm,
    readings: Mapping[int, Value],
    traitors: Mapping[int, Adversary] | None = None,
    *,
    channels: int = 3,
    tick: int = 0,
    keys: tuple[KeyRing, KeyRing] | None = None,
    boards: Mapping[int, KeyRing] | None = None,
    link: LinkFilter | None = None,
) -> ICRun:
    """One IC tick: every node commands `readings[i]`; traitors send what their adversary says.

    `boards` gives each node a ring of its own (per-node crypto caches, as on real
    boards); otherwise all loyal nodes share one ring from `keys`.
    """
    traitors = dict(traitors or {})
    params = ic_params(nodes, m, algorithm)
    domain = ReadingDomain(channels)
    loyal_keys, coalition_keys = keys or cluster_keys(nodes, sorted(traitors))
    forge = ChainForge(params, coalition_keys, domain, tick) if algorithm == "sm" else None
    loyal_nodes = {
        i: make_node(params, i, domain, readings.get(i), tick, boards[i] if boards else loyal_keys)
        for i in range(nodes)
    }
    driven: dict[int, RoundNode] = dict(loyal_nodes)
    for t, adversary in traitors.items():
        driven[t] = Traitor(loyal_nodes[t], adversary, forge)
    run = run_tick(driven, params.rounds, link=link)
    decisions = {
        i: decide(
            tick, i, readings.get(i), run.decisions[i], loyal_nodes[i].counters, nodes, channels
        )
        for i in range(nodes)
    }
    return ICRun(params, decisions, run.messages, run.rounds, tuple(sorted(traitors)))
