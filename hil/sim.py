"""The deterministic in-process simulator: the whole cluster in one process, one seed.

Each board is the daemon's own `voter.core.driver.TickDriver` around the same
`Board`, driven exactly as `voterd` drives it (wake at the deadline, frames as
they arrive, `done` when the writes are through), with the same HIL fault code
(`voter.faults.FaultState`). Only the links, the clocks and the CPU are simulated:

- **time**: true time is a float in seconds; board i's clock reads
  t * (1 + drift_i) + offset_i (a clock-step fault moves offset_i). Every event (a
  board waking, a frame arriving) is ordered by (time, sequence), as in one priority
  queue; frames waiting for a busy board and re-armed wake-ups keep their place in
  that order without a heap entry each (`_defer`, `_schedule`);
- **CPU**: each call into the driver keeps its board busy for a processing time
  drawn from a distribution (`cpu_ms` median, with an exponential tail, a
  decision `decide_ms` more), and a `stall` fault freezes it, before or after it
  writes round 1. Frames that arrive while a board is busy wait in its input
  buffer, as in a kernel's. So a board can be late, and the driver's
  self-checks, clique avoidance and the checker's timeliness check see it;
- **links**: a frame takes its bytes' time on the wire at the baud rate, after
  the frame ahead of it on the same direction, plus a fixed latency and any
  link-delay / link-jitter fault; frames on a direction stay in order. When its
  bytes arrive they go into an in-memory cable (`voter.bytelink.MemoryLink`) and
  the board reads them through the daemon's framed `voter.links.Link`.

Every random choice comes from generators derived from the scenario seed, so a
seed run twice gives the identical history (its hash is part of the result).

Fast lane: a link that no fault of the scenario can touch (no link fault on it,
and a sender without a frame-level traitor strategy) hands the receiver the
Frame object instead of feeding the encoded bytes through its FrameSplitter;
for a frame the encoder accepted the decode gives back an equal Frame.
`SimConfig.fast_lane=False` forces the full path everywhere (the differential
tests compare the two).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.channel import LinkChannel
from hil.checks import CheckResult, NodeLog
from hil.faultspec import faulty_nodes
from hil.outcome import RunOutcome, sum_links, timeline
from hil.scenario import CHANNELS as CHANNEL_NAMES
from hil.scenario import Scenario
from hil.smr_sim import SmrRunner
from hil.streamcheck import StreamCheck
from voter.budget import ROUNDS_FRACTION
from voter.bytelink import MemoryLink, memory_pair
from voter.core.board import Board, InconsistencyError
from voter.core.diagnosis import DiagnosisConfig, make_diagnosis
from voter.core.driver import Actions, Outgoing, Publish, TickDriver, Timing
from voter.core.drops import Drop
from voter.core.frame import Frame, FrameSplitter, decode_frame, wire_size
from voter.core.ic import ic_params
from voter.core.memhit import MemoryHit
from voter.core.mode import DegradeConfig
from voter.core.protocol import Algorithm
from voter.core.record import DecisionRecord
from voter.core.validity import ChannelLimits, from_limits
from voter.core.values import ReadingDomain
from voter.decision_log import DecisionLog
from voter.faultmodel import Crash, Fault, Traitor, is_board, is_link
from voter.faults import FaultState
from voter.links import Link
from voter.sensors import SimSensor
from voter.simkeys import board_keys

CHANNELS = 3
RESTART_S = 1.0  # systemd RestartSec=1s in the shipped unit
#: the bytes of a fast-lane arrival: never read (the receiver is handed the Frame)
_UNREAD = b""
#: a frame on its way: (source, destination, bytes as arrived, bytes as sent, Frame or None)
_Arrival = tuple[int, int, bytes, bytes, Frame | None]
#: the simulator's own counters, in the order they are reported
COUNTERS = (
    "frames_sent",
    "frames_dropped",
    "late",
    "stops",
    "restarts",
    "corrected",
    "published",
    "withheld",
    "stalls",
    "clock_steps",
)


@dataclass
class SimConfig:
    nodes: int = 4
    algorithm: Algorithm = Algorithm.OM
    m: int = 1
    ticks: int = 300
    tick_hz: float = 50.0
    baud: int = 921600
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    #: hand fault-free links' Frame objects over without the decode (same decisions)
    fast_lane: bool = True
    #: processing time of one call into the driver: median, and mean of the tail above it
    cpu_ms: float = 0.15
    cpu_tail_ms: float = 0.05
    #: extra processing time of a decision (COM/MON, ECC store)
    decide_ms: float = 0.4
    #: a link's fixed latency beyond the wire time
    link_latency_ms: float = 0.1
    publish: Publish = "confirmed"
    #: debug: boards publish every decision (no self-checks, no clique avoidance)
    fail_silent: bool = True
    #: diagnosis: SM evidence or OM p/r counts (None: off)
    diagnosis: DiagnosisConfig | None = None
    #: planned degradation OM -> SM (None: off)
    degrade: DegradeConfig | None = None
    #: per channel, the boards' validity checks on their own readings; () = none
    validity: tuple[ChannelLimits, ...] = ()
    #: memory errors in the boards' working state: node -> tick -> hits (hil.injection)
    memory_hits: dict[int, dict[int, tuple[MemoryHit, ...]]] = field(default_factory=dict)


@dataclass
class Coverage:
    """Outcomes of injected faults, counted where they are injected and where they end."""

    link_corrupted: int = 0  # frames that had bits flipped on a link
    link_detected: int = 0  # ... rejected by the decoder (COBS/CRC/schema)
    link_undetected: int = 0  # ... decoded into a frame different from the one sent
    memory_single: int = 0  # 1-bit memory faults injected
    memory_double: int = 0  # 2-bit memory faults injected
    memory_corrected: int = 0
    memory_stops: int = 0  # boards that stopped on a detected memory fault

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class SimResult:
    config: SimConfig
    logs: dict[int, NodeLog]
    counters: dict[str, int]
    coverage: Coverage
    history_hash: str
    timeline: dict[int, list[str]]  # per board, per tick: ok | error | withheld | down | stop
    #: the streaming checker's verdict (`keep_logs=False`: then `logs` and `timeline` are empty)
    check: CheckResult | None = None


class _SimBoard:
    """One board: its driver, its clock, whether it is up or busy, and its link ends.

    A restarted board is a new one, with new cables: bytes of a frame cut in half by
    the crash are not glued to the next life's.
    """

    def __init__(self, sim: Simulator, node: int) -> None:
        self.node = node
        diag = sim.cfg.diagnosis
        board = Board(
            sim.params,
            node,
            CHANNELS,
            sim.keys[node],
            None if diag is None else make_diagnosis(diag, sim.params, node, CHANNELS),
        )
        self.driver = TickDriver(
            board,
            sim.timing,
            sim.sensors[node].read,
            algorithm=sim.cfg.algorithm,
            sabotage=sim.faults[node],
            validity=from_limits(sim.cfg.validity, CHANNEL_NAMES, sim.period),
            degrade=sim.cfg.degrade,
        )
        self.driver.stop_after = sim.cfg.ticks - 1
        self.up = True
        self.busy_until = 0.0
        #: the key (true time, sequence) of the wake-up last scheduled: the only one that counts
        self.wake_t = 0.0
        self.wake_seq = 0
        #: the key of the queue entry that stands for it (None: none queued); see `_schedule`
        self.carrier: tuple[float, int] | None = None
        #: per peer j: the cable end the simulator writes j's arriving bytes into ...
        self.wires: dict[int, MemoryLink] = {}
        #: ... and this board's framed link on the other end, as voterd has per port
        self.links: dict[int, Link] = {}
        for j in range(sim.cfg.nodes):
            if j != node:
                self.wires[j], near = memory_pair()
                self.links[j] = Link(j, f"mem:{j}>{node}", near, FrameSplitter(sim.params.cluster))

    def receive(self, src: int, data: bytes) -> list[Frame | Drop]:
        """Bytes from `src` arrive at this board's end and are read as frames and drops."""
        self.wires[src].write(data)  # read at once: a cable never holds more than one frame
        return self.links[src].read_frames()


