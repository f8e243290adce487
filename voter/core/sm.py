"""SM(m), the signed-messages algorithm of LSP (1982), in its round-by-round (Dolev-Strong) form.

In round r a node accepts a value that carries a valid chain of exactly r
Ed25519 signatures (commander first, then each relayer, the link's peer last)
that does not already contain the node. A value not seen before for that
commander is added to V; if r <= m the node appends its own signature and
relays it to every node not yet on the chain. After m+1 rounds it decides
choice(V). A value already in V changes nothing, so its chain is not even
verified (which saves crypto without changing the outcome).

No I/O, no clock, no randomness: keys come in through the KeyRing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from voter.core.crypto import KeyRing, signed_bytes
from voter.core.memhit import flip_words
from voter.core.protocol import Counters, Entry, Params, Rejected, check_path, path_ok, valid_paths
from voter.core.values import Domain, Invalid, Value
from voter.core.vote import choice


class SMNode:
    """One node's SM(m) state for one tick, for every commander of `params` at once."""

    def __init__(
        self,
        params: Params,
        me: int,
        domain: Domain,
        keys: KeyRing,
        own_value: Value = None,
        tick: int = 0,
    ) -> None:
        self.params = params
        self.me = me
        self.domain = domain
        self.keys = keys
        self.own_value = own_value
        self.tick = tick
        self.counters = Counters()
        self._valid = valid_paths(params, me)
        #: V per commander, in order of acceptance
        self._accepted: dict[int, list[Value]] = {c: [] for c in params.commanders}
        #: chains accepted in the last round, to be relayed in the next
        self._to_relay: list[Entry] = []
        #: per commander, each accepted value with the commander's own signature on it: two
        #: entries for one commander are proof that it equivocated (voter.core.diagnosis)
        self._signed_by: dict[int, list[tuple[Value, bytes]]] = {c: [] for c in params.commanders}
        #: isolated peers (voter.core.diagnosis): a chain they relayed is not accepted, so a
        #: board the cluster agreed to shut out cannot lend its signature to a second traitor
        self.excluded_relayers: frozenset[int] = frozenset()

    def _sign(self, path: tuple[int, ...], value: Value) -> bytes:
        return self.keys.sign(self.me, signed_bytes(self.params.cluster, self.tick, path, value))

    def chain_is_valid(self, path: tuple[int, ...], value: Value, sigs: Sequence[bytes]) -> bool:
        """Every signer on `path` signed `value` at its own position of this cluster and tick."""
        if len(sigs) != len(path):
            return False
        for k, signer in enumerate(path):
            msg = signed_bytes(self.params.cluster, self.tick, path[: k + 1], value)
            if not self.keys.verify(signer, msg, sigs[k]):
                return False
        return True

    # -- sending ---------------------------------------------------------------
    def outgoing(self, round_no: int) -> dict[int, list[Entry]]:
        p = self.params
        out: dict[int, list[Entry]] = {j: [] for j in range(p.nodes) if j != self.me}
        if round_no == 1:
            self._to_relay = []
            if self.me in p.commanders:
                own_path: tuple[int, ...] = (self.me,)
                entry = Entry(own_path, self.own_value, (self._sign(own_path, self.own_value),))
                for j in out:
                    out[j].append(entry)
        elif 2 <= round_no <= p.rounds:
            for e in self._to_relay:
                path = (*e.path, self.me)
                relayed = Entry(path, e.value, (*e.sigs, self._sign(path, e.value)))
                for j in out:
                    if j not in path:
                        out[j].append(relayed)
            self._to_relay = []
        self.counters.sent += sum(map(len, out.values()))
        return out

    # -- receiving -------------------------------------------------------------
    def receive(self, round_no: int, src: int, entries: Sequence[Entry]) -> list[Rejected]:
        rejected: list[Rejected] = []
        valid, excluded, counters = self._valid, self.excluded_relayers, self.counters
        relay = round_no <= self.params.m
        for index, e in enumerate(entries):
            path, sigs = e.path, e.sigs
            reason = (
                None
                if path_ok(valid, round_no, src, path)
                else check_path(self.params, self.me, round_no, src, path)
            )
            value: Value = None
            if reason is None and len(sigs) != len(path):
                reason = "signature count != path length"
            if reason is None and excluded and not excluded.isdisjoint(path[1:]):
                reason = "isolated relayer"
            if reason is None:
                try:
                    value = self.domain.normalize(e.value)
                except Invalid:
                    reason = "value outside domain"
            if reason is None:
                seen = self._accepted[path[0]]
                if value in seen:  # already in V: changes nothing, not even verified
                    counters.received += 1
                    continue
                if not self.chain_is_valid(path, value, sigs):
                    reason = "bad signature"
            if reason is not None:
                counters.reject(reason)
                rejected.append(Rejected(round_no, src, reason, index))
                continue
            counters.received += 1
            seen.append(value)
            self._signed_by[path[0]].append((value, sigs[0]))
            if relay:
                self._to_relay.append(
                    e if value is e.value and type(e) is Entry else Entry(path, value, sigs)
                )
        return rejected

    # -- deciding --------------------------------------------------------------
    def decide(self) -> dict[int, Value]:
        p = self.params
        return {
            c: self.own_value if c == self.me else choice(self._accepted[c], p.default)
            for c in p.commanders
        }

    def flip_table(self, flips: tuple[tuple[int, int], ...]) -> None:
        """A memory error in the accepted sets V (HIL injection): COM and the store both see it."""
        keys = sorted(self._accepted)
        flipped = flip_words([self._accepted[c] for c in keys], flips)
        assert isinstance(flipped, list)
        self._accepted = {c: cast("list[Value]", v) for c, v in zip(keys, flipped, strict=True)}

    def accepted(self, commander: int) -> list[Value]:
        """V for `commander` (for traces)."""
        return list(self._accepted[commander])

    def signed_values(self, commander: int) -> list[tuple[Value, bytes]]:
        """Each value accepted from `commander` with the commander's signature over it.

        Every one passed the chain check, so two of them are transferable evidence
        that the commander signed two different values for this tick.
        """
        return list(self._signed_by[commander])

    def accepted_all(self) -> dict[int, list[Value]]:
        """V for every commander (the table the MON path re-decides from)."""
        return {c: list(vs) for c, vs in self._accepted.items()}
