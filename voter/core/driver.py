"""The one tick driver: schedule, rounds, clock sync, self-checks, clique avoidance, the record.

`voterd` (serial links, the monotonic clock) and the simulator (virtual links and
time) both run a board through this class, so nothing of the tick is written
twice and the simulator finds the timing bugs a real board would have.
It is sans-I/O in the h11 sense: the caller hands in the time and whatever
arrived, and gets back what to write, log and publish.

The protocol with the caller (its shell)::

    while running:
        serve links until driver.next_deadline(), for each item read:
            perform(driver.on_frame(peer, item, now)); perform(driver.done(now))
        perform(driver.wake(now)); perform(driver.done(now))
    perform(driver.stop(now))

`wake` opens a tick (reading the sensor through the callable it was given) or
closes a round at its deadline; `on_frame` may close a round early (every
peer's frame is in). `perform` writes the `sends`, logs the `lines` and
publishes the `publish` outputs, then `done(now)` tells the driver *when that
finished*: a write or a decision that a stall pushed past its slot is then known
to the board itself, which is the point (DESIGN.md, "Timing is part of the protocol").

Before publishing, the board checks what it can know locally (docs/design.md,
Timing): it wrote a round after the round's send limit (`late-send`), a round
closed or a tick opened later than the precision allows (`stall`), it decided
after the period (`late-decide`), its clock was out of sync or stepped
(`clock`), more peers were missing than the fault model explains (`missing`).
Then, clique avoidance: each round-1 frame of tick k+1 carries a digest of the
sender's agreed vector of tick k and who it heard in time; a decision held by
fewer than N - f boards is `minority` (or `unheard`, `unconfirmed`). With
`publish="confirmed"` tick k is published only once tick k+1 confirmed it, so
two loyal boards can never both publish different vectors while at most f
boards are faulty (quorums of N - f intersect in a loyal board when N > 3f).
With `publish="immediate"` the output leaves at once and a minority is caught
one tick later: the board withholds until a tick of its own is confirmed again.
A withheld decision is still logged, with `"withheld": REASON`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, cast

from voter.core import monitor
from voter.core.adversary import Adversary, Rng
from voter.core.board import Board, InconsistencyError, MemoryFault, TickReport
from voter.core.clock import Correction, JoinListener, TwoWaySync, join_offset, two_way
from voter.core.drops import Drop
from voter.core.frame import DIGEST_BYTES, Frame, SyncBlock, check_frame, encode_frame
from voter.core.ic import as_json_vector
from voter.core.memhit import OUTPUT, READING, VECTOR, MemoryHit, flip_words
from voter.core.mode import DegradeConfig, ModeMonitor
from voter.core.mutation import Mutator
from voter.core.protocol import oral_bound
from voter.core.record import DecisionRecord
from voter.core.validity import Validity
from voter.core.values import Value

Publish = Literal["immediate", "confirmed"]
PUBLISH_MODES: tuple[Publish, ...] = ("confirmed", "immediate")


def parse_publish(text: object) -> Publish:
    """A publication mode from a config file, a campaign or a command line (ValueError)."""
    for mode in PUBLISH_MODES:
        if text == mode:
            return mode
    raise ValueError(f'publish must be "confirmed" or "immediate", got {text!r}')


#: withheld reasons, in the order they are checked (the first that applies is logged)
LATE_SEND = "late-send"
STALL = "stall"
LATE_DECIDE = "late-decide"
CLOCK = "clock"
MISSING = "missing"
MINORITY = "minority"
UNHEARD = "unheard"
UNCONFIRMED = "unconfirmed"
JOINING = "joining"
#: planned degradation: this board cannot vouch for which algorithm the tick ran (it did not
#: decide, or the cluster did not confirm, the vector the plan came from)
MODE = "mode"
WITHHELD_REASONS = (
    LATE_SEND,
    STALL,
    LATE_DECIDE,
    CLOCK,
    MISSING,
    MINORITY,
    UNHEARD,
    UNCONFIRMED,
    JOINING,
    MODE,
)
#: a peer missing from this many consecutive agreed vectors is known to be down
DOWN_AFTER_TICKS = 3
#: `_rejoin` takes over from the two-way sync beyond this many periods of offset. The
#: exchange pairs frames of neighbouring ticks and steps offsets up to ~0.95 of a period
#: (measured); from 1 to 2 periods neither path saw the jump, and the board withheld
#: every tick after it (the 10^6-tick soak's episodes 32 and 41: docs/design.md).
REJOIN_PERIODS = 0.8


class Sabotage(Protocol):
    """Faults the HIL rig injects into a board (voter.faults.FaultState); None = a loyal board."""

    def traitor(self, tick: int) -> str | None: ...
    def adversary(self, tick: int) -> Adversary | None: ...
    def late_ms(self, tick: int) -> float: ...
    def garbage(self, size: int) -> bytes: ...
    def memory_fault(self, tick: int) -> MemoryFault | None: ...
    def memory_hits(self, tick: int) -> Sequence[MemoryHit]: ...
    def corrupt_reading(self, tick: int, reading: Any) -> Any: ...
    def stall_s(self, tick: int) -> tuple[float, str] | None: ...
    @property
    def rng(self) -> Rng:
        """The faults' seeded generator (the `mutate` traitor draws from it)."""
        ...


