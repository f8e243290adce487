"""The MON half of COM/MON: the tick's decision recomputed by a second, independent path.

COM is the node's own `decide()` (recursive EIG resolution, or choice(V)) and
`vote.vote_readings`. MON starts from the message table as read back from the
ECC store, resolves the EIG tree iteratively from the leaves up with its own
majority count, and votes with its own selection. The two paths share no code
beyond the data, so a software fault or an undetected memory fault in one shows
up as a disagreement, and the board stops (crash-on-inconsistency).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import permutations

from voter.core.protocol import Params
from voter.core.values import ERROR, MANIFEST, Value


def freeze(raw: object) -> Value:
    """msgpack gives lists back; the agreement values are tuples."""
    if isinstance(raw, list):
        return tuple(raw)
    return raw


def om_table(values: Mapping[tuple[int, ...], Value]) -> list[list[object]]:
    """The EIG table in a msgpack-ready form for the ECC store."""
    return [[list(p), list(v) if isinstance(v, tuple) else v] for p, v in sorted(values.items())]


def sm_table(accepted: Mapping[int, Sequence[Value]]) -> list[list[object]]:
    """V per commander in a msgpack-ready form for the ECC store. The readings stay tuples:
    msgpack packs a tuple exactly as the list it would be copied into (the same bytes)."""
    return [[c, list(vs)] for c, vs in sorted(accepted.items())]


def _strict_majority(votes: list[Value], default: Value) -> Value:
    # A separate counting scheme from vote.majority: pairwise equality tally.
    need = len(votes) // 2 + 1
    for candidate in votes:
        if sum(1 for v in votes if v == candidate) >= need:
            return candidate
    return default


Label = tuple[int, ...]
#: Per commander: its EIG labels deepest first, each with the labels just below it.
Plan = tuple[tuple[int, tuple[tuple[Label, tuple[Label, ...]], ...]], ...]


@lru_cache(maxsize=256)
def _om_plan(params: Params, me: int) -> Plan:
    """The bottom-up resolution order, worked out once per (cluster, node), not every tick."""
    plan: list[tuple[int, tuple[tuple[Label, tuple[Label, ...]], ...]]] = []
    for c in params.commanders:
        if c == me:
            continue
        others = [n for n in range(params.nodes) if n not in (c, me)]
        steps: list[tuple[Label, tuple[Label, ...]]] = []
        for depth in range(params.rounds, 0, -1):
            for tail in permutations(others, depth - 1):
                label = (c, *tail)
                below: tuple[Label, ...] = ()
                if depth < params.rounds:
                    below = tuple((*label, j) for j in others if j not in tail)
                steps.append((label, below))
        plan.append((c, tuple(steps)))
    return tuple(plan)


def om_decisions(
    params: Params, me: int, own: Value, table: list[list[object]]
) -> dict[int, Value]:
    """Resolve every commander's EIG tree from the leaves up."""
    received: dict[tuple[int, ...], Value] = {}
    for path, value in table:
        assert isinstance(path, list)
        received[tuple(map(int, path))] = freeze(value)
    default = params.default
    out: dict[int, Value] = {c: own for c in params.commanders if c == me}
    for c, steps in _om_plan(params, me):
        if params.algorithm == "omh":
            entry = _omh_entries(received, steps, params.rounds)[(c,)]
            out[c] = default if entry is MANIFEST or entry is ERROR else entry
            continue
        resolved: dict[Label, Value] = {}
        for label, below in steps:
            direct = received.get(label, default)
            if below:
                votes = [direct, *[resolved[b] for b in below]]
                resolved[label] = _strict_majority(votes, default)
            else:
                resolved[label] = direct
        out[c] = resolved[(c,)]
    return {c: out[c] for c in params.commanders}


def _omh_entries(
    received: Mapping[Label, Value], steps: tuple[tuple[Label, tuple[Label, ...]], ...], rounds: int
) -> dict[Label, Value]:
    """OMH bottom-up: per label, what its last node contributes one level up (MANIFEST: nothing).

    A leaf contributes what was received (a relayed ERROR reports a manifest
    commander and counts); a label above contributes the majority of its
    non-manifest votes, where an ERROR outcome means its own commander was
    manifest and so contributes nothing.
    """
    entries: dict[Label, Value] = {}
    for label, below in steps:
        if len(label) == rounds:
            entries[label] = received.get(label, MANIFEST)
            continue
        mine = received.get(label, ERROR)
        if len(label) + 1 < rounds and mine is ERROR:
            mine = MANIFEST
        votes = [v for v in (mine, *(entries[b] for b in below)) if v is not MANIFEST]
        outcome = _strict_majority(votes, ERROR) if votes else ERROR
        entries[label] = MANIFEST if outcome is ERROR else outcome
    return entries


def sm_decisions(
    params: Params, me: int, own: Value, table: list[list[object]]
) -> dict[int, Value]:
    accepted: dict[int, list[Value]] = {}
    for c, vs in table:
        if not isinstance(c, int) or not isinstance(vs, list):
            raise ValueError("SM table row must be [commander, [values]]")
        accepted[c] = [tuple(v) if isinstance(v, list) else v for v in vs]  # `freeze`, inline
    out: dict[int, Value] = {}
    for c in params.commanders:
        if c == me:
            out[c] = own
            continue
        distinct: list[Value] = []
        for v in accepted.get(c, []):
            if v not in distinct:
                distinct.append(v)
        out[c] = distinct[0] if len(distinct) == 1 else params.default
    return out


def vote(vector: Sequence[Value], channels: int) -> tuple[float | None, ...]:
    """Lower median per channel, by heap selection (COM sorts; this pops a min-heap)."""
    out: list[float | None] = []
    for ch in range(channels):
        xs = [e[ch] for e in vector if isinstance(e, tuple) and isinstance(e[ch], float)]
        if not xs:
            out.append(None)
            continue
        heapq.heapify(xs)
        for _ in range((len(xs) - 1) // 2):
            heapq.heappop(xs)
        out.append(xs[0])
    return tuple(out)
