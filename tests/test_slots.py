"""Tests of the positional slot layout (voter.core.slots): counts, paths, fit, the cache bound."""

from __future__ import annotations

import pytest

from tests.frames import loyal_slots
from voter.core.frame import ENTRIES_MAX
from voter.core.protocol import Entry
from voter.core.slots import _SlotCache, positional_slots, slot_count, slot_paths

#: Clusters small enough to enumerate: (nodes, round) with round >= 2 (round 1 has one slot).
SMALL = [(n, r) for n in range(3, 9) for r in range(2, min(n - 1, 4) + 1)]


@pytest.mark.parametrize(("nodes", "round_no"), SMALL)
def test_slot_count_is_what_a_loyal_board_relays(nodes: int, round_no: int) -> None:
    """(N-2)!/(N-1-r)!: the labels over the nodes other than src and dst."""
    assert len(loyal_slots(nodes, 0, 1, round_no)) == slot_count(nodes, round_no)


@pytest.mark.parametrize(("nodes", "round_no"), SMALL)
def test_slot_paths_rebuild_every_loyal_path_from_the_count(nodes: int, round_no: int) -> None:
    """The count alone names the cluster size (it grows strictly), so every link's paths follow."""
    for src in range(nodes):
        for dst in range(nodes):
            if src == dst or slot_count(nodes, round_no) == 0:
                continue
            want = tuple(loyal_slots(nodes, src, dst, round_no))
            assert want == slot_paths(src, dst, round_no, len(want), ENTRIES_MAX)


def test_round_one_has_the_senders_own_slot() -> None:
    assert ((3,),) == slot_paths(3, 0, 1, 1, ENTRIES_MAX)


@pytest.mark.parametrize(
    ("src", "dst", "round_no", "count", "slots_max"),
    [
        (2, 2, 2, 1, ENTRIES_MAX),  # a link to itself
        (1, 2, 2, 0, ENTRIES_MAX),  # an empty body
        (1, 2, 3, 4, ENTRIES_MAX),  # no cluster relays 4 labels in round 3 (2, 6, 12, ...)
        (1, 3, 2, 1, ENTRIES_MAX),  # 1 slot is a 3-node cluster, but node 3 needs 4 nodes
        (1, 2, 2, 6, 5),  # more slots than the limit
    ],
)
def test_slot_paths_refuse_counts_no_cluster_has(
    src: int, dst: int, round_no: int, count: int, slots_max: int
) -> None:
    assert slot_paths(src, dst, round_no, count, slots_max) is None


def test_positional_slots_of_a_loyal_and_a_sparse_relay() -> None:
    """All slots in order fit; a dense subset fits with its slot numbers; too sparse does not."""
    paths = loyal_slots(7, 1, 0, 2)  # 5 slots: (2, 1) .. (6, 1)
    full = tuple(Entry(p, None) for p in paths)
    assert (5, [0, 1, 2, 3, 4]) == positional_slots(full, 1, 0, 2, 7, ENTRIES_MAX)
    assert (5, [1, 4]) == positional_slots((full[1], full[4]), 1, 0, 2, 7, ENTRIES_MAX)
    many = tuple(Entry(p, None) for p in loyal_slots(16, 1, 0, 3))  # 182 slots
    assert positional_slots(many[-1:], 1, 0, 3, 16, ENTRIES_MAX) is None


@pytest.mark.parametrize(
    "entries",
    [
        (Entry((3, 1), None), Entry((2, 1), None)),  # out of slot order
        (Entry((2, 1), None), Entry((2, 1), None)),  # repeated
        (Entry((0, 1), None),),  # through the receiver: no slot of this link
        (Entry((2, 3), None),),  # not relayed by src
    ],
)
def test_positional_slots_refuse_what_a_loyal_board_never_sends(
    entries: tuple[Entry, ...],
) -> None:
    assert positional_slots(entries, 1, 0, 2, 4, ENTRIES_MAX) is None


def test_positional_slots_in_round_one_and_beyond_the_limit() -> None:
    one = (Entry((1,), None),)
    assert (1, [0]) == positional_slots(one, 1, 0, 1, 4, ENTRIES_MAX)
    assert positional_slots(one * 2, 1, 0, 1, 4, ENTRIES_MAX) is None
    full = tuple(Entry(p, None) for p in loyal_slots(7, 1, 0, 2))
    assert positional_slots(full, 1, 0, 2, 7, 4) is None


def test_slot_cache_is_bounded_by_the_paths_it_holds() -> None:
    """A peer picks the keys, so past its path budget the cache starts over."""
    cache = _SlotCache(10)
    for dst in (0, 2, 3, 4):
        paths, index = cache.get(7, 1, dst, 2)
        assert paths == tuple(loyal_slots(7, 1, dst, 2))
        assert {p: k for k, p in enumerate(paths)} == index
        assert cache.paths <= 10
    assert 2 == len(cache.tables)
