"""Traitors: what a lying node sends instead of what the protocol says.

An adversary sees the messages an honest node in the traitor's place would send
(`Out` records) and returns the ones the traitor really sends. It never touches
a loyal node's state. For SM a coalition `ChainForge` then signs what it can:
traitors' own keys sign anything; a loyal node's signature is only available if
some traitor has received it; anything else gets a signature that fails.

Randomness (the `random` strategy) comes in as an object with `random()` and
`randrange()`; the core never seeds or reads a global generator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from voter.core.crypto import SIGNATURE_BYTES, KeyRing, signed_bytes
from voter.core.protocol import Counters, Entry, Params, Rejected
from voter.core.values import ERROR, Domain, Invalid, Value


class Strategy(StrEnum):
    """Every way a HIL traitor misbehaves: the one list (SPEC.md's campaign `strategy`).

    Most act on what the board says (an `Adversary` here); `frame_level` ones act
    on the frames it writes (late, garbage, replay, mutate: the tick driver's sabotage).
    """

    SILENT = "silent"
    EQUIVOCATE = "equivocate"
    LIE = "lie"
    FLIP = "flip"
    RANDOM = "random"
    LATE = "late"
    GARBAGE = "garbage"
    REPLAY = "replay"
    FORGE = "forge"
    WITHHOLD = "withhold"
    #: small-scope mutations in value or time (voter.core.mutation)
    MUTATE = "mutate"

    @property
    def frame_level(self) -> bool:
        return self in (Strategy.LATE, Strategy.GARBAGE, Strategy.REPLAY, Strategy.MUTATE)


#: strategies an in-memory adversary plays (the rest need bytes on a wire)
STRATEGIES = tuple(s.value for s in Strategy if not s.frame_level)
SILENT = "silent"
FLIP = "flip"


@dataclass(frozen=True, slots=True)
class Out:
    """One message a traitor sends: `value` along `path` to `dst`; `forged` = bad signatures."""

    dst: int
    path: tuple[int, ...]
    value: Value
    forged: bool = False


class Adversary(Protocol):
    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        """The messages the traitor sends in `round_no`, given the honest ones."""
        ...


class Rng(Protocol):
    def random(self) -> float: ...
    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...


@dataclass(frozen=True, slots=True)
class Silent:
    """Sends nothing at all (a crashed or mute node)."""

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        return []


@dataclass(frozen=True, slots=True)
class Equivocate:
    """As commander tells each receiver something else (the first the truth); relays honestly."""

    domain: Domain

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        own = [o for o in honest if len(o.path) == 1]
        first = min((o.dst for o in own), default=None)
        return [
            o
            if len(o.path) > 1 or o.dst == first
            else Out(o.dst, o.path, self.domain.alternative(o.value, o.dst))
            for o in honest
        ]


@dataclass(frozen=True, slots=True)
class Lie:
    """Every value it sends, own and relayed, is one fixed wrong value."""

    value: Value

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        return [Out(o.dst, o.path, self.value) for o in honest]


@dataclass(frozen=True, slots=True)
class Flip:
    """Every value it sends is changed to another (the other order, a shifted reading)."""

    domain: Domain

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        return [Out(o.dst, o.path, self.domain.alternative(o.value, 0)) for o in honest]


@dataclass(slots=True)
class RandomLies:
    """Each message independently: honest, a wrong value, or nothing (seeded by the caller)."""

    domain: Domain
    rng: Rng
    p_lie: float = 0.4
    p_silent: float = 0.2

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        out: list[Out] = []
        for o in honest:
            x = self.rng.random()
            if x < self.p_silent:
                continue
            if x < self.p_silent + self.p_lie:
                out.append(
                    Out(o.dst, o.path, self.domain.alternative(o.value, self.rng.randrange(4)))
                )
            else:
                out.append(o)
        return out


@dataclass(frozen=True, slots=True)
class Forge:
    """Sends wrong values under signatures that do not verify (in OM it is simply a liar)."""

    domain: Domain

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        return [
            Out(o.dst, o.path, self.domain.alternative(o.value, o.dst), forged=True) for o in honest
        ]


@dataclass(frozen=True, slots=True)
class Withhold:
    """Sends each message only to the lower half of its receivers (at least one)."""

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        by_path: dict[tuple[int, ...], list[Out]] = {}
        for o in honest:
            by_path.setdefault(o.path, []).append(o)
        out: list[Out] = []
        for outs in by_path.values():
            keep = sorted(outs, key=lambda o: o.dst)[: max(1, len(outs) // 2)]
            out.extend(keep)
        return out


@dataclass(frozen=True, slots=True)
class Scripted:
    """The seed's scripted traitor (SPEC.md): `sends` per receiver as commander, `relays` rule.

    `sends[j]` is a value or "silent"; receivers not named get the true value.
    `relays` is a value, "flip" (the other of `pair`), "silent", or None (honest);
    without `sends` it also applies to what the traitor sends as commander.
    """

    sends: Mapping[int, Value] | None = None
    relays: Value | None = None
    pair: tuple[Value, Value] = ("attack", "retreat")

    def _relay(self, o: Out) -> Out | None:
        if self.relays is None:
            return o
        if self.relays == SILENT:
            return None
        if self.relays == FLIP:
            a, b = self.pair
            if a == b:
                return o
            return Out(o.dst, o.path, b if o.value == a else a)
        return Out(o.dst, o.path, self.relays)

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        out: list[Out] = []
        for o in honest:
            if len(o.path) == 1 and self.sends is not None:
                v = self.sends.get(o.dst, o.value)
                if v != SILENT:
                    out.append(Out(o.dst, o.path, v))
                continue
            r = self._relay(o)
            if r is not None:
                out.append(r)
        return out


#: "error": sends ERROR, which OMH reads as "my commander was manifest to me" (a value that votes)
Option = Literal["v0", "v1", "both", "silent", "error"]


@dataclass(frozen=True, slots=True)
class Choices:
    """Exhaustive-search traitor: for every slot (path, dst) one option; ignores the honest plan."""

    table: Mapping[tuple[tuple[int, ...], int], Option]
    values: tuple[Value, Value]

    def plan(self, round_no: int, me: int, honest: Sequence[Out]) -> list[Out]:
        out: list[Out] = []
        for (path, dst), opt in self.table.items():
            if len(path) != round_no:
                continue
            if opt in ("v0", "both"):
                out.append(Out(dst, path, self.values[0]))
            if opt in ("v1", "both"):
                out.append(Out(dst, path, self.values[1]))
            if opt == "error":
                out.append(Out(dst, path, ERROR))
        return out


def make_adversary(
    name: str, domain: Domain, rng: Rng, lie: Value | None = None
) -> Adversary | None:
    """The adversary for a strategy name (STRATEGIES), or None for an unknown name.

    `lie` is the fixed value of the "lie" strategy (default: the domain's first
    alternative to no value).
    """
    match name:
        case "silent":
            return Silent()
        case "equivocate":
            return Equivocate(domain)
        case "lie":
            return Lie(domain.alternative(None, 0) if lie is None else lie)
        case "flip":
            return Flip(domain)
        case "random":
            return RandomLies(domain, rng)
        case "forge":
            return Forge(domain)
        case "withhold":
            return Withhold()
    return None


def traitor_slots(
    params: Params, traitor: int, commander: int
) -> Iterator[tuple[tuple[int, ...], int]]:
    """Every (path, dst) on which `traitor` can send in an instance of `commander`."""
    from itertools import permutations

    others = [n for n in range(params.nodes) if n not in (commander, traitor)]
    for length in range(1, params.rounds + 1):
        if traitor == commander:
            if length != 1:
                continue
            mids: list[tuple[int, ...]] = [()]
        else:
            if length < 2:
                continue
            mids = list(permutations(others, length - 2))
        for mid in mids:
            path = (commander, *mid, traitor) if traitor != commander else (commander,)
            for dst in range(params.nodes):
                if dst not in path:
                    yield path, dst


@dataclass
class ChainForge:
    """The signing a coalition of traitors can do (SM only).

    Holds the traitors' private keys (in `keys`) and every valid signature any
    coalition member has received, so colluding traitors are as strong as the
    model allows; no more (they cannot sign for a loyal node).
    """

    params: Params
    keys: KeyRing
    domain: Domain
    tick: int = 0
    _pool: dict[tuple[tuple[int, ...], Value], bytes] = field(default_factory=dict)

    def observe(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            if not isinstance(e.path, tuple) or len(e.sigs) != len(e.path):
                continue
            try:
                value = self.domain.normalize(e.value)
            except Invalid:
                continue
            for k, signer in enumerate(e.path):
                prefix = e.path[: k + 1]
                if (prefix, value) in self._pool:
                    continue
                msg = signed_bytes(self.params.cluster, self.tick, prefix, value)
                if isinstance(signer, int) and self.keys.verify(signer, msg, e.sigs[k]):
                    self._pool[(prefix, value)] = e.sigs[k]

    def chain(self, path: tuple[int, ...], value: Value, forged: bool) -> tuple[bytes, ...]:
        sigs: list[bytes] = []
        for k, signer in enumerate(path):
            prefix = path[: k + 1]
            msg = signed_bytes(self.params.cluster, self.tick, prefix, value)
            sig: bytes | None = None
            if not forged:
                if self.keys.can_sign(signer):
                    sig = self.keys.sign(signer, msg)
                else:
                    sig = self._pool.get((prefix, value))
            if sig is None:
                sig = hashlib.sha512(b"forged" + msg).digest()[:SIGNATURE_BYTES]
            sigs.append(sig)
        return tuple(sigs)


class RoundNode(Protocol):
    """What the round driver needs of a node (loyal OMNode/SMNode or a Traitor)."""

    me: int
    counters: Counters

    def outgoing(self, round_no: int) -> dict[int, list[Entry]]: ...
    def receive(self, round_no: int, src: int, entries: Sequence[Entry]) -> list[Rejected]: ...
    def decide(self) -> dict[int, Value]: ...


class Traitor:
    """A node whose sending is taken over by an adversary (its receiving stays honest)."""

    def __init__(self, node: RoundNode, adversary: Adversary, forge: ChainForge | None = None):
        self.node = node
        self.me = node.me
        self.counters = node.counters
        self.adversary = adversary
        self.forge = forge

    def outgoing(self, round_no: int) -> dict[int, list[Entry]]:
        honest_entries = self.node.outgoing(round_no)
        honest = [Out(dst, e.path, e.value) for dst, es in honest_entries.items() for e in es]
        planned = self.adversary.plan(round_no, self.me, honest)
        out: dict[int, list[Entry]] = {dst: [] for dst in honest_entries}
        for o in planned:
            sigs: tuple[bytes, ...] = ()
            if self.forge is not None:
                sigs = self.forge.chain(o.path, o.value, o.forged)
            out.setdefault(o.dst, []).append(Entry(o.path, o.value, sigs))
        self.counters.sent += len(planned) - len(honest)
        return out

    def receive(self, round_no: int, src: int, entries: Sequence[Entry]) -> list[Rejected]:
        if self.forge is not None:
            self.forge.observe(entries)
        return self.node.receive(round_no, src, entries)

    def decide(self) -> dict[int, Value]:
        return self.node.decide()
