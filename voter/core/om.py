"""OM(m), the oral-messages algorithm of Lamport, Shostak and Pease (1982), round by round.

The node keeps the EIG tree: val(σ) is what it received under label σ (the
commander, then each relayer). In round r it relays every label of length r-1
to each node not on it, whether or not the label was received (a missing
message takes the default, and a lieutenant that got nothing still acts as the
commander of its sub-instance with that default, as LSP define). After m+1
rounds the tree is resolved bottom-up by LSP's majority. That resolution is
exactly the recursive OM(m): at label σ the node is a lieutenant of the
sub-instance commanded by σ[-1], and combines the value it received directly
with its decisions in the sub-sub-instances of every other lieutenant.

No I/O, no clock, no randomness: frames in, frames out, decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import cast

from voter.core.memhit import flip_words
from voter.core.protocol import (
    Counters,
    Entry,
    Params,
    Rejected,
    check_path,
    labels,
    path_ok,
    valid_paths,
)
from voter.core.values import Domain, Invalid, Value
from voter.core.vote import majority


@lru_cache(maxsize=64)
def _relay_plan(
    params: Params, me: int, round_no: int
) -> tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]:
    """Per label relayed in `round_no`: the label, the relayed label, its destinations.

    The same every tick for a node, so it is worked out once rather than per tick.
    """
    return tuple(
        (sigma, (*sigma, me), tuple(j for j in range(params.nodes) if j != me and j not in sigma))
        for c in params.commanders
        for sigma in labels(params.nodes, c, round_no - 1, me)
    )


class OMNode:
    """One node's OM(m) state for one tick, for every commander of `params` at once."""

    def __init__(
        self,
        params: Params,
        me: int,
        domain: Domain,
        own_value: Value = None,
        tick: int = 0,
    ) -> None:
        self.params = params
        self.me = me
        self.domain = domain
        self.own_value = own_value
        self.tick = tick
        self.counters = Counters()
        self._valid = valid_paths(params, me)
        self._val: dict[tuple[int, ...], Value] = {}
        self._round = 0

    # -- sending ---------------------------------------------------------------
    def outgoing(self, round_no: int) -> dict[int, list[Entry]]:
        """The entries this node sends in `round_no`, per destination."""
        p = self.params
        out: dict[int, list[Entry]] = {j: [] for j in range(p.nodes) if j != self.me}
        if round_no == 1:
            if self.me in p.commanders:
                for j in out:
                    out[j].append(Entry((self.me,), self.own_value))
        elif 2 <= round_no <= p.rounds:
            val, default = self._val, p.default
            for sigma, relayed, dsts in _relay_plan(p, self.me, round_no):
                entry = Entry(relayed, val.get(sigma, default))
                for j in dsts:
                    out[j].append(entry)
        self.counters.sent += sum(len(es) for es in out.values())
        return out

    # -- receiving -------------------------------------------------------------
    def receive(self, round_no: int, src: int, entries: Sequence[Entry]) -> list[Rejected]:
        """Take the entries that came in on the link from `src` in `round_no`."""
        rejected: list[Rejected] = []
        for index, e in enumerate(entries):
            reason = (
                None
                if path_ok(self._valid, round_no, src, e.path)
                else check_path(self.params, self.me, round_no, src, e.path)
            )
            value: Value = None
            if reason is None and e.path in self._val:
                reason = "duplicate label"
            if reason is None:
                try:
                    value = self.domain.normalize(e.value)
                except Invalid:
                    reason = "value outside domain"
            if reason is not None:
                self.counters.reject(reason)
                rejected.append(Rejected(round_no, src, reason, index))
                continue
            self.counters.received += 1
            self._val[e.path] = value
        return rejected

    # -- deciding --------------------------------------------------------------
    def decide(self) -> dict[int, Value]:
        """Every commander's agreed value (own value for the node's own instance)."""
        return {
            c: self.own_value if c == self.me else self._resolve((c,))
            for c in self.params.commanders
        }

    def _resolve(self, sigma: tuple[int, ...]) -> Value:
        p = self.params
        direct = self._val.get(sigma, p.default)
        if len(sigma) == p.rounds:
            return direct
        votes = [direct]
        for j in range(p.nodes):
            if j != self.me and j not in sigma:
                votes.append(self._resolve((*sigma, j)))
        return majority(votes, p.default)

    def flip_table(self, flips: tuple[tuple[int, int], ...]) -> None:
        """A memory error in the received table (HIL injection): COM and the store both see it."""
        keys = sorted(self._val)
        flipped = flip_words([self._val[k] for k in keys], flips)
        assert isinstance(flipped, list)
        self._val = {k: cast(Value, v) for k, v in zip(keys, flipped, strict=True)}

    def received_values(self) -> Mapping[tuple[int, ...], Value]:
        """The EIG tree as received (for traces and the independent monitor path)."""
        return dict(self._val)