@dataclass(frozen=True)
class Timing:
    """The static schedule and the bounds the self-checks use (seconds)."""

    period_s: float
    rounds: int
    nodes: int
    #: fraction of the period given to the rounds; the rest decides and logs
    rounds_fraction: float = 0.8
    #: largest offset between loyal clocks a board may have and still vouch for its timing
    precision_s: float = 0.0
    #: the links' fixed one-way delay beyond the wire time, until measured
    latency_s: float = 0.0
    #: the largest frame's time on the wire (bytes * 10 / baud)
    wire_s: float = 0.0
    publish: Publish = "confirmed"
    #: debug only: publish every decision (no self-checks, no clique avoidance)
    fail_silent: bool = True

    @property
    def slot_s(self) -> float:
        return self.period_s * self.rounds_fraction / self.rounds

    @property
    def f(self) -> int:
        """Faults the timing quorums tolerate: the OM bound, also under SM (N - f quorums)."""
        return oral_bound(self.nodes)

    @property
    def precision(self) -> float:
        return self.precision_s if self.precision_s > 0 else self.slot_s / 8

    def send_limit(self, delay_s: float) -> float:
        """Latest write after a round's start that still reaches every peer in its slot,
        given the one-way delay from a write to the peer's read (wire time included)."""
        return self.slot_s - delay_s - self.precision


@dataclass
class Outgoing:
    dst: int
    raw: bytes | None  #: the wire bytes; None until `data` first encodes `frame`
    frame: Frame | None  #: the frame `data` encodes (None: bytes a traitor made up or replays)
    due: float  #: local time to write it (later than now only for the `late` traitor)

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(self, dst: int, raw: bytes | None, frame: Frame | None, due: float) -> None:
        self.dst = dst
        self.raw = raw
        self.frame = frame
        self.due = due

    @property
    def data(self) -> bytes:
        """The wire bytes, encoded on first use: the simulator's fast lane needs only their size."""
        if self.raw is None:
            assert self.frame is not None
            self.raw = encode_frame(self.frame)
        return self.raw


@dataclass
class Actions:
    """What the shell must do now, in this order: stall, write, log, publish."""

    sends: list[Outgoing] = field(default_factory=list)
    #: log lines in order: the tick's decision record and event lines (plain dicts)
    lines: list[DecisionRecord | dict[str, Any]] = field(default_factory=list)
    publish: list[dict[str, Any]] = field(default_factory=list)
    #: HIL stall fault: freeze this long, before or after writing the sends
    stall_s: float = 0.0
    stall_when: str = ""
    #: the tick whose decision `done` just settled (the shell's cue for health and GC)
    decided: int | None = None

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        sends: list[Outgoing] | None = None,
        lines: list[DecisionRecord | dict[str, Any]] | None = None,
        publish: list[dict[str, Any]] | None = None,
        stall_s: float = 0.0,
        stall_when: str = "",
        decided: int | None = None,
    ) -> None:
        self.sends = [] if sends is None else sends
        self.lines = [] if lines is None else lines
        self.publish = [] if publish is None else publish
        self.stall_s = stall_s
        self.stall_when = stall_when
        self.decided = decided

    def extend(self, other: Actions) -> None:
        self.sends += other.sends
        self.lines += other.lines
        self.publish += other.publish
        if other.stall_s:
            self.stall_s, self.stall_when = other.stall_s, other.stall_when
        if other.decided is not None:
            self.decided = other.decided


@dataclass
class _TickRecord:
    """What one tick left for the next: the two-way echo and the digest."""

    tick: int
    cum: float  #: the clock's cumulative correction while the tick ran
    send_lag: float | None = None  #: our round-1 write, after t0
    arrivals: dict[int, float] = field(default_factory=dict)  #: peer -> read of its round 1
    late: bool = False  #: we were late ourselves: no clock samples from this tick
    heard: int = 0  #: bitmap of peers heard in time in round 1
    digest: bytes | None = None
    #: channels of our own reading the validity checks voided this tick: name -> reason
    invalid: dict[str, str] = field(default_factory=dict)
    #: round-1 timing blocks received for this tick, with whether each was in time
    blocks: dict[int, SyncBlock] = field(default_factory=dict)

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        tick: int,
        cum: float,
        send_lag: float | None = None,
        arrivals: dict[int, float] | None = None,
        late: bool = False,
        heard: int = 0,
        digest: bytes | None = None,
        invalid: dict[str, str] | None = None,
        blocks: dict[int, SyncBlock] | None = None,
    ) -> None:
        self.tick = tick
        self.cum = cum
        self.send_lag = send_lag
        self.arrivals = {} if arrivals is None else arrivals
        self.late = late
        self.heard = heard
        self.digest = digest
        self.invalid = {} if invalid is None else invalid
        self.blocks = {} if blocks is None else blocks


