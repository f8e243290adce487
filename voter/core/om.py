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

OMH(m) (algorithm "omh", Lincoln and Rushby's repair of Thambidurai-Park) is
the same node with two changes, so a crashed board costs one node, not two:
a label that never arrived is MANIFEST and left out of every majority instead
of voting for the default, and a loyal relayer that holds MANIFEST relays
ERROR (their "R": a report that its commander was manifest to it), which does
vote. Without that report a Byzantine lieutenant could steer each receiver of a
silent commander alone (TP's flaw, N=5, m=1). Message counts are OM's.

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
from voter.core.values import ERROR, MANIFEST, Domain, Invalid, Value
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
        #: OMH: manifest labels leave the majority; what a relayer sends for one
        self.hybrid = params.algorithm == "omh"
        self._missing: Value = ERROR if self.hybrid else params.default

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
            val, default = self._val, self._missing
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
        resolve = self._resolve_hybrid if self.hybrid else self._resolve
        return {
            c: self.own_value if c == self.me else resolve((c,)) for c in self.params.commanders
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

    def _resolve_hybrid(self, sigma: tuple[int, ...]) -> Value:
        """OMH's decision at the top: ERROR's report or no vote at all becomes the default."""
        got = self._hybrid_majority(sigma)
        return self.params.default if got is MANIFEST or got is ERROR else got

    def _hybrid_majority(self, sigma: tuple[int, ...]) -> Value:
        """The majority of the non-manifest votes at `sigma`; MANIFEST when none is left.

        Each vote is a lieutenant's entry as every loyal node sees it, this node's
        own included (LSP's invariant, which makes loyal vectors identical): at
        the leaves the raw relayed value (ERROR is a report, so it votes; a
        missing one is MANIFEST); above them the sub-instance's outcome, where
        ERROR means its commander was manifest, so it is MANIFEST there.
        """
        p = self.params
        leaves = len(sigma) + 1 == p.rounds
        own = self._val.get(sigma, ERROR)  # what this node relayed for sigma
        votes = [MANIFEST if own is ERROR and not leaves else own]
        for j in range(p.nodes):
            if j != self.me and j not in sigma:
                child = (*sigma, j)
                if leaves:
                    votes.append(self._leaf(child))
                else:
                    sub = self._hybrid_majority(child)
                    votes.append(MANIFEST if sub is ERROR else sub)
        present = [v for v in votes if v is not MANIFEST]
        return majority(present, ERROR) if present else MANIFEST

    def _leaf(self, label: tuple[int, ...]) -> Value:
        """A relayed value as it votes: ERROR (a report) does, a missing message does not.

        Thambidurai-Park's original rule left the report out too; a test switches
        this back to theirs and the search finds their counterexample.
        """
        return self._val.get(label, MANIFEST)

    def flip_table(self, flips: tuple[tuple[int, int], ...]) -> None:
        """A memory error in the received table (HIL injection): COM and the store both see it."""
        keys = sorted(self._val)
        flipped = flip_words([self._val[k] for k in keys], flips)
        assert isinstance(flipped, list)
        self._val = {k: cast(Value, v) for k, v in zip(keys, flipped, strict=True)}

    def received_values(self) -> Mapping[tuple[int, ...], Value]:
        """The EIG tree as received (for traces and the independent monitor path)."""
        return dict(self._val)
