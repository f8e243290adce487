"""Interactive consistency: every node commands its own reading; then the vote.

All N instances run in the same rounds and share frames (one per link per
round). The agreed vector holds ERROR (None) where an entry could not be
decided; the vote never turns ERROR into a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voter.core.crypto import KeyRing
from voter.core.om import OMNode
from voter.core.protocol import Algorithm, Counters, Params, is_oral, slot_setters
from voter.core.sm import SMNode
from voter.core.values import ERROR, Domain, Value
from voter.core.vote import vote_readings


def ic_params(nodes: int, m: int, algorithm: Algorithm, cluster: str = "voter") -> Params:
    """Parameters of an interactive-consistency tick: all nodes command, default ERROR."""
    return Params(nodes, m, algorithm, tuple(range(nodes)), ERROR, cluster)


def make_node(
    params: Params,
    me: int,
    domain: Domain,
    own_value: Value,
    tick: int,
    keys: KeyRing | None = None,
) -> OMNode | SMNode:
    """The loyal protocol node for `params.algorithm` (OMH is OMNode too; SM needs a key ring)."""
    if is_oral(params.algorithm):
        return OMNode(params, me, domain, own_value, tick)
    if keys is None:
        raise ValueError("SM needs a KeyRing")
    return SMNode(params, me, domain, keys, own_value, tick)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a node decided in one tick (the body of a decision-log line)."""

    tick: int
    node: int
    local: Value
    vector: tuple[Value, ...]
    output: tuple[float | None, ...]
    sent: int
    received: int
    rejected: int

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        tick: int,
        node: int,
        local: Value,
        vector: tuple[Value, ...],
        output: tuple[float | None, ...],
        sent: int,
        received: int,
        rejected: int,
    ) -> None:
        _decision_tick(self, tick)
        _decision_node(self, node)
        _decision_local(self, local)
        _decision_vector(self, vector)
        _decision_output(self, output)
        _decision_sent(self, sent)
        _decision_received(self, received)
        _decision_rejected(self, rejected)

    @property
    def messages(self) -> int:
        """Value messages this node sent plus received in the tick (18 for OM(1), N=4)."""
        return self.sent + self.received


(
    _decision_tick,
    _decision_node,
    _decision_local,
    _decision_vector,
    _decision_output,
    _decision_sent,
    _decision_received,
    _decision_rejected,
) = slot_setters(Decision)


def agreed_vector(decisions: Mapping[int, Value], nodes: int) -> tuple[Value, ...]:
    return tuple([decisions.get(j, ERROR) for j in range(nodes)])


def decide(
    tick: int,
    me: int,
    local: Value,
    decisions: Mapping[int, Value],
    counters: Counters,
    nodes: int,
    channels: int,
) -> Decision:
    vector = agreed_vector(decisions, nodes)
    return Decision(  # positional: a keyword call costs more in pure Python
        tick,
        me,
        local,
        vector,
        vote_readings(vector, channels),
        counters.sent,
        counters.received,
        counters.rejected,
    )


def as_json_vector(vector: Sequence[Value]) -> list[object]:
    return [list(v) if isinstance(v, tuple) else v for v in vector]
