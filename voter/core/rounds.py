"""An in-memory round driver: runs one agreement tick among node objects, with a trace.

This is the simulated link of the in-process faces (`hil generals`, `hil verify`,
the deterministic simulator): every node's round-r entries are delivered before
any node sends in round r+1, exactly the synchronous model LSP assume. Real
boards do the same through frames on serial links (voter.daemon).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from voter.core.adversary import RoundNode
from voter.core.protocol import Entry, Rejected
from voter.core.values import Value


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry on one link in one round, and whether the receiver took it."""

    round: int
    src: int
    dst: int
    path: tuple[int, ...]
    value: Value
    rejected: str | None = None


@dataclass
class TickRun:
    decisions: dict[int, dict[int, Value]]
    messages: int
    rounds: int
    trace: list[Delivery] = field(default_factory=list)


LinkFilter = Callable[[int, int, int, list[Entry]], list[Entry]]


def run_tick(
    nodes: Mapping[int, RoundNode],
    rounds: int,
    *,
    trace: bool = False,
    link: LinkFilter | None = None,
) -> TickRun:
    """Run `rounds` synchronous rounds; `link(round, src, dst, entries)` may drop or alter them."""
    deliveries: list[Delivery] = []
    messages = 0
    rounds_run = 0
    for r in range(1, rounds + 1):
        outboxes = {i: n.outgoing(r) for i, n in nodes.items()}
        rounds_run += 1
        for src, outbox in outboxes.items():
            for dst, entries in outbox.items():
                messages += len(entries)
                if link is not None:
                    entries = link(r, src, dst, entries)
                receiver = nodes.get(dst)
                if receiver is None or not entries:
                    continue
                rejected = receiver.receive(r, src, entries)
                if trace:
                    deliveries.extend(_trace(r, src, dst, entries, rejected))
    decisions = {i: n.decide() for i, n in nodes.items()}
    return TickRun(decisions, messages, rounds_run, deliveries)


def _trace(
    r: int, src: int, dst: int, entries: Sequence[Entry], rejected: Sequence[Rejected]
) -> list[Delivery]:
    why = {x.index: x.reason for x in rejected}
    return [Delivery(r, src, dst, e.path, e.value, why.get(i)) for i, e in enumerate(entries)]