class Simulator:
    """`keep_logs=False` streams: every line goes to a `StreamCheck` (and to
    `log_dir`/node<i>.jsonl if given) and is dropped, so memory stays flat over a soak.
    `stream_check=True` with the logs kept runs both checkers (the differential tests).
    """

    def __init__(
        self,
        cfg: SimConfig,
        progress: Callable[[int], None] | None = None,
        keep_logs: bool = True,
        log_dir: Path | None = None,
        stream_check: bool | None = None,
    ) -> None:
        self.cfg = cfg
        self.progress = progress
        self.period = 1.0 / cfg.tick_hz
        self.params = ic_params(cfg.nodes, cfg.m, cfg.algorithm, f"sim-{cfg.seed}")
        self.timing = Timing(
            self.period,
            self.params.rounds,
            cfg.nodes,
            ROUNDS_FRACTION,
            latency_s=cfg.link_latency_ms / 1000,
            publish=cfg.publish,
            fail_silent=cfg.fail_silent,
        )
        self.keys = board_keys(cfg.nodes, f"sim-{cfg.seed}")
        for ring in self.keys.values():
            ring.share_verify_cache(self.keys[0])  # one process: check each chain once
        phase_rng = self._init_randomness(cfg)
        self.sensors = {i: SimSensor(CHANNELS, i, cfg.seed, self.period) for i in range(cfg.nodes)}
        # Board i's clock: t * (1 + drift) + offset; a common power-on within 0.2 ms.
        self.offset = {i: phase_rng.uniform(-1e-4, 1e-4) for i in range(cfg.nodes)}
        self.boards = {i: _SimBoard(self, i) for i in range(cfg.nodes)}
        self._init_links(cfg)
        self.crashes = {f.node: f.at_tick for f in cfg.faults if isinstance(f, Crash)}
        self.restart_at: dict[int, float] = {}
        self.logs = {i: NodeLog(i) for i in range(cfg.nodes)}
        self.keep_logs = keep_logs
        self.stream: StreamCheck | None = None
        streaming = (not keep_logs) if stream_check is None else stream_check
        if streaming:
            self.stream = StreamCheck(
                range(cfg.nodes),
                faulty_nodes(cfg.faults),
                window=(0, cfg.ticks - 1),
                period_us=1e6 / cfg.tick_hz,
            )
        self.log_files = _open_logs(log_dir, cfg.nodes)
        self.coverage = Coverage()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        #: true time at which the run stops taking events
        self._end = (cfg.ticks + 2) * self.period + 5 * RESTART_S
        #: per board: frames that arrived while it was busy, as (time, sequence, arrival), in
        #: queue order; one "drain" entry in `_queue` stands for the head (see `_defer`)
        self._deferred: dict[int, deque[tuple[float, int, _Arrival]]] = {
            i: deque() for i in range(cfg.nodes)
        }
        self._draining = -1
        self._hash = hashlib.sha256()
        self._progress_tick = 0
        for i, b in self.boards.items():
            b.driver.start(self.offset[i], 0)
            self._event(i, {"event": "joined", "node": i, "tick": 0, "how": "common-start"})
            self._schedule(i, 0.0)

    def _init_randomness(self, cfg: SimConfig) -> random.Random:
        """Every generator, drawn from the seed in a fixed order (the history hash depends on it).

        Returns the generator of the boards' power-on phases.
        """
        root = random.Random(cfg.seed)
        self.link_rng = random.Random(root.getrandbits(64))
        phase_rng = random.Random(root.getrandbits(64))
        self.faults = {
            i: FaultState(
                ReadingDomain(CHANNELS), random.Random(root.getrandbits(64)), self.period, i
            )
            for i in range(cfg.nodes)
        }
        self.cpu_rng = random.Random(root.getrandbits(64))
        for f in cfg.faults:
            if is_board(f):
                self.faults[f.node].add(f)
        for node, hits in cfg.memory_hits.items():
            self.faults[node].hits = dict(hits)
        return phase_rng

    def _init_links(self, cfg: SimConfig) -> None:
        """One fault channel per direction, and which directions may take the fast lane."""
        link_faults = [f for f in cfg.faults if is_link(f)]
        self.links = {
            (a, b): LinkChannel.for_direction(link_faults, a, b)
            for a in range(cfg.nodes)
            for b in range(cfg.nodes)
            if a != b
        }
        # Senders whose bytes a traitor strategy may replace or replay: full path on all links.
        frame_level = {
            f.node for f in cfg.faults if isinstance(f, Traitor) and f.strategy.frame_level
        }
        self.fast = {
            link: cfg.fast_lane and not channel and link[0] not in frame_level
            for link, channel in self.links.items()
        }
        self.wire_free = dict.fromkeys(self.links, 0.0)

    # -- clocks and bookkeeping ----------------------------------------------------
    def local(self, i: int, t: float) -> float:
        return t * (1.0 + self.faults[i].drift_ppm * 1e-6) + self.offset[i]

    def true_time(self, i: int, local: float) -> float:
        return (local - self.offset[i]) / (1.0 + self.faults[i].drift_ppm * 1e-6)

    def _push(self, t: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, payload))

    def _event(self, node: int, ev: dict[str, Any]) -> None:
        self._hash.update(json.dumps(ev, sort_keys=True).encode())
        self._keep_event(node, ev)

    def _keep_event(self, node: int, ev: dict[str, Any]) -> None:
        """An event line goes to the logs in memory, or to the streaming checker, and to disk."""
        if self.keep_logs:
            self.logs[node].events.append(ev)
        if self.stream is not None:
            self.stream.event(node, ev)
        if self.log_files:
            self.log_files[node].write(ev)

    def _schedule(self, i: int, not_before: float) -> None:
        """(Re)arm board i's wake-up at its driver's next deadline.

        Only the wake-up scheduled last counts (an earlier one would find itself stale and
        do nothing), and most are re-armed before they come due: after every frame a board
        takes. So a queued entry with an earlier or equal key carries the new one: when it
        comes out of the queue, `_carried_wake` puts the new key back if anything else comes
        first. Each wake-up still takes its sequence number here, so every event keeps
        the place in the order it had with one queue entry per wake-up.
        """
        b = self.boards[i]
        t = max(not_before, self.true_time(i, b.driver.next_deadline()))
        self._seq += 1
        b.wake_t, b.wake_seq = t, self._seq
        if b.carrier is not None and b.carrier[0] <= t:
            return
        b.carrier = (t, self._seq)
        heapq.heappush(self._queue, (t, self._seq, "wake", i))

    # -- running -----------------------------------------------------------------------
    def run(self) -> SimResult:
        end = self._end
        while self._queue:
            t, seq, kind, payload = heapq.heappop(self._queue)
            if t > end:
                break
            if kind == "wake":
                self._carried_wake(t, seq, payload)
            elif kind == "arrive":
                self._arrive(t, *payload)
            elif kind == "drain":
                self._drain(payload, end)
            elif kind == "restart":
                self._restart(t, payload)
        for i, b in self.boards.items():
            if b.up:
                self._perform(i, end, b.driver.stop(self.local(i, end)))
                self._event(i, {"event": "stop", "node": i, "reason": "done", "code": 0})
                self._account_memory(self.faults[i])
        stats = [c.stats for c in self.links.values()]
        self.counters["link_dropped"] = sum(x.dropped_frames for x in stats)
        self.counters["link_delayed"] = sum(x.delayed_frames for x in stats)
        self.counters["link_jittered"] = sum(x.jittered_frames for x in stats)
        for f in self.log_files.values():
            f.close(fsync=False)
        return SimResult(
            self.cfg,
            self.logs,
            self.counters,
            self.coverage,
            self._hash.hexdigest(),
            timeline(self.logs, self.cfg.ticks, faulty_nodes(self.cfg.faults))
            if self.keep_logs
            else {},
            None if self.stream is None else self.stream.result(),
        )

    # -- boards ------------------------------------------------------------------------
    def _cpu(self, decide: bool = False) -> float:
        cfg = self.cfg
        # `random.expovariate(1 / tail)` spelled out (its exact arithmetic, the same draw):
        # one call fewer on every event of the simulation.
        tail = -math.log(1.0 - self.cpu_rng.random()) / (1.0 / cfg.cpu_tail_ms)
        return (cfg.cpu_ms + tail + (cfg.decide_ms if decide else 0.0)) / 1000

    def _carried_wake(self, t: float, seq: int, i: int) -> None:
        """A wake-up entry came out of the queue: stale, board i's wake-up, or its carrier."""
        b = self.boards[i]
        if b.carrier != (t, seq):
            return  # re-armed earlier since (or a board of a previous life)
        b.carrier = None
        if not b.up:
            return
        key = (b.wake_t, b.wake_seq)
        if key != (t, seq) and (b.wake_t > self._end or (self._queue and self._queue[0] < key)):
            b.carrier = key  # something else comes first: the wake-up goes back in the queue
            heapq.heappush(self._queue, (*key, "wake", i))
            return
        self._wake(b.wake_t, i)

    def _wake(self, t: float, i: int) -> None:
        b = self.boards[i]
        if t < b.busy_until:
            self._schedule(i, b.busy_until)
            return
        d = b.driver
        if d.finished:
            # Done; its last decision was confirmed by round 1 of the tick after it.
            self._finish_board(i, t)
            return
        if d.round == 0:
            if self._lifecycle(i, t, d.tick):
                return
            step = self.faults[i].clock_step_s(d.tick)
            if step:
                self.offset[i] += step
                self.counters["clock_steps"] += 1
                self._event(i, {"event": "clock-jump", "node": i, "tick": d.tick, "ms": step * 1e3})
                self._schedule(i, t)
                return
            if self.progress is not None and d.tick >= self._progress_tick:
                self.progress(d.tick)
                self._progress_tick = d.tick + 500
        deciding = d.round == d.rounds
        try:
            acts = d.wake(self.local(i, t))
        except InconsistencyError as e:
            self._stop(i, t, d.tick, str(e))
            return
        self._perform(i, t, acts, self._cpu(deciding and d.round == 0))
        if self.boards[i] is b and b.up:
            self._schedule(i, b.busy_until)

    def _perform(self, i: int, t: float, acts: Actions, cost: float = 0.0) -> None:
        """Do what the driver asked, as the daemon does: stall, write, done, stall, log.

        `cost` is the processing time of the call that produced `acts`: the writes
        and the decision happen that much later than the event that caused them.
        """
        b = self.boards[i]
        t += cost
        if acts.stall_s and acts.stall_when == "before-send":
            t += self._stall(i, acts.stall_s)
        for o in acts.sends:
            self.counters["frames_sent"] += 1
            due = max(t, self.true_time(i, o.due))
            self._transmit(due, i, o)
        self._log(i, acts)
        try:
            more = b.driver.done(self.local(i, t))
        except InconsistencyError as e:  # publication's own check (a memory hit in the output)
            self._stop(i, t, b.driver.tick, str(e))
            return
        self._log(i, more)
        if acts.stall_s and acts.stall_when == "after-send":
            t += self._stall(i, acts.stall_s)
        b.busy_until = max(b.busy_until, t)

    def _stall(self, i: int, seconds: float) -> float:
        """The board freezes; it says so in its log, as voterd does."""
        self.counters["stalls"] += 1
        tick = self.boards[i].driver.tick
        self._event(i, {"event": "stall", "node": i, "tick": tick, "ms": round(seconds * 1e3, 3)})
        return seconds

    def _log(self, i: int, acts: Actions) -> None:
        for line in acts.lines:
            if not isinstance(line, DecisionRecord):
                self._hash.update(repr(line).encode())
                self._keep_event(i, line)
                continue
            self._hash.update(repr(line.to_json()).encode())
            if self.keep_logs:
                self.logs[i].decisions[line.tick] = line
            if self.stream is not None:
                self.stream.record(i, line)
            if self.log_files:
                self.log_files[i].write(line)
            self.counters["late"] += line.late
            self.counters["frames_dropped"] += line.dropped
            self.counters["corrected"] += line.corrected
            self.coverage.memory_corrected += line.corrected
            self.counters["published" if line.published else "withheld"] += 1

    def _lifecycle(self, i: int, t: float, k: int) -> bool:
        """A crash fault at tick k: the board goes down (True) and restarts as systemd would."""
        if self.crashes.get(i) != k:
            return False
        del self.crashes[i]
        self.counters["stops"] += 1
        self._event(i, {"event": "crash", "node": i, "tick": k})
        self._down(i, t)
        return True

    def _down(self, i: int, t: float) -> None:
        b = self.boards[i]
        b.up = False
        self._push(t + RESTART_S, "restart", i)

    def _stop(self, i: int, t: float, k: int, reason: str) -> None:
        faults = self.faults[i]
        self._account_memory(faults)
        if "memory" in reason:
            self.coverage.memory_stops += 1
        self.counters["stops"] += 1
        self._event(i, {"event": "stop", "node": i, "tick": k, "reason": reason, "code": 70})
        self._down(i, t)

    def _restart(self, t: float, i: int) -> None:
        """A fresh board joins from its peers' clocks (the median of those that are up)."""
        fresh = _SimBoard(self, i)
        peers = sorted(
            (self.boards[j].driver.vt(self.local(j, t)), j)
            for j in self.boards
            if j != i and self.boards[j].up
        )
        if not peers:
            self._push(t + RESTART_S, "restart", i)
            return
        vt = peers[(len(peers) - 1) // 2][0]
        first = int(vt // self.period) + 1
        if first >= self.cfg.ticks:
            return
        fresh.driver.start(self.local(i, t) - vt, first)
        self.boards[i] = fresh
        self.counters["restarts"] += 1
        self._event(i, {"event": "joined", "node": i, "tick": first, "how": "peers"})
        self._schedule(i, t)

    def _finish_board(self, i: int, t: float) -> None:
        b = self.boards[i]
        self._perform(i, t, b.driver.stop(self.local(i, t)))
        self._event(i, {"event": "stop", "node": i, "reason": "done", "code": 0})
        b.up = False
        self._account_memory(self.faults[i])

    def _account_memory(self, faults: FaultState) -> None:
        injected = faults.injected_memory
        faults.injected_memory = 0
        if faults.memory_bits == 1:
            self.coverage.memory_single += injected
        else:
            self.coverage.memory_double += injected

    # -- links -------------------------------------------------------------------------
    def _transmit(self, t: float, src: int, o: Outgoing) -> None:
        dst, frame = o.dst, o.frame
        link = (src, dst)
        if frame is not None and self.fast[link]:
            # Only the frame's size (its wire time) is needed: it is never encoded.
            size = wire_size(frame) if o.raw is None else len(o.raw)
            arrive = self._wire_time(t, link, size)
            self.links[link].stats.frames += 1  # a clean wire: the channel is not consulted
            self._push(arrive, "arrive", (src, dst, _UNREAD, _UNREAD, frame))
            return
        data = o.data
        arrive = self._wire_time(t, link, len(data))
        k_now = int(self.boards[src].driver.vt(self.local(src, t)) // self.period)
        sent = data
        transit = self.links[link].transmit(data, k_now, self.link_rng)
        if transit.data is None:
            return
        data = transit.data
        arrive += transit.delay_s
        # A serial line does not reorder: a delayed frame holds back the ones behind it.
        self.wire_free[link] = max(self.wire_free[link], arrive - self.cfg.link_latency_ms / 1000)
        self._push(arrive, "arrive", (src, dst, data, sent, None))

    def _wire_time(self, t: float, link: tuple[int, int], size: int) -> float:
        """When `size` bytes written at t arrive: after the bytes ahead of them, then latency."""
        wire = size * 10 / self.cfg.baud if self.cfg.baud > 0 else 0.0
        start = max(t, self.wire_free[link])
        self.wire_free[link] = start + wire
        return start + wire + self.cfg.link_latency_ms / 1000

    def _arrive(
        self, t: float, src: int, dst: int, data: bytes, sent: bytes, frame: Frame | None
    ) -> None:
        b = self.boards[dst]
        if b.up and t < b.busy_until:
            self._defer(dst, b.busy_until, (src, dst, data, sent, frame))  # in the buffer
            return
        items: list[Frame | Drop] = [] if frame is not None else b.receive(src, data)
        if data is not sent and data != sent:  # (never on the fast lane: both are _UNREAD)
            # Detected = the damage never became a frame other than the one sent (it was
            # dropped, or merged into a neighbour that was then dropped).
            self.coverage.link_corrupted += 1
            original = decode_frame(sent[:-1], self.params.cluster)
            if any(isinstance(x, Frame) and x != original for x in items):
                self.coverage.link_undetected += 1
            else:
                self.coverage.link_detected += 1
        if not b.up:
            return
        d = b.driver
        deciding = d.round == d.rounds
        try:
            if frame is not None:  # the fast lane: one frame, its actions as they are
                acts = d.on_frame(src, frame, self.local(dst, t))
            else:
                acts = Actions()
                for item in items:
                    acts.extend(d.on_frame(src, item, self.local(dst, t)))
        except InconsistencyError as e:
            self._stop(dst, t, d.tick, str(e))
            return
        self._perform(dst, t, acts, self._cpu(deciding and d.round == 0))
        self._schedule(dst, b.busy_until)

    def _defer(self, dst: int, t: float, arrival: _Arrival) -> None:
        """An arrival waits in `dst`'s input buffer until `t`: exactly as if it went back into
        the queue as (t, next sequence), without the heap's push and pop.

        A third of all events were these re-queued arrivals (a board takes one frame while
        the peers' others wait, and each wait ends at the next busy spell). The buffer keeps
        them in queue order (a board's busy time only grows, so each key is above the last);
        `_drain` runs its head while that head is ahead of everything in the heap. A key
        that would not come last goes through the heap as before.
        """
        self._seq += 1
        fifo = self._deferred[dst]
        if not fifo:
            fifo.append((t, self._seq, arrival))
            if self._draining != dst:  # `_drain` re-enters the head itself
                heapq.heappush(self._queue, (t, self._seq, "drain", dst))
        elif t >= fifo[-1][0]:
            fifo.append((t, self._seq, arrival))
        else:
            heapq.heappush(self._queue, (t, self._seq, "arrive", arrival))

    def _drain(self, dst: int, end: float) -> None:
        """Run `dst`'s buffered arrivals in queue order while each comes before the heap's top."""
        fifo, queue = self._deferred[dst], self._queue
        while True:
            t, _, arrival = fifo.popleft()
            self._draining = dst
            self._arrive(t, *arrival)
            self._draining = -1
            if not fifo:
                return
            t, seq, _ = fifo[0]
            if t > end or (queue and (t, seq) > queue[0][:2]):
                heapq.heappush(queue, (t, seq, "drain", dst))
                return


def simulate(
    cfg: SimConfig,
    progress: Callable[[int], None] | None = None,
    keep_logs: bool = True,
    log_dir: Path | None = None,
) -> SimResult:
    return Simulator(cfg, progress, keep_logs, log_dir).run()


def _open_logs(log_dir: Path | None, nodes: int) -> dict[int, DecisionLog]:
    """node<i>.jsonl per board, written as voterd writes them (none without a directory)."""
    if log_dir is None:
        return {}
    log_dir.mkdir(parents=True, exist_ok=True)
    paths = {i: log_dir / f"node{i}.jsonl" for i in range(nodes)}
    for path in paths.values():
        path.unlink(missing_ok=True)  # one run, one record: never appended to an old run's
    # no rotation: a soak's files are the whole record (the caller chose the disk)
    return {i: DecisionLog(path, rotate_bytes=0) for i, path in paths.items()}


def sim_config(sc: Scenario, *, fast_lane: bool = True) -> SimConfig:
    """The simulator's configuration for a scenario (the one place a Scenario becomes one)."""
    if sc.replication is not None:
        raise ValueError(f"{sc.name}: a command-log scenario runs in hil.smr_sim, not hil.sim")
    return SimConfig(
        nodes=sc.nodes,
        algorithm=sc.algorithm,
        m=sc.m,
        ticks=sc.ticks,
        tick_hz=sc.tick_hz,
        baud=sc.baud,
        seed=sc.seed,
        faults=list(sc.faults),
        fast_lane=fast_lane,
        publish=sc.publish,
        fail_silent=sc.fail_silent,
        diagnosis=sc.diagnosis,
        degrade=sc.degrade,
        validity=sc.validity,
    )


@dataclass
class SimRunner:
    """The whole cluster in this process, one seed; the runner interface of `hil.outcome`."""

    fast_lane: bool = True
    mode: str = "sim"

    def run(
        self, sc: Scenario, out: Path | None = None, progress: Callable[[int], None] | None = None
    ) -> RunOutcome:
        """Simulate `sc` (nothing is written: `out` is for the interface's sake)."""
        if sc.replication is not None:  # a command log, not per-tick agreement
            return SmrRunner().run(sc, out, progress)
        started = time.monotonic()
        sim = Simulator(sim_config(sc, fast_lane=self.fast_lane), progress)
        r = sim.run()
        cov = r.coverage
        detail = {f"{a}>{b}": asdict(c.stats) for (a, b), c in sim.links.items()}
        return RunOutcome(
            "sim",
            r.logs,
            links=sum_links(detail),
            link_detail=detail,
            restarts=r.counters["restarts"],
            crashes=sum(1 for log in r.logs.values() for e in log.events if e["event"] == "crash"),
            duration_s=time.monotonic() - started,
            timeline=r.timeline,
            history_hash=r.history_hash,
            memory_injected=(cov.memory_single, cov.memory_double),
            link_decoded=(cov.link_detected, cov.link_undetected),
        )