@dataclass
class _Pending:
    """A decided tick waiting for its confirmation (publish="confirmed")."""

    tick: int
    record: DecisionRecord
    output: dict[str, Any]
    reason: str | None

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self, tick: int, record: DecisionRecord, output: dict[str, Any], reason: str | None
    ) -> None:
        self.tick = tick
        self.record = record
        self.output = output
        self.reason = reason


def vector_digest(vector: tuple[Value, ...]) -> bytes:
    """The first DIGEST_BYTES of BLAKE2b over the vector's JSON form.

    Python's float repr is the shortest round-trip form on every architecture, so
    boards holding equal vectors compute equal digests. A 4-byte digest lets two
    different vectors pass for one with probability 2^-32 per disagreement.
    """
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(repr(as_json_vector(vector)).encode())
    return h.digest()


def _mode_monitor(board: Board, degrade: DegradeConfig | None) -> ModeMonitor:
    """The board's fault-bound monitor; with `degrade` it plans switches and the board drops
    frames of the algorithm a tick does not run."""
    p = board.params
    board.mode_checked = degrade is not None
    return ModeMonitor(board.me, p.nodes, p.m, p.algorithm, None if degrade is None else degrade.to)


def _us(seconds: float) -> int:
    return round(seconds * 1e6)


class TickDriver:
    """One board's ticks against its local clock (times are the board's local seconds)."""

    def __init__(
        self,
        board: Board,
        timing: Timing,
        read: Callable[[int], Value],
        *,
        algorithm: str,
        sabotage: Sabotage | None = None,
        cpu_clock: Callable[[], float] | None = None,
        validity: Validity | None = None,
        degrade: DegradeConfig | None = None,
    ) -> None:
        self.board = board
        self.me = board.me
        self.n = board.params.nodes
        self.rounds = board.params.rounds
        self.cluster = board.params.cluster
        self.timing = timing
        self.read = read
        self.algorithm = algorithm
        self.sabotage = sabotage
        #: the checks on our own reading before we command it (None: every sample goes out)
        self.validity = validity
        #: the fault-bound monitor (always: STATUS=), and the planned switch when `degrade`
        self.mode = _mode_monitor(board, degrade)
        #: the board's CPU-time clock (the daemon's thread time; the simulator's model)
        self.cpu_clock = cpu_clock
        self._cpu_last: float | None = None
        self.cpu_ticks: deque[float] = deque(maxlen=256)
        self.period = timing.period_s
        self.slot = timing.slot_s
        self.sync = TwoWaySync(timing.period_s, timing.f, timing.precision)
        self.epoch = 0.0
        self.tick = 0  #: the tick open, or the next to open
        self.round = 0  #: 0 = between ticks
        self.started = False
        #: one-way delay from a write to the peer's read, wire time included: configured
        #: (latency + the largest frame's wire time) until the two-way exchange measures it
        self.latency = timing.latency_s + timing.wire_s
        self.totals: dict[str, int] = {"published": 0, "withheld": 0, "skipped": 0}
        self.withheld: dict[str, int] = {}
        self.precision_seen: float | None = None
        self.last_correction = Correction()
        self._records: dict[int, _TickRecord] = {}
        self._pending: _Pending | None = None
        self._trusted = False  # immediate mode: our last digest was confirmed
        self._confirm: str | None = None  # result for the previous tick, set at round-1 close
        self._down_runs = [0] * self.n
        self._stalled = False
        self._after_skip = False
        self._stepped = False
        self._send_lag_max = 0.0
        #: writes handed to the shell and not yet done: (tick, round, scheduled start)
        self._unsent: list[tuple[int, int, float]] = []
        self._decided: TickReport | None = None
        self._replay: list[tuple[int, bytes]] = []
        self._hits: tuple[MemoryHit, ...] = ()  #: HIL memory errors of the open tick
        #: the `mutate` traitor's memory and counts (made when it first acts)
        self.mutator: Mutator | None = None
        #: peers heard more than a tick away from us (a clock jump beyond the period)
        self._far = JoinListener(timing.period_s)
        self._far_ticks = 0
        self._overrun_at = -(10**9)
        #: the last tick to decide (None: run until stopped); see `finished`
        self.stop_after: int | None = None
        self._halted = False

    # -- time ----------------------------------------------------------------------
    def vt(self, now: float) -> float:
        return now - self.epoch

    def t0(self, tick: int) -> float:
        return tick * self.period

    def next_deadline(self) -> float:
        """Local time of the next `wake`."""
        if self.round == 0:
            return self.epoch + self.t0(self.tick)
        return self.epoch + self.t0(self.tick) + self.round * self.slot

    def start(self, epoch: float, first_tick: int) -> None:
        """Tick `first_tick` starts at local time epoch + first_tick * period (after a join)."""
        self.epoch = epoch
        self.tick = first_tick
        self.round = 0
        self.started = True
        self._trusted = False

    # -- the calls ---------------------------------------------------------------------
    def wake(self, now: float) -> Actions:
        """The deadline has come: open the tick, or close the open round."""
        if now < self.next_deadline() or self.finished:
            return Actions()
        if self.round == 0:
            return self._open(now)
        return self._close_round(now, early=False)

    def on_frame(self, peer: int, item: Frame | Drop, now: float) -> Actions:
        """Whatever the link from `peer` delivered, read at local time `now`."""
        if isinstance(item, Frame):
            if item.round == 1:
                self._note_round1(peer, item, now)
            deadline = self.t0(self.tick) + self.round * self.slot
            if (
                self.round
                and (item.tick, item.round) == (self.tick, self.round)
                and self.vt(now) > deadline + self.timing.precision
            ):
                # Read more than the precision after our deadline (we were descheduled or
                # stalled): it may have come after the deadline, where a peer on time would
                # have called it late. Taking it is fine for this tick's vote only if we do
                # not vouch for the tick.
                self._stalled = True
        self.board.on_frame(peer, item)
        if self.round and not self._halted and self.board.round_complete():
            return self._close_round(now, early=True)
        return Actions()

    def done(self, now: float) -> Actions:
        """The shell finished what the last call asked for, at local time `now`."""
        out = Actions()
        for tick, round_no, start in self._unsent:
            lag = self.vt(now) - start
            self._send_lag_max = max(self._send_lag_max, lag)
            if round_no == 1:
                rec = self._records.get(tick)
                if rec is not None:
                    rec.send_lag = self.vt(now) - self.t0(tick)
        self._unsent.clear()
        if self._decided is not None:
            report, self._decided = self._decided, None
            out.extend(self._settle(report, now))
            out.decided = report.decision.tick
        return out

    @property
    def finished(self) -> bool:
        """Past `stop_after`, with nothing left to confirm.

        A board that stops after tick k still runs round 1 of tick k+1 (and decides
        nothing more), so its decision of k is confirmed like every other."""
        if self.stop_after is None or self.tick <= self.stop_after:
            return False
        return self._halted or (self.round == 0 and self._pending is None)

    def stop(self, now: float) -> Actions:
        """The board stops: a decision still waiting for confirmation is withheld."""
        out = Actions()
        if self._pending is not None:
            out.extend(self._finalize(UNCONFIRMED, now))
        return out

    # -- opening a tick ------------------------------------------------------------------
    def _open(self, now: float) -> Actions:
        out = Actions()
        k = self.tick
        lateness = self.vt(now) - self.t0(k)
        if self._pending is not None and self._pending.tick < k - 1:
            out.extend(self._finalize(UNCONFIRMED, now))  # the tick that would confirm it is gone
        if lateness > self.slot:
            # Too late to send round 1 in its slot (a stall or a clock step): skip ahead.
            nxt = int(self.vt(now) // self.period) + 1
            out.lines.append(
                {
                    "event": "skip",
                    "node": self.me,
                    "tick": k,
                    "to": nxt,
                    "late_ms": round(lateness * 1e3, 3),
                }
            )
            self.totals["skipped"] += nxt - k
            if self._pending is not None:
                out.extend(self._finalize(UNCONFIRMED, now))
            self.tick = nxt
            self._after_skip = True
            self._trusted = False
            return out
        if self._rejoin(now, out):
            return out
        sab = self.sabotage
        reading = self.read(k)
        if sab is not None:
            reading = sab.corrupt_reading(k, reading)
            self.board.adversary = sab.adversary(k)
            self._hits = tuple(sab.memory_hits(k))
            for hit in self._hits:
                if hit.location == READING:
                    reading = flip_words(reading, hit.flips)
        prev = self._records.get(k - 1)
        rec = self._records.setdefault(k, _TickRecord(k, self.sync.cum))
        rec.cum = self.sync.cum
        if self.validity is not None:
            # After the sensor (and a HIL sensor fault): what the board commands is checked.
            reading, rec.invalid = self.validity.check(k, reading)
        for old in [t for t in self._records if t < k - 1]:
            del self._records[old]
        # Opening late only delays our writes (the late-send check); the round-1 deadline holds.
        self._stalled = self._after_skip
        self._after_skip = False
        self._stepped = False
        self._send_lag_max = 0.0
        self._switch(k, out)
        frames = self.board.begin_tick(k, reading)
        frames = [self._with_sync(f, prev) for f in frames]
        self.round = 1
        out.sends += self._encode(frames, k, now)
        self._unsent.append((k, 1, self.t0(k)))
        if sab is not None:
            stall = sab.stall_s(k)
            if stall is not None:
                out.stall_s, out.stall_when = stall
        if self.board.round_complete():  # every peer's frame was already waiting
            more = self._close_round(now, early=True)
            out.extend(more)
        return out

    def _switch(self, k: int, out: Actions) -> None:
        """Tick k runs the algorithm the confirmed vector of k - 2 planned (a `mode` event)."""
        out.lines += self.mode.open(k)
        alg = self.mode.algorithm_at(k)
        if alg != self.board.params.algorithm:
            self.board.set_algorithm(alg)
            self.algorithm = alg

    def _rejoin(self, now: float, out: Actions) -> bool:
        """f+1 peers agree we are most of a tick off or more, three ticks running: join
        them again.

        The two-way exchange only pairs frames of neighbouring ticks, so a clock
        that jumped by a period or more is found here, from the one-way arrival
        of the peers' round-1 frames, as when the board first joined.
        """
        offsets = list(self._far.offsets().values())
        self._far = JoinListener(self.period)
        agreed = join_offset(offsets, self.timing.f, self.slot / 2)
        if agreed is not None and abs(agreed) <= REJOIN_PERIODS * self.period:
            agreed = None  # the two-way exchange measures and steps this (TwoWaySync)
        self._far_ticks = self._far_ticks + 1 if agreed is not None else 0
        if agreed is None or self._far_ticks < 3:
            return False
        self._far_ticks = 0
        self.epoch -= agreed
        self.sync.applied(agreed)
        self.sync.forget()
        if self._pending is not None:
            out.extend(self._finalize(CLOCK, now))
        # Ticks only go forward: a board that ran ahead waits for the cluster to pass it.
        nxt = max(int(self.vt(now) // self.period) + 1, (self.board.tick or 0) + 1)
        out.lines.append(
            {
                "event": "rejoin",
                "node": self.me,
                "tick": self.tick,
                "to": nxt,
                "step_us": _us(agreed),
            }
        )
        self.tick = nxt
        self._after_skip = True
        self._trusted = False
        return True

    def _with_sync(self, frame: Frame, prev: _TickRecord | None) -> Frame:
        """Round-1 frame + the timing block about our previous tick (digest, heard, echo)."""
        if prev is None:
            return frame
        arrival = prev.arrivals.get(frame.dst)
        block = SyncBlock(
            prev.digest,
            prev.heard if prev.digest is not None else 0,
            None if arrival is None else _us(arrival),
            None if prev.send_lag is None else max(0, _us(prev.send_lag)),
        )
        if block.is_empty():
            return frame
        # Not `dataclasses.replace`: it looks the fields up on every call (1/4 of this method).
        f = frame
        return Frame(f.version, f.cluster, f.src, f.dst, f.tick, f.round, f.entries, block)

    def _encode(self, frames: list[Frame], tick: int, now: float) -> list[Outgoing]:
        sab = self.sabotage
        strategy = sab.traitor(tick) if sab is not None else None
        if sab is not None and strategy == "mutate":
            if self.mutator is None:
                self.mutator = Mutator()
            frames = self.mutator.mutate(frames, sab.rng)
        out = [Outgoing(f.dst, None, f, now) for f in frames]
        if sab is None or strategy is None:
            return out
        if strategy == "garbage":
            return [Outgoing(o.dst, sab.garbage(len(o.data)), None, now) for o in out]
        if strategy == "replay":
            old, self._replay = self._replay, [(o.dst, o.data) for o in out]
            return [Outgoing(dst, data, None, now) for dst, data in old]
        if strategy == "late":
            due = now + sab.late_ms(tick) / 1000
            return [Outgoing(o.dst, o.data, o.frame, due) for o in out]
        return out

    # -- receiving ------------------------------------------------------------------------
    def _note_round1(self, peer: int, frame: Frame, now: float) -> None:
        """Arrival time and timing block of a peer's round-1 frame (this tick or the next)."""
        if not self.started:
            return
        if check_frame(frame, cluster=self.cluster, src=peer, dst=self.me) is not None:
            return
        # Every round-1 frame times the one-way view `_rejoin` reads: a clock that jumped
        # by 1-2 periods still sees its peers' frames as of a neighbouring tick.
        self._far.observe(peer, frame.tick, self.vt(now), self.latency)
        # A late frame of the previous tick still times the link (the echo needs it).
        if not self.tick - 1 <= frame.tick <= self.tick + 1:
            return
        rec = self._records.get(frame.tick)
        if rec is None:
            if len(self._records) >= 4:
                return
            rec = self._records[frame.tick] = _TickRecord(frame.tick, self.sync.cum)
        if peer in rec.arrivals:
            return  # a duplicate (or a replay): the first one timed the link
        rec.arrivals[peer] = self.vt(now) - self.t0(frame.tick)
        if frame.sync is not None:
            rec.blocks[peer] = frame.sync
            self._sample(peer, frame.tick - 1, frame.sync)

    def _sample(self, peer: int, tick: int, block: SyncBlock) -> None:
        """A two-way exchange about `tick` completes with this echo."""
        rec = self._records.get(tick)
        if (
            rec is None
            or rec.late
            or rec.send_lag is None
            or block.echo_us is None
            or block.lag_us is None
            or peer not in rec.arrivals
        ):
            return
        theta, rtt = two_way(
            block.echo_us * 1e-6, block.lag_us * 1e-6, rec.arrivals[peer], rec.send_lag
        )
        self.sync.add(peer, tick, theta, rtt, rec.cum)

    # -- closing rounds ------------------------------------------------------------------
    def _close_round(self, now: float, early: bool) -> Actions:
        out = Actions()
        k, r = self.tick, self.round
        if r == 1:
            self._round1_closed(now, out)
            if self.stop_after is not None and k > self.stop_after:
                self._halted = True  # this round 1 only confirmed the last tick
                return out
        frames = self.board.next_round()
        if r < self.rounds:
            self.round = r + 1
            out.sends += self._encode(frames, k, now)
            start = self.vt(now) if early else self.t0(k) + r * self.slot
            self._unsent.append((k, r + 1, start))
            if self.board.round_complete():
                out.extend(self._close_round(now, early=True))
            return out
        # The last round closed: decide now; `done` settles it when the shell is through.
        report = self.board.finish_tick(
            self.sabotage.memory_fault(k) if self.sabotage is not None else None, self._hits
        )
        self._decided = report
        self.round = 0
        self.tick = k + 1
        return out

    def _round1_closed(self, now: float, out: Actions) -> None:
        """Round 1 is over: who we heard in time, and what their digests say of our last tick."""
        k = self.tick
        rec = self._records[k]
        heard = self.board.heard()
        rec.heard = sum(1 << j for j in heard)
        prev = self._records.get(k - 1)
        if prev is None or prev.digest is None:
            self._confirm = None
        else:
            self._confirm = self._judge(prev, {j: rec.blocks[j] for j in heard if j in rec.blocks})
            if self._confirm == "ok":
                self.mode.confirm(prev.tick)
            if self._confirm == MINORITY:
                out.lines.append(
                    {
                        "event": "minority",
                        "node": self.me,
                        "tick": prev.tick,
                        "digests": {
                            str(j): b.digest.hex() if b.digest else None
                            for j, b in sorted(rec.blocks.items())
                        },
                        "own": prev.digest.hex(),
                    }
                )
        if self.timing.publish == "immediate":
            self._trusted = (self._confirm is None and self._trusted) or self._confirm == "ok"
        if self._pending is not None and self._pending.tick == k - 1:
            out.extend(self._finalize(None if self._confirm == "ok" else self._confirm, now))

    def _judge(self, prev: _TickRecord, blocks: dict[int, SyncBlock]) -> str:
        """Is our decision of `prev.tick` held by N - f boards that heard us? ("ok" or why not)."""
        quorum = self.n - self.timing.f
        support = 1 + sum(1 for b in blocks.values() if b.digest == prev.digest)
        heard_me = sum(
            1 for b in blocks.values() if b.digest is not None and b.heard >> self.me & 1
        )
        others: dict[bytes, int] = {}
        for b in blocks.values():
            if b.digest is not None and b.digest != prev.digest:
                others[b.digest] = others.get(b.digest, 0) + 1
        if support >= quorum and heard_me >= self.timing.f + 1:
            return "ok"
        if others and max(others.values()) >= support:
            return MINORITY
        if heard_me < self.timing.f + 1 and support < quorum:
            return UNHEARD if len(blocks) >= self.timing.f + 1 else UNCONFIRMED
        return UNCONFIRMED

    # -- deciding and publishing -----------------------------------------------------------
    def _settle(self, report: TickReport, now: float) -> Actions:
        """The decision is made (at `now`): check, record, publish or withhold."""
        out = Actions()
        report = self._land_hits(report)
        d = report.decision
        k = d.tick
        decided = self.vt(now) - self.t0(k)
        rec = self._records.get(k)
        if rec is None:
            rec = self._records[k] = _TickRecord(k, self.sync.cum)
        rec.digest = vector_digest(d.vector)
        late = self._late_reason(decided)
        # A stalled board read its frames late: no clock sample from this tick. A late write
        # is measured (the echo carries it), so those ticks still feed the sync and latency.
        rec.late = self._stalled
        overrun = self._overrun(k, late, decided)
        if overrun is not None:
            out.lines.append(overrun)
        out.lines += report.events  # diagnosis: evidence, isolate, readmit
        diag = self.board.diagnosis
        out.lines += self.mode.observe(k, d.vector, () if diag is None else diag.excluded)
        self.mode.lost(k, len(report.mode_peers), self.timing.f + 1)
        corr, moved = self._correct_clock(k, rec, out)
        reason = late or self._state_reason(report, corr)
        record = self._record(report, rec, decided, corr, moved)
        output = {
            "tick": k,
            "node": d.node,
            "output": list(d.output),
            "entries": sum(1 for v in d.vector if v is not None),
        }
        self._track_down(d.vector)
        out.extend(self._publish(record, output, reason))
        return out

    def _land_hits(self, report: TickReport) -> TickReport:
        """HIL memory errors in the agreed vector or the output, after COM/MON checked them:
        what a flip there does is what the rest of the tick (digest, publication) makes of it."""
        hits, self._hits = self._hits, ()
        d = report.decision
        for hit in hits:
            if hit.location == VECTOR:
                d = replace(d, vector=cast("tuple[Value, ...]", flip_words(d.vector, hit.flips)))
            elif hit.location == OUTPUT:
                d = replace(
                    d, output=cast("tuple[float | None, ...]", flip_words(d.output, hit.flips))
                )
        return report if d is report.decision else replace(report, decision=d)

    def _overrun(self, k: int, late: str | None, decided: float) -> dict[str, Any] | None:
        """The `overrun` event for a tick this board sent or decided late (at most 1/s)."""
        if late not in (LATE_SEND, LATE_DECIDE) or k - self._overrun_at < max(
            1, round(1 / self.period)
        ):
            return None
        self._overrun_at = k
        return {
            "event": "overrun",
            "node": self.me,
            "tick": k,
            "what": "send" if late == LATE_SEND else "decide",
            "send_lag_us": _us(self._send_lag_max),
            "decided_us": _us(decided),
            "send_limit_us": _us(self.timing.send_limit(self.latency)),
        }

    def _correct_clock(self, k: int, rec: _TickRecord, out: Actions) -> tuple[Correction, float]:
        """Apply this tick's clock correction (a step is logged); (correction, seconds moved)."""
        # Samples are about earlier ticks; a stalled board leaves its clock alone this tick.
        corr = self.sync.correction(k) if not rec.late else Correction()
        moved = corr.step or corr.slew
        if corr.step:
            self._stepped = True
            # What the one-way view saw was the clock before this step: not a second one.
            self._far, self._far_ticks = JoinListener(self.period), 0
            out.lines.append(
                {"event": "clock-step", "node": self.me, "tick": k, "step_us": _us(corr.step)}
            )
        if moved:
            self.epoch -= moved
            self.sync.applied(moved)
        self.last_correction = corr
        if corr.precision is not None:
            self.precision_seen = corr.precision
        latency = self.sync.latency(k)
        if latency is not None:
            self.latency = latency
        return corr, moved

    def _record(
        self, report: TickReport, rec: _TickRecord, decided: float, corr: Correction, moved: float
    ) -> DecisionRecord:
        """The decision line: the one place a DecisionRecord is built (voterd and simulator)."""
        d = report.decision
        record = DecisionRecord(
            tick=d.tick,
            node=d.node,
            algorithm=self.algorithm,
            local=list(d.local) if isinstance(d.local, tuple) else d.local,
            vector=as_json_vector(d.vector),
            output=list(d.output),
            messages=d.messages,
            late=report.late,
            dropped=report.dropped,
            corrected=report.corrected,
            reasons=report.reasons or None,
            invalid=rec.invalid or None,
            timing={
                "lateness_us": _us(rec.send_lag) if rec.send_lag is not None else None,
                "decided_us": _us(decided),
                "clock_us": _us(moved),
                "offset_us": None if corr.midpoint is None else _us(corr.midpoint),
                "precision_us": None if corr.precision is None else _us(corr.precision),
                "latency_us": _us(self.latency),
            },
            sync=corr.in_sync,
        )
        if self.cpu_clock is not None:
            cpu_now = self.cpu_clock()
            if self._cpu_last is not None:
                self.cpu_ticks.append(cpu_now - self._cpu_last)
                record.cpu_us = _us(cpu_now - self._cpu_last)
            self._cpu_last = cpu_now
        return record

    def _publish(
        self, record: DecisionRecord, output: dict[str, Any], reason: str | None
    ) -> Actions:
        """Publish now, hold for confirmation, or withhold with the first reason that applies."""
        if not self.timing.fail_silent:
            return self._emit(record, output, None)
        if self.timing.publish == "confirmed":
            self._pending = _Pending(record.tick, record, output, reason)
            return Actions()
        if reason is None and not self._trusted:
            reason = self._confirm if self._confirm not in (None, "ok") else JOINING
        return self._emit(record, output, reason)

    def _late_reason(self, decided: float) -> str | None:
        """Did this board keep its own schedule this tick? (it alone can know)"""
        if self._send_lag_max > self.timing.send_limit(self.latency):
            return LATE_SEND
        if self._stalled:
            return STALL
        if decided > self.period:
            return LATE_DECIDE
        return None

    def _state_reason(self, report: TickReport, corr: Correction) -> str | None:
        """Is its clock in sync, and did it hear as many peers as the fault model allows?"""
        if self._stepped or not corr.in_sync:
            return CLOCK
        rec = self._records.get(report.decision.tick)
        heard = rec.heard if rec is not None else 0
        f = self.timing.f
        down = {j for j in range(self.n) if self._down_runs[j] >= DOWN_AFTER_TICKS}
        unheard = [
            j for j in range(self.n) if j != self.me and j not in down and not heard >> j & 1
        ]
        nulls = [
            j
            for j, v in enumerate(report.decision.vector)
            if v is None and j != self.me and j not in down
        ]
        if len(unheard) > f or len(nulls) > f:
            return MISSING
        return None

    def _track_down(self, vector: tuple[Value, ...]) -> None:
        for j, v in enumerate(vector):
            self._down_runs[j] = self._down_runs[j] + 1 if v is None else 0

    def _finalize(self, confirm: str | None, now: float) -> Actions:
        """Publish or withhold the pending (confirmed-mode) decision."""
        p = self._pending
        assert p is not None
        self._pending = None
        reason = p.reason or confirm
        p.record.published_us = _us(self.vt(now) - self.t0(p.tick))
        return self._emit(p.record, p.output, reason)

    def _emit(self, record: DecisionRecord, output: dict[str, Any], reason: str | None) -> Actions:
        out = Actions()
        if reason is None and self.timing.fail_silent and not self.mode.sure_of(record.tick):
            reason = MODE  # the last check: every other reason says more about why
        if reason is None:
            self._check_output(record, output)
        if reason is not None:
            record.withheld = reason
            self.totals["withheld"] += 1
            self.withheld[reason] = self.withheld.get(reason, 0) + 1
        else:
            self.totals["published"] += 1
            out.publish.append(output)
        out.lines.append(record)
        return out

    def _check_output(self, record: DecisionRecord, output: dict[str, Any]) -> None:
        """MON once more, at publication: the output leaving is the vote of the recorded vector.

        COM/MON and the store checked both in `finish_tick`; a confirmed decision then
        waits a tick in memory, where nothing else guards the output (the soak's memory
        injections published every flip there silently, docs/hil.md "Soak")."""
        vector = tuple(monitor.freeze(v) for v in record.vector)
        if tuple(output["output"]) != monitor.vote(vector, self.board.channels):
            raise InconsistencyError("memory: output changed before publication")

    # -- for STATUS= ------------------------------------------------------------------------
    def cpu_p99(self) -> float | None:
        """CPU time of a whole tick (the board's process, all of it), p99 of the last 256."""
        if not self.cpu_ticks:
            return None
        ordered = sorted(self.cpu_ticks)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def status(self) -> str:
        prec = "?" if self.precision_seen is None else f"{self.precision_seen * 1e3:.2f} ms"
        w = ", ".join(f"{r} {n}" for r, n in sorted(self.withheld.items())) or "none"
        cpu = self.cpu_p99()
        return (
            f"published {self.totals['published']}, withheld {self.totals['withheld']} ({w}), "
            f"precision {prec}, one-way delay {self.latency * 1e3:.2f} ms"
            + ("" if cpu is None else f", tick CPU p99 {cpu * 1e3:.2f} ms")
            + ("" if self.board.diagnosis is None else f", {self.board.diagnosis.status()}")
            + f", {self.mode.status()}"
            + self._invalid_status()
        )

    def _invalid_status(self) -> str:
        """`, invalid altitude_m stale 12 ...` once the validity checks voided a sample."""
        if self.validity is None or not self.validity.counts:
            return ""
        parts = (f"{ch} {r} {n}" for (ch, r), n in sorted(self.validity.counts.items()))
        return ", invalid " + ", ".join(parts)
