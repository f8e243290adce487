"""The positional slot layout of OM frames: which path the k-th value of a body belongs to.

A loyal OM board sends src->dst in round r exactly the labels σ of length r-1
over the other nodes, never src or dst, each relayed as σ + (src,), in
lexicographic order. So a positional body can carry values only: the number of
values fixes the smallest cluster that holds every node named (the count grows
strictly with it) and with it every path. This module holds that arithmetic
and its bounded cache; the codec (`voter.core.frame`) decides when to use it.
Pure: no I/O, and a peer choosing the counts cannot grow the cache past its budget.
"""

from __future__ import annotations

import functools
import math
from itertools import permutations

from voter.core.protocol import NODES_MAX, Entry

__all__ = ["Path", "positional_slots", "slot_count", "slot_paths"]

Path = tuple[int, ...]
_Slots = tuple[tuple[Path, ...], dict[Path, int]]


class _SlotCache:
    """Slot tables per (nodes, src, dst, round): every path in slot order, and its index.

    Memoisation only (a pure function of the key). A peer can make the decoder
    ask for any key, so the cache is bounded by the paths it holds rather than
    by its keys: past the budget it starts over.
    """

    def __init__(self, paths_max: int) -> None:
        self.paths_max = paths_max
        self.paths = 0
        self.tables: dict[tuple[int, int, int, int], _Slots] = {}

    def get(self, nodes: int, src: int, dst: int, round_no: int) -> _Slots:
        """The relay slots src->dst in `round_no` of a `nodes` cluster (caller checks the count)."""
        key = (nodes, src, dst, round_no)
        table = self.tables.get(key)
        if table is None:
            pool = [i for i in range(nodes) if i not in (src, dst)]
            paths = tuple((*sigma, src) for sigma in permutations(pool, round_no - 1))
            table = (paths, {p: k for k, p in enumerate(paths)})
            if self.paths + len(paths) > self.paths_max:
                self.tables.clear()
                self.paths = 0
            self.tables[key] = table
            self.paths += len(paths)
        return table


_slots = _SlotCache(1 << 16).get


def slot_count(nodes: int, round_no: int) -> int:
    """How many labels a loyal OM node relays on one link in `round_no` of a `nodes` cluster."""
    return math.perm(nodes - 2, round_no - 1)


@functools.lru_cache(maxsize=1024)
def _nodes_for(count: int, round_no: int, least: int) -> int | None:
    """The cluster size of at least `least` whose slot count is `count` (it grows strictly)."""
    for nodes in range(max(least, 2), NODES_MAX + 1):
        have = slot_count(nodes, round_no)
        if have == count:
            return nodes
        if have > count:
            return None
    return None


def positional_slots(
    entries: tuple[Entry, ...], src: int, dst: int, round_no: int, nodes: int, slots_max: int
) -> tuple[int, list[int]] | None:
    """(slot count, slot of each entry) if the entries fit the positional form, else None.

    The caller has checked that the entries are unsigned, their paths of length
    `round_no` end at src, and `nodes` exceeds every id named. They fit when
    the cluster has at most `slots_max` slots on this link, every path is a label
    the sender relays on this link in this round, in slot order without repeats,
    and the absent slots cost no more than the paths would in the explicit form.
    """
    if round_no == 1:
        return (1, [0]) if len(entries) == 1 else None
    count = slot_count(nodes, round_no)
    if count > slots_max or count - len(entries) > len(entries) * (1 + round_no):
        return None
    index = _slots(nodes, src, dst, round_no)[1]
    slots: list[int] = []
    last = -1
    for e in entries:
        slot = index.get(e.path, -1)
        if slot <= last:
            return None  # not a slot of this link, or out of order, or repeated
        slots.append(slot)
        last = slot
    return count, slots


def slot_paths(
    src: int, dst: int, round_no: int, count: int, slots_max: int
) -> tuple[Path, ...] | None:
    """The paths of a positional body of `count` values, or None if no cluster has that many.

    An empty body, or one of more than `slots_max` values, is refused too: the
    encoder writes no entries explicitly.
    """
    if src == dst or not 0 < count <= slots_max:
        return None
    nodes = _nodes_for(count, round_no, max(src, dst) + 1)
    if nodes is None:
        return None
    return _slots(nodes, src, dst, round_no)[0]
