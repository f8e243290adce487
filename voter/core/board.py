"""One board's side of every tick, sans-I/O: decoded frames in, frames out, a checked decision.

The daemon (serial links, monotonic clock) and the simulator (virtual links and
clock) both drive a `Board`: `begin_tick` -> frames of round 1, `on_frame` for
whatever arrives, `next_round` at each round deadline, `finish_tick` for the
decision. Frames for a round already closed are *late* (an omission); frames a
little ahead (a peer whose clock leads) wait in a bounded buffer.

`finish_tick` is where crash-on-inconsistency lives: the message table is kept
in the ECC store, read back (1-bit errors corrected, 2-bit errors raise), the
decision is recomputed from it by the independent MON path, and any
disagreement with COM raises `InconsistencyError`. Nothing a peer sends can
reach that exception: peer input only ever becomes a counted drop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from voter.core import monitor
from voter.core.adversary import Adversary, ChainForge, Traitor
from voter.core.crypto import KeyRing
from voter.core.diagnosis import Diagnosis, Evidence, find_evidence, om_suspects, split_value
from voter.core.drops import Drop
from voter.core.frame import WIRE_VERSION, Frame, check_frame
from voter.core.ic import Decision, decide, make_node
from voter.core.memhit import CODEWORD_BITS, STORE, TABLE, MemoryHit
from voter.core.om import OMNode
from voter.core.protocol import Algorithm, Params, is_oral, slot_setters
from voter.core.secded import EccStore, UncorrectableError
from voter.core.sm import SMNode
from voter.core.values import ReadingDomain, Value

DROP_LATE = "late"
DROP_DUPLICATE = "duplicate"
DROP_FUTURE = "future"
#: a frame of the other algorithm (signed under OM, unsigned under SM) around a mode switch
DROP_MODE = "mode"


class InconsistencyError(Exception):
    """This board's own state is inconsistent: it must stop (systemd restarts it)."""


@dataclass(slots=True)
class TickCounters:
    late: int = 0
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self, late: int = 0, dropped: int = 0, reasons: dict[str, int] | None = None
    ) -> None:
        self.late = late
        self.dropped = dropped
        self.reasons = {} if reasons is None else reasons

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class TickReport:
    decision: Decision
    late: int
    dropped: int
    reasons: dict[str, int]
    corrected: int = 0  #: memory bit errors the ECC store corrected this tick
    #: decision-log event lines of this tick (diagnosis: evidence, isolate, readmit)
    events: tuple[dict[str, Any], ...] = ()
    #: peers whose frames this tick were of the other algorithm (planned degradation)
    mode_peers: frozenset[int] = frozenset()

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        decision: Decision,
        late: int,
        dropped: int,
        reasons: dict[str, int],
        corrected: int = 0,
        events: tuple[dict[str, Any], ...] = (),
        mode_peers: frozenset[int] = frozenset(),
    ) -> None:
        _report_decision(self, decision)
        _report_late(self, late)
        _report_dropped(self, dropped)
        _report_reasons(self, reasons)
        _report_corrected(self, corrected)
        _report_events(self, events)
        _report_mode_peers(self, mode_peers)


(
    _report_decision,
    _report_late,
    _report_dropped,
    _report_reasons,
    _report_corrected,
    _report_events,
    _report_mode_peers,
) = slot_setters(TickReport)


@dataclass(slots=True)
class Totals:
    """Counters over the board's life (for STATUS= and run summaries)."""

    ticks: int = 0
    frames_in: int = 0
    frames_out: int = 0
    late: int = 0
    dropped: int = 0
    rejected_entries: int = 0
    corrected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


MemoryFault = Callable[[EccStore], None]


