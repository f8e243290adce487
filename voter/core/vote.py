"""Deterministic decision rules: LSP majority, SM choice(V), and the output vote.

Every loyal board applies these to the same inputs in the same order, so they
must depend on nothing but their arguments (no dict-order, no float summation
order surprises).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from voter.core.values import ERROR, Value


def majority(values: Sequence[Value], default: Value) -> Value:
    """LSP's majority(v1..vn): the value held by a strict majority, else `default`."""
    # A strict majority is unique, so the first value counted past half is it.
    # (A plain dict tally: Counter's set-up costs more than the count at n = 3.)
    half = len(values) // 2
    counts: dict[Value, int] = {}
    for v in values:
        c = counts.get(v, 0) + 1
        if c > half:
            return v
        counts[v] = c
    return default


def choice(accepted: Iterable[Value], default: Value) -> Value:
    """LSP's choice(V) for SM: the single value of V, else `default` (none, or several)."""
    distinct = set(accepted)
    if len(distinct) == 1:
        return next(iter(distinct))
    return default


def mid_value(samples: Sequence[float]) -> float:
    """Mid-value select: the lower median.

    The lower median (not the mean of the middle two) is chosen so the output is
    always a reading some board really produced; with at most one liar among four
    it lies inside the loyal readings' range.
    """
    ordered = sorted(samples)
    return ordered[(len(ordered) - 1) // 2]


def vote_readings(vector: Sequence[Value], channels: int) -> tuple[float | None, ...]:
    """Per channel, mid-value select over the non-ERROR entries; None where none is left."""
    out: list[float | None] = []
    readings = [entry for entry in vector if entry is not ERROR and isinstance(entry, tuple)]
    for ch in range(channels):
        samples = [entry[ch] for entry in readings if isinstance(entry[ch], float)]
        out.append(mid_value(samples) if samples else None)
    return tuple(out)


def vote_discrete(vector: Sequence[Value], default: Value) -> Value:
    """Majority-with-default over the non-ERROR entries of a discrete vector."""
    return majority([v for v in vector if v is not ERROR], default)
