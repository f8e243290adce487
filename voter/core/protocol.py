"""Shared vocabulary of the agreement state machines: parameters, entries, rejections.

An *entry* is one LSP message: a value relayed along a path of node ids that
starts with the commander and ends with the sender (the EIG label), plus for SM
one signature per node on the path. Entries for all commanders of a tick travel
batched, one frame per link per round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from itertools import islice, permutations
from typing import Any

from voter.core.values import Value


class Algorithm(StrEnum):
    """Oral messages (OM(m), N >= 3f+1), OM under the hybrid fault model (OMH(m), Lincoln-Rushby:
    N > 2a + 2s + b + m) or signed messages (SM(m), Ed25519, N >= f+2).

    Parsed once where text comes in (cluster.toml, a campaign, a command line);
    a StrEnum, so it is written to JSON and TOML as its value and compares
    equal to "om"/"omh"/"sm".
    """

    OM = "om"
    OMH = "omh"
    SM = "sm"


#: The algorithm names, for argparse choices and error messages.
ALGORITHMS = tuple(a.value for a in Algorithm)

#: Hard bounds (TigerBeetle: put a limit on everything). A cluster beyond these is refused.
NODES_MAX = 16
M_MAX = 6


def oral_bound(nodes: int) -> int:
    """The most arbitrary faults `nodes` can outvote without signatures: N >= 3f + 1.

    OM's bound, and also what the timing quorums (clock sync, joining, clique
    avoidance) tolerate under SM: clocks are not signed.
    """
    return max(0, (nodes - 1) // 3)


def is_oral(algorithm: str) -> bool:
    """True for the unsigned algorithms (OM and OMH): they share the EIG node and its sizes."""
    return algorithm != "sm"


def fault_bound(algorithm: str, nodes: int, m: int) -> int:
    """The most arbitrary faults the theory lets `algorithm` with `m` rounds tolerate on `nodes`.

    OM(m) and OMH(m): f < N/3 and f <= m (LSP; OMH with a = f, s = b = 0);
    SM(m): f <= N-2 and f <= m. A cluster with OM and N <= 3m is accepted (it is
    how the impossibility result is shown); its bound is then below m. The one
    place this rule is written.
    """
    limit = oral_bound(nodes) if is_oral(algorithm) else nodes - 2
    return max(0, min(m, limit))


def hybrid_bound_holds(nodes: int, m: int, asymmetric: int, symmetric: int, manifest: int) -> bool:
    """Whether OMH(m) tolerates this mix: N > 2a + 2s + b + m and a <= m (Lincoln-Rushby 1993).

    A manifest fault (missing, late, undecodable) costs one node, a symmetric
    one (the same wrong value to all) two, an asymmetric (Byzantine) one two.
    With s = b = 0 it is OM's bound (N >= 3a + 1 when m = a).
    """
    return (
        nodes > 2 * asymmetric + 2 * symmetric + manifest + m
        and asymmetric <= m
        and min(asymmetric, symmetric, manifest) >= 0
    )


def mix_within_bound(
    algorithm: str, nodes: int, m: int, asymmetric: int, symmetric: int, manifest: int
) -> bool:
    """Whether the theory covers this fault mix: OMH by its hybrid bound, OM and SM count every
    fault, manifest ones included, against `fault_bound` (for them a crash is just a fault)."""
    if algorithm == "omh":
        return hybrid_bound_holds(nodes, m, asymmetric, symmetric, manifest)
    return asymmetric + symmetric + manifest <= fault_bound(algorithm, nodes, m)


def slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The `__set__` of each field's slot, in field order: what a frozen dataclass's written-out
    `__init__` calls. `object.__setattr__(self, name, v)` ends at the same slot but first
    looks the name up on the class, which made it ~40% of building a `Frame` or an `Entry`
    (docs/performance.md); frozen still means frozen: only these setters skip the class's
    `__setattr__`, and only the `__init__`s call them."""
    return tuple(cls.__dict__[f].__set__ for f in cls.__dataclass_fields__)  # type: ignore[attr-defined]


class ConfigError(ValueError):
    """Parameters that cannot describe a cluster (our caller's mistake, not a peer's)."""