class Board:
    """A board's agreement engine across ticks (one tick open at a time)."""

    def __init__(
        self,
        params: Params,
        me: int,
        channels: int,
        keys: KeyRing,
        diagnosis: Diagnosis | None = None,
    ) -> None:
        self.params = params
        self.me = me
        self.channels = channels
        #: SM evidence / OM p/r diagnosis (None: off): its accusation channel widens the value
        self.diagnosis = diagnosis
        self.domain = ReadingDomain(channels + (diagnosis is not None))
        self.keys = keys
        self.store = EccStore()
        self.adversary: Adversary | None = None
        self.tick: int | None = None
        self.round = 0
        self.totals = Totals()
        self._node: OMNode | SMNode | None = None
        self._driven: OMNode | SMNode | Traitor | None = None
        self._local: Value = None
        self._counters = TickCounters()
        self._early: dict[tuple[int, int, int], Frame] = {}
        self._early_max = (params.nodes - 1) * (params.rounds + 1)
        self._got: set[int] = set()  # peers whose frame for the open round was delivered
        #: planned degradation is on: a frame of the algorithm this tick does not run is a
        #: counted drop (off by default, so runs without it see exactly the old counts)
        self.mode_checked = False
        self._mode_peers: set[int] = set()

    def set_algorithm(self, algorithm: Algorithm) -> None:
        """Run the next ticks under `algorithm` (a planned switch; between ticks only)."""
        if self._node is not None:
            raise InconsistencyError("algorithm switch inside an open tick")
        self.params = replace(self.params, algorithm=algorithm)
        if self.diagnosis is not None:  # SM's evidence rule under SM, the p/r count under OM
            self.diagnosis.pr = is_oral(algorithm)

    # -- the tick --------------------------------------------------------------
    def begin_tick(self, tick: int, reading: Value) -> list[Frame]:
        """Open `tick` with this board's reading; the frames of round 1."""
        if self.tick is not None and tick <= self.tick:
            raise ValueError(f"tick {tick} after tick {self.tick}: ticks only go forward")
        self.tick, self.round = tick, 1
        self._got = set()
        self._mode_peers = set()
        if self.diagnosis is not None:
            reading = self.diagnosis.commanded(reading)
        self._local = reading
        node = make_node(self.params, self.me, self.domain, reading, tick, self.keys)
        if self.diagnosis is not None and isinstance(node, SMNode):
            node.excluded_relayers = self.diagnosis.excluded
        self._node = node
        if self.adversary is not None:
            forge = (
                ChainForge(self.params, self.keys, self.domain, tick)
                if self.params.algorithm == "sm"
                else None
            )
            self._driven = Traitor(node, self.adversary, forge)
        else:
            self._driven = node
        # Buffered frames from older ticks can no longer be used.
        if self._early:
            for key in [k for k in self._early if k[0] < tick]:
                del self._early[key]
                self._counters.late += 1
        frames = self._frames(1)
        self._deliver_early()
        return frames

    def next_round(self) -> list[Frame]:
        """Close the current round; the next round's frames ([] after the last round)."""
        if self._driven is None or self.round >= self.params.rounds:
            self.round = self.params.rounds + 1
            return []
        self.round += 1
        self._got = set()
        frames = self._frames(self.round)
        self._deliver_early()
        return frames

    def round_complete(self) -> bool:
        """Every peer's frame for the open round is in: the round can close before its deadline.

        Loyal boards send a frame on every link in every round (empty if there is
        nothing to relay), so waiting longer could only add frames a loyal board
        never sends. A silent or slow peer keeps the round open until its deadline.
        """
        return self._driven is not None and len(self._got) >= self.params.nodes - 1

    def heard(self) -> frozenset[int]:
        """Peers whose frame for the open round was delivered (before it closed)."""
        return frozenset(self._got)

    def on_frame(self, peer: int, item: Frame | Drop) -> None:
        """Whatever the link from `peer` delivered: a decoded frame or a decoder drop."""
        c = self._counters
        if isinstance(item, Drop):
            c.drop(item.reason)
            return
        params = self.params
        if item.src != peer or item.dst != self.me or item.cluster != params.cluster:
            # Only then can `check_frame` find something (it checks exactly these three).
            bad = check_frame(item, cluster=params.cluster, src=peer, dst=self.me)
            if bad is not None:
                c.drop(bad.reason)
                return
        self.totals.frames_in += 1
        rnd = self.round
        # A driven node means an open tick (self.tick set): the (tick, round) compared as is.
        if (
            self._driven is not None
            and item.tick == self.tick
            and item.round == rnd
            and rnd <= params.m + 1
        ):
            self._receive(item)
            return
        now = (self.tick if self.tick is not None else -1, rnd)
        at = (item.tick, item.round)
        if at <= now:
            c.late += 1
        elif item.tick > now[0] + 1:
            c.drop(DROP_FUTURE)
        else:
            key = (item.tick, item.round, peer)
            if key in self._early:
                c.drop(DROP_DUPLICATE)
            elif len(self._early) >= self._early_max:
                c.drop(DROP_FUTURE)
            else:
                self._early[key] = item

    def finish_tick(
        self, memory_fault: MemoryFault | None = None, hits: Sequence[MemoryHit] = ()
    ) -> TickReport:
        """Decide, with COM/MON and the ECC store; raises InconsistencyError to stop the board.

        `hits` are HIL memory errors in the node's table (before COM and the store see
        it) and in the store's copy; the driver lands the other locations."""
        node = self._node
        if node is None or self.tick is None:
            raise InconsistencyError("finish_tick without an open tick")
        self.round = self.params.rounds + 1
        for hit in hits:
            if hit.location == TABLE:
                node.flip_table(hit.flips)
        com = node.decide()
        if isinstance(node, OMNode):
            self.store.put_obj("table", monitor.om_table(node.received_values()))
        else:
            self.store.put_obj("table", monitor.sm_table(node.accepted_all()))
        if memory_fault is not None:
            memory_fault(self.store)
        for hit in hits:
            if hit.location == STORE:
                self._flip_store(hit)
        corrected_before = self.store.corrected
        mon = self._monitor_decisions(node)
        if mon != com:
            diff = sorted(c for c in com if com[c] != mon.get(c))
            raise InconsistencyError(f"COM/MON disagree on commanders {diff}")
        local: Value = self._local
        events: tuple[dict[str, Any], ...] = ()
        if self.diagnosis is not None:
            com, local, events = self._diagnose(node, com)
        decision = decide(
            self.tick, self.me, local, com, node.counters, self.params.nodes, self.channels
        )
        if monitor.vote(decision.vector, self.channels) != decision.output:
            raise InconsistencyError("COM/MON disagree on the voted output")
        self._check_stored_vector(decision.vector)
        corrected = self.store.corrected - corrected_before
        self._add_to_totals(node, corrected)
        self._node = self._driven = None
        report = TickReport(
            decision,
            self._counters.late,
            self._counters.dropped + node.counters.rejected,
            {**self._counters.reasons, **node.counters.reasons},
            corrected,
            events,
            frozenset(self._mode_peers),
        )
        # Frames that arrive from now until the next tick opens count in the next report.
        self._counters = TickCounters()
        return report

    # -- internals -------------------------------------------------------------
    def _diagnose(
        self, node: OMNode | SMNode, com: dict[int, Value]
    ) -> tuple[dict[int, Value], Value, tuple[dict[str, Any], ...]]:
        """Evidence from this tick's signed values (SM) or the peers whose values contradict the
        agreed ones (OM), then the agreed accusations and isolations: (decisions without the
        accusation channel, own reading, events)."""
        diag = self.diagnosis
        assert diag is not None and self.tick is not None
        evidence: list[Evidence] = []
        if isinstance(node, SMNode):
            for c in self.params.commanders:
                ev = find_evidence(self.tick, c, node.signed_values(c)) if c != self.me else None
                if ev is not None:
                    evidence.append(ev)
        suspects = 0
        if isinstance(node, OMNode) and diag.pr:
            suspects = om_suspects(self.params, self.me, node.received_values(), com, diag.excluded)
        n = self.params.nodes
        vector, events = diag.end_tick(
            self.tick, [com.get(j) for j in range(n)], evidence, suspects
        )
        local = split_value(self._local, self.channels, n)[0]
        return dict(enumerate(vector)), local, tuple(events)

    def _flip_store(self, hit: MemoryHit) -> None:
        """Flip bits of the stored table's 72-bit codewords (check bits included)."""
        words = self.store.bit_count("table") // CODEWORD_BITS
        for word, bit in hit.flips:
            self.store.flip_bit("table", (word % words) * CODEWORD_BITS + bit % CODEWORD_BITS)

    def _monitor_decisions(self, node: OMNode | SMNode) -> dict[int, Value]:
        """MON: the decisions again, by the monitor's own code, from the table read back from
        the store (so a memory error the ECC cannot correct stops the board here)."""
        try:
            table = self.store.get_obj("table")
        except UncorrectableError as e:
            raise InconsistencyError(f"memory: {e}") from None
        if not isinstance(table, list):
            raise InconsistencyError("memory: message table unreadable")
        mon_decide = monitor.om_decisions if isinstance(node, OMNode) else monitor.sm_decisions
        try:
            return mon_decide(self.params, self.me, self._local, table)
        except (ValueError, TypeError, KeyError, AssertionError) as e:
            raise InconsistencyError(f"memory: message table malformed ({e})") from None

    def _check_stored_vector(self, vector: tuple[Value, ...]) -> None:
        """The agreed vector is what gets published: it too passes through the store."""
        # msgpack packs a tuple as the list `as_json_vector` would make of it: the same bytes
        self.store.put_obj("vector", vector)
        try:
            stored = self.store.get_obj("vector")
        except UncorrectableError as e:
            raise InconsistencyError(f"memory: {e}") from None
        if (
            not isinstance(stored, list)
            or tuple([tuple(v) if isinstance(v, list) else v for v in stored]) != vector
        ):  # `monitor.freeze` of each, inline
            raise InconsistencyError("memory: agreed vector changed in the store")

    def _add_to_totals(self, node: OMNode | SMNode, corrected: int) -> None:
        t = self.totals
        t.ticks += 1
        t.late += self._counters.late
        t.dropped += self._counters.dropped
        t.rejected_entries += node.counters.rejected
        t.corrected += corrected
        for r, n in self._counters.reasons.items():
            t.reasons[r] = t.reasons.get(r, 0) + n
        for r, n in node.counters.reasons.items():
            t.reasons[r] = t.reasons.get(r, 0) + n

    def _frames(self, round_no: int) -> list[Frame]:
        assert self._driven is not None and self.tick is not None
        out = self._driven.outgoing(round_no)
        frames = [
            Frame(
                WIRE_VERSION, self.params.cluster, self.me, dst, self.tick, round_no, tuple(entries)
            )
            for dst, entries in sorted(out.items())
            # Loyal boards always send (an empty frame says "nothing to relay" and lets the
            # receiver close the round early); a traitor's empty frame would undo its silence.
            if entries or self.adversary is None
        ]
        self.totals.frames_out += len(frames)
        return frames

    def _receive(self, frame: Frame) -> None:
        assert self._driven is not None
        if self.mode_checked and self._other_algorithm(frame):
            self._counters.drop(DROP_MODE)
            self._mode_peers.add(frame.src)
            return
        self._got.add(frame.src)
        self._driven.receive(frame.round, frame.src, frame.entries)

    def _other_algorithm(self, frame: Frame) -> bool:
        """Signed entries under OM, unsigned ones under SM: the sender runs the other mode."""
        if not frame.entries:
            return False
        signed = any(e.sigs for e in frame.entries)
        return signed == is_oral(self.params.algorithm)

    def _deliver_early(self) -> None:
        if self.tick is None or not self._early:
            return
        for key in sorted(k for k in self._early if k[0] == self.tick and k[1] == self.round):
            self._receive(self._early.pop(key))
