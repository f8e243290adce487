"""The deterministic in-process simulator: the whole cluster in one process, one seed.

The same `voter.core.board.Board` objects the daemons drive, the same frame
codec, the same HIL fault code (`voter.faults.FaultState`) and the same clock
sync (`ClockSync`); only the links and the clock are simulated. Time is a
virtual float in seconds; every event (a frame arriving, a round closing on a
board) goes through one priority queue ordered by (time, sequence), and every
random choice comes from generators derived from the scenario seed. Running a
seed twice gives the identical history (its hash is part of the result).

Timing model: board i's virtual clock is true time + phase_i. It sends a
round's frames when its previous round closes (round 1 at its tick start);
a frame arrives after its wire time at the baud rate plus any link delay, and
is late for the receiver if its round closed before (the Board counts it).
Clock drift moves a phase every tick; the board's ClockSync corrects it from
round-1 arrivals exactly as the daemon does.

Fast lane: a link that no fault of the scenario can touch (no link fault on it,
and a sender without a frame-level traitor strategy) hands the receiver the
Frame object itself instead of feeding the encoded bytes through its
FrameSplitter. The frame is still encoded, because its length sets the wire
time and the ClockSync's transfer correction; only the decode is skipped, and
for a frame the encoder accepted the decode gives back an equal Frame. Faulty
links keep the full byte path, so link-fault coverage is counted as before;
memory faults are unaffected (every board always goes through its ECC store).
`SimConfig.fast_lane=False` forces the full path everywhere (the differential
tests compare the two).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hil.checks import NodeLog
from hil.faultspec import Fault
from hil.linkmodel import flip_bits
from voter.budget import ROUNDS_FRACTION
from voter.core.board import Board, InconsistencyError
from voter.core.clock import ClockSync
from voter.core.frame import Drop, Frame, FrameSplitter, decode_frame, encode_frame
from voter.core.ic import as_json_vector, ic_params
from voter.core.protocol import Algorithm
from voter.core.values import ReadingDomain
from voter.faults import FRAME_STRATEGIES, FaultState
from voter.sensors import SimSensor
from voter.testing import board_keys

CHANNELS = 3
RESTART_S = 1.0  # systemd RestartSec=1s in the shipped unit


@dataclass
class SimConfig:
    nodes: int = 4
    algorithm: Algorithm = "om"
    m: int = 1
    ticks: int = 300
    tick_hz: float = 50.0
    baud: int = 921600
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    #: hand fault-free links' Frame objects over without the decode (same decisions)
    fast_lane: bool = True


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
    timeline: dict[int, list[str]]  # per board, per tick: ok | error | down | stop


class _SimBoard:
    def __init__(self, sim: Simulator, node: int) -> None:
        self.node = node
        self.board = Board(sim.params, node, CHANNELS, sim.keys[node])
        self.sync = ClockSync(sim.period, (sim.cfg.nodes - 1) // 3, step_s=sim.slot / 2)
        self.up = True
        self.warmup = 2
        self.tick_open: int | None = None
        self.splitters = {
            j: FrameSplitter(sim.params.cluster) for j in range(sim.cfg.nodes) if j != node
        }
        self.last_sent: list[tuple[int, bytes]] = []


class Simulator:
    def __init__(self, cfg: SimConfig, progress: Callable[[int], None] | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.period = 1.0 / cfg.tick_hz
        self.params = ic_params(cfg.nodes, cfg.m, cfg.algorithm, f"sim-{cfg.seed}")
        self.slot = self.period * ROUNDS_FRACTION / self.params.rounds
        self.keys = board_keys(cfg.nodes, f"sim-{cfg.seed}")
        for ring in self.keys.values():
            ring.share_verify_cache(self.keys[0])  # one process: check each chain once
        root = random.Random(cfg.seed)
        self.link_rng = random.Random(root.getrandbits(64))
        phase_rng = random.Random(root.getrandbits(64))
        self.faults = {
            i: FaultState(ReadingDomain(CHANNELS), random.Random(root.getrandbits(64)), self.period)
            for i in range(cfg.nodes)
        }
        for f in cfg.faults:
            cmd = f.control_command()
            if cmd is not None and f.node is not None:
                self.faults[f.node].apply(json.dumps(cmd).encode())
        self.sensors = {i: SimSensor(CHANNELS, i, cfg.seed, self.period) for i in range(cfg.nodes)}
        self.boards = {i: _SimBoard(self, i) for i in range(cfg.nodes)}
        # Boards start within 0.2 ms of each other (a common power-on, as firmware-sim).
        self.phase = {i: phase_rng.uniform(-1e-4, 1e-4) for i in range(cfg.nodes)}
        self.links = {
            (a, b): [f for f in cfg.faults if f.kind.startswith("link-") and _on_link(f, a, b)]
            for a in range(cfg.nodes)
            for b in range(cfg.nodes)
            if a != b
        }
        # Senders whose bytes a traitor strategy may replace or replay: full path on all links.
        frame_level = {
            f.node for f in cfg.faults if f.kind == "traitor" and f.strategy in FRAME_STRATEGIES
        }
        self.fast = {
            link: cfg.fast_lane and not faults and link[0] not in frame_level
            for link, faults in self.links.items()
        }
        self.crashes = {f.node: f.at_tick for f in cfg.faults if f.kind == "crash"}
        self.restart_at: dict[int, int] = {}
        self.logs = {i: NodeLog(i) for i in range(cfg.nodes)}
        self.coverage = Coverage()
        self.counters = {
            "frames_sent": 0,
            "frames_dropped": 0,
            "late": 0,
            "stops": 0,
            "restarts": 0,
            "corrected": 0,
            "link_dropped": 0,
            "link_delayed": 0,
        }
        self.timeline: dict[int, list[str]] = {i: [] for i in range(cfg.nodes)}
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._hash = hashlib.sha256()
        for i in range(cfg.nodes):
            self._event(i, {"event": "joined", "node": i, "tick": 0, "how": "common-start"})

    # -- bookkeeping -------------------------------------------------------------
    def _push(self, t: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, payload))

    def _event(self, node: int, ev: dict[str, Any]) -> None:
        self.logs[node].events.append(ev)
        self._hash.update(json.dumps(ev, sort_keys=True).encode())

    # -- running -----------------------------------------------------------------
    def run(self) -> SimResult:
        for k in range(self.cfg.ticks):
            self._tick(k)
            if self.progress is not None and k % 500 == 0:
                self.progress(k)
        for i, b in self.boards.items():
            if b.up:
                self._event(i, {"event": "stop", "node": i, "reason": "done", "code": 0})
        return SimResult(
            self.cfg, self.logs, self.counters, self.coverage, self._hash.hexdigest(), self.timeline
        )

    def _tick(self, k: int) -> None:
        period = self.period
        for i in range(self.cfg.nodes):
            self._lifecycle(i, k)
            self.phase[i] += period * self.faults[i].drift_ppm * 1e-6
        for i, b in self.boards.items():
            if b.up:
                self._push(k * period - self.phase[i], "open", (i, k))
        # Everything up to the earliest start of the next tick (its opens are not queued yet).
        horizon = (k + 1) * period - max(self.phase.values()) - 1e-9
        while self._queue and self._queue[0][0] <= horizon:
            t, _, kind, payload = heapq.heappop(self._queue)
            if kind == "open":
                self._open(t, *payload)
            elif kind == "close":
                self._close(t, *payload)
            else:
                self._arrive(t, *payload)
        for i, b in self.boards.items():
            if len(self.timeline[i]) <= k:
                self.timeline[i].append("down" if not b.up else "missing")

    def _lifecycle(self, i: int, k: int) -> None:
        b = self.boards[i]
        if b.up and self.crashes.get(i) == k:
            b.up = False
            self.counters["stops"] += 1
            self._event(i, {"event": "crash", "node": i, "tick": k})
            self.restart_at[i] = k + int(RESTART_S / self.period) + 5
        if not b.up and self.restart_at.get(i) == k:
            fresh = _SimBoard(self, i)
            self.boards[i] = fresh
            others = sorted(self.phase[j] for j in self.boards if j != i and self.boards[j].up)
            if others:
                self.phase[i] = others[(len(others) - 1) // 2]  # joined from its peers
            del self.restart_at[i]
            self.counters["restarts"] += 1
            self._event(i, {"event": "joined", "node": i, "tick": k, "how": "peers"})

    def _open(self, t: float, i: int, k: int) -> None:
        b = self.boards[i]
        if not b.up:
            return
        b.board.adversary = self.faults[i].adversary(k)
        reading = self.faults[i].corrupt_reading(k, self.sensors[i].read(k))
        frames = b.board.begin_tick(k, reading)
        b.tick_open = k
        self._send(t, i, k, frames)
        self._push(t + self.slot, "close", (i, k, 1))
        if b.board.round_complete():
            self._push(t, "close", (i, k, 1))

    def _close(self, t: float, i: int, k: int, r: int) -> None:
        """Round r of board i closes: at its deadline, or earlier when every frame is in."""
        b = self.boards[i]
        if not b.up or b.tick_open != k or b.board.round != r:
            return  # already closed early (this is the deadline event) or tick over
        frames = b.board.next_round()
        if r < self.params.rounds:
            self._send(t, i, k, frames)
            deadline = k * self.period - self.phase[i] + (r + 1) * self.slot
            self._push(deadline, "close", (i, k, r + 1))
            if b.board.round_complete():  # early frames may complete it at once
                self._push(t, "close", (i, k, r + 1))
            return
        self._finish(i, k)

    def _finish(self, i: int, k: int) -> None:
        b = self.boards[i]
        faults = self.faults[i]
        inject = faults.memory_fault(k)
        before = faults.injected_memory
        try:
            report = b.board.finish_tick(inject)
        except InconsistencyError as e:
            self._account_memory(faults, before)
            self.coverage.memory_stops += 1
            self.counters["stops"] += 1
            b.up = False
            self.timeline[i].append("stop")
            self._event(i, {"event": "stop", "node": i, "tick": k, "reason": str(e), "code": 70})
            self.restart_at[i] = k + int(RESTART_S / self.period) + 5
            return
        self._account_memory(faults, before)
        self.coverage.memory_corrected += report.corrected
        self.counters["corrected"] += report.corrected
        self.counters["late"] += report.late
        self.counters["frames_dropped"] += report.dropped
        if b.warmup > 0:
            b.warmup -= 1
            b.sync.discard()
        self.phase[i] += b.sync.correction()
        d = report.decision
        line = {
            "tick": d.tick,
            "node": d.node,
            "algorithm": self.cfg.algorithm,
            "local": list(d.local) if isinstance(d.local, tuple) else d.local,
            "vector": as_json_vector(d.vector),
            "output": list(d.output),
            "messages": d.messages,
            "late": report.late,
            "dropped": report.dropped,
            "corrected": report.corrected,
            "decided_us": round(self.params.rounds * self.slot * 1e6, 1),
        }
        self.logs[i].decisions[k] = line
        # repr of the line (built in a fixed key order above): as exact as sorted
        # JSON (floats repr alike) at a fraction of its cost, once per decision.
        self._hash.update(repr(line).encode())
        self.timeline[i].append("ok" if all(v is not None for v in d.vector) else "error")
        b.tick_open = None

    def _account_memory(self, faults: FaultState, before: int) -> None:
        injected = faults.injected_memory - before
        if faults.memory_bits == 1:
            self.coverage.memory_single += injected
        else:
            self.coverage.memory_double += injected

    # -- links -------------------------------------------------------------------
    def _send(self, t: float, src: int, k: int, frames: list[Frame]) -> None:
        faults = self.faults[src]
        strategy = faults.traitor(k)
        b = self.boards[src]
        extra = faults.late_ms(k) / 1000 if strategy == "late" else 0.0
        if strategy not in ("garbage", "replay"):
            for f in frames:
                self.counters["frames_sent"] += 1
                self._transmit(t + extra, src, f.dst, encode_frame(f), f)
            return
        encoded = [(f.dst, encode_frame(f)) for f in frames]
        if strategy == "garbage":
            encoded = [(dst, faults.garbage(len(data))) for dst, data in encoded]
        else:
            old, b.last_sent = b.last_sent, encoded
            encoded = old
        for dst, data in encoded:
            self.counters["frames_sent"] += 1
            self._transmit(t + extra, src, dst, data, None)

    def _transmit(self, t: float, src: int, dst: int, data: bytes, frame: Frame | None) -> None:
        if frame is not None and self.fast[(src, dst)]:
            wire = len(data) * 10 / self.cfg.baud if self.cfg.baud > 0 else 0.0
            self._push(t + wire, "arrive", (src, dst, data, data, frame))
            return
        k_now = int((t + self.phase[src]) // self.period)
        delay = 0.0
        sent = data
        for f in self.links[(src, dst)]:
            if not (f.from_tick <= k_now and (f.to_tick is None or k_now <= f.to_tick)):
                continue
            if f.kind == "link-drop" and self.link_rng.random() < f.p:
                self.counters["link_dropped"] += 1
                return
            if f.kind == "link-delay":
                delay += f.delay_ms / 1000
                self.counters["link_delayed"] += 1
            if f.kind == "link-bitflip":
                data, _ = flip_bits(data, f.ber, f.burst, self.link_rng)
        wire = len(data) * 10 / self.cfg.baud if self.cfg.baud > 0 else 0.0
        self._push(t + wire + delay, "arrive", (src, dst, data, sent, None))

    def _arrive(
        self, t: float, src: int, dst: int, data: bytes, sent: bytes, frame: Frame | None
    ) -> None:
        b = self.boards[dst]
        items: list[Frame | Drop] = [frame] if frame is not None else b.splitters[src].feed(data)
        if data is not sent and data != sent:
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
        for item in items:
            if isinstance(item, Frame) and item.round == 1 and item.src == src:
                b.sync.observe(
                    src,
                    item.tick,
                    t + self.phase[dst],
                    len(data) * 10 / max(1, self.cfg.baud),
                )
            b.board.on_frame(src, item)
        if b.tick_open is not None and b.board.round_complete():
            self._push(t, "close", (dst, b.tick_open, b.board.round))


def _on_link(f: Fault, a: int, b: int) -> bool:
    if f.link == "*":
        return True
    if f.link is None:
        return False
    if ">" in f.link:
        x, y = (int(v) for v in f.link.split(">"))
        return (x, y) == (a, b)
    x, y = (int(v) for v in f.link.split("-"))
    return {x, y} == {a, b}


def simulate(cfg: SimConfig, progress: Callable[[int], None] | None = None) -> SimResult:
    return Simulator(cfg, progress).run()
