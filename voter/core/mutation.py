"""The `mutate` traitor: ByzzFuzz-style small-scope mutations of the frames a board writes.

Winter et al., "Randomized Testing of Byzantine Fault Tolerant Algorithms"
(OOPSLA 2023) found real bugs in PBFT, Tendermint and XRP not with wild lies but
with messages changed slightly in value or time. A `Mutator` does that to an
honest board's frames, one message at a time, each choice drawn from the rng the
caller passes in (the core never seeds or reads a generator):

- ``stale``: an entry's value from the previous tick (same receiver, same path);
- ``stale-chain``: the same under SM, the earlier tick's signature chain with it;
- ``readdress``: a relayed entry sent to another peer instead of its receiver;
- ``round``: a whole frame's round +-1;
- ``tick``: a whole frame's tick +-1.

It holds one tick of honest entries (bounded by one tick's frames) and never
touches the board: the board stays honest, only its writes are changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from voter.core.adversary import Rng
from voter.core.frame import ROUND_MAX, TICK_MAX, Frame
from voter.core.protocol import Entry

#: every kind of mutation, in the order the counters list them
MUTATIONS = ("stale", "stale-chain", "readdress", "round", "tick")


@dataclass
class Mutator:
    """One traitor's mutations across ticks; `counts` says how many of each it made."""

    #: chance that a frame's header (round or tick) is changed
    p_frame: float = 0.2
    #: chance that an entry is replaced by the previous tick's
    p_stale: float = 0.2
    #: chance that a relayed entry goes to another peer
    p_readdress: float = 0.15
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MUTATIONS, 0))
    _tick: int | None = None
    #: (dst, path) -> the honest entry of the tick before `_tick`, and of `_tick` so far
    _prev: dict[tuple[int, tuple[int, ...]], Entry] = field(default_factory=dict)
    _now: dict[tuple[int, tuple[int, ...]], Entry] = field(default_factory=dict)

    def mutate(self, frames: Sequence[Frame], rng: Rng) -> list[Frame]:
        """The frames the traitor writes instead of `frames` (one round's, honest)."""
        if not frames:
            return []
        tick = frames[0].tick
        if tick != self._tick:
            self._prev = self._now if self._tick == tick - 1 else {}
            self._now, self._tick = {}, tick
        for f in frames:
            for e in f.entries:
                self._now[(f.dst, e.path)] = e
        entries = {f.dst: list(f.entries) for f in frames}
        moved: list[tuple[int, Entry]] = []
        for f in frames:
            kept: list[Entry] = []
            for e in f.entries:
                target = self._entry(f, e, rng, [g.dst for g in frames if g.dst != f.dst])
                if isinstance(target, int):
                    moved.append((target, e))
                else:
                    kept.append(target)
            entries[f.dst] = kept
        for dst, e in moved:
            entries[dst].append(e)
        return [self._header(replace(f, entries=tuple(entries[f.dst])), rng) for f in frames]

    def _entry(self, f: Frame, e: Entry, rng: Rng, others: list[int]) -> Entry | int:
        """The entry to send in its place, or the peer it is re-addressed to."""
        x = rng.random()
        if x < self.p_stale:
            old = self._prev.get((f.dst, e.path))
            if old is None or old == e:
                return e
            self.counts["stale-chain" if old.sigs else "stale"] += 1
            return old
        if x < self.p_stale + self.p_readdress and len(e.path) > 1 and others:
            self.counts["readdress"] += 1
            return others[rng.randrange(len(others))]
        return e

    def _header(self, f: Frame, rng: Rng) -> Frame:
        """The frame with its round or tick moved by one, sometimes (always still encodable)."""
        if rng.random() >= self.p_frame:
            return f
        step = 1 if rng.randrange(2) else -1
        if rng.randrange(2):
            rnd = f.round + step if 1 <= f.round + step <= ROUND_MAX else f.round - step
            self.counts["round"] += 1
            return replace(f, round=rnd, sync=f.sync if rnd == 1 else None)
        tick = f.tick + step if 0 <= f.tick + step <= TICK_MAX else f.tick - step
        self.counts["tick"] += 1
        return replace(f, tick=tick)