@dataclass(frozen=True, slots=True)
class Params:
    """One agreement tick: who takes part, which algorithm, how many rounds."""

    nodes: int
    m: int
    algorithm: Algorithm
    commanders: tuple[int, ...]
    default: Value
    cluster: str = "voter"

    def __post_init__(self) -> None:
        if not 2 <= self.nodes <= NODES_MAX:
            raise ConfigError(f"nodes must be 2..{NODES_MAX}, got {self.nodes}")
        if not 0 <= self.m <= M_MAX:
            raise ConfigError(f"m must be 0..{M_MAX}, got {self.m}")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if not self.commanders or any(not 0 <= c < self.nodes for c in self.commanders):
            raise ConfigError("commanders must be node ids of the cluster")
        if len(set(self.commanders)) != len(self.commanders):
            raise ConfigError("commanders must be distinct")

    @property
    def rounds(self) -> int:
        return self.m + 1

    @property
    def fault_bound(self) -> int:
        """The most traitors the theory says this cluster tolerates."""
        return fault_bound(self.algorithm, self.nodes, self.m)


@dataclass(frozen=True, slots=True)
class Entry:
    """One message: `value` relayed along `path` (commander first, sender last)."""

    path: tuple[int, ...]
    value: Value
    sigs: tuple[bytes, ...] = ()

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(self, path: tuple[int, ...], value: Value, sigs: tuple[bytes, ...] = ()) -> None:
        _entry_path(self, path)
        _entry_value(self, value)
        _entry_sigs(self, sigs)


_entry_path, _entry_value, _entry_sigs = slot_setters(Entry)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A peer's entry that was dropped, and why (an event, never an exception)."""

    round: int
    src: int
    reason: str
    index: int = -1  #: position of the entry in the frame


@dataclass(slots=True)
class Counters:
    """Per-tick message accounting, reported by the engine (not derived from formulas)."""

    sent: int = 0
    received: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        sent: int = 0,
        received: int = 0,
        rejected: int = 0,
        reasons: dict[str, int] | None = None,
    ) -> None:
        self.sent = sent
        self.received = received
        self.rejected = rejected
        self.reasons = {} if reasons is None else reasons

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def labels(nodes: int, commander: int, length: int, exclude: int) -> Iterator[tuple[int, ...]]:
    """Every path of `length` distinct ids starting at `commander` and avoiding `exclude`."""
    if length < 1 or commander == exclude:
        return
    rest = [n for n in range(nodes) if n not in (commander, exclude)]
    for tail in permutations(rest, length - 1):
        yield (commander, *tail)


def check_path(params: Params, me: int, round_no: int, src: int, path: object) -> str | None:
    """Why a received path is structurally wrong for (me, round, link), or None if it is fine."""
    if not isinstance(path, tuple) or len(path) != round_no:
        return "path length != round"
    if not all(isinstance(p, int) and 0 <= p < params.nodes for p in path):
        return "unknown node in path"
    if path[-1] != src:
        return "path does not end at the link's peer"
    if path[0] not in params.commanders:
        return "not a commander"
    if me in path:
        return "path contains receiver"
    if len(set(path)) != len(path):
        return "repeated node in path"
    return None


#: Largest set of well-formed paths `valid_paths` lists (N=4, m=1 has 9; N=7, m=2 has 156).
VALID_PATHS_MAX = 4096


@lru_cache(maxsize=256)
def valid_paths(params: Params, me: int) -> frozenset[tuple[int, ...]] | None:
    """Every path `check_path` accepts at `me` in some round, or None if there are too many.

    A path of length r ending at the link's peer is exactly what `check_path`
    accepts in round r from that peer, so a receiver tests one set membership
    per entry and only calls `check_path` (for the reason) on a path that fails.
    """
    paths = frozenset(islice(_all_paths(params, me), VALID_PATHS_MAX + 1))
    return paths if len(paths) <= VALID_PATHS_MAX else None


def _all_paths(params: Params, me: int) -> Iterator[tuple[int, ...]]:
    """A `def` generator, not a generator expression: compiled with mypyc, a generator
    expression is built as a whole list, and `islice` would no longer bound the work
    (1.6 s and 408 MB at N=16, m=5, against 2 ms; issue 12)."""
    for c in params.commanders:
        for r in range(1, params.rounds + 1):
            yield from labels(params.nodes, c, r, me)


def path_ok(
    valid: frozenset[tuple[int, ...]] | None, round_no: int, src: int, path: object
) -> bool:
    """True if `path` is in `valid` for (round, link); False means: ask `check_path` why."""
    if valid is None or type(path) is not tuple or len(path) != round_no or path[-1] != src:
        return False
    # Exact ints only: 0.0 == 0 and hashes alike, so a float would pass the set.
    for p in path:
        if type(p) is not int:
            return False
    return path in valid
