"""The replicated command log simulated: N replicas, one client, a seeded network, the HIL faults.

Deterministic: one seed drives the network's drops and the traitors' coin flips,
time is a tick (one tick = one message delay on a clean link), so a run replays
exactly (its history hash is in the report). The client keeps `window` requests
outstanding, broadcasts each to every replica, re-sends after `retry_ticks`,
and accepts a result on f+1 matching replies (PBFT) or one (crash-only: nobody
lies). Every loyal replica logs each executed sequence number as a `commit`
event (SPEC.md); the client logs its `request`s and accepted `reply`s; the
checker (`hil.smr_checks`) judges only those lines.

Faults, in the project's vocabulary (voter/faultmodel.py): `traitor` (the
strategies in voter.smr_faults), `crash` (the replica stops at `at_tick` and
stays down: recovery by state transfer is not built), `link-drop`, `link-delay`
(ceil(delay_ms / tick_ms) extra ticks), `link-jitter`; a partition between link
groups is link-drop p = 1 on the links that cross it, in a window.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.channel import ChannelStats
from hil.checks import NodeLog
from hil.faultspec import faulty_nodes
from hil.outcome import RunnerError, RunOutcome
from hil.scenario import Scenario
from voter.core.adversary import Strategy
from voter.core.crypto import KeyRing, deterministic_seeds, keyring_from_seeds
from voter.core.paxos import PaxosConfig, PaxosReplica
from voter.core.pbft import PbftConfig, PbftReplica
from voter.core.smr import Replica, Reply, Request, Send, sign, verify
from voter.faultmodel import Crash, Fault, LinkDelay, LinkDrop, LinkJitter, Traitor
from voter.smr_faults import SMR_STRATEGIES, Adversary, Coalition

PROTOCOLS = ("pbft", "crash")
CLUSTER = "voter"


class SmrConfigError(ValueError):
    """A command-log scenario the simulator cannot run (one line for the user)."""


@dataclass(frozen=True)
class SmrConfig:
    protocol: str
    nodes: int
    commands: int
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    #: the run ends when every command is committed everywhere, or here
    ticks_max: int = 100_000
    window: int = 8
    timeout_ticks: int = 20
    checkpoint_every: int = 16
    retry_ticks: int = 200
    tick_ms: float = 1.0
    #: matching replies the client needs (None: f+1 under PBFT, 1 crash-only); a lower one
    #: switches a safety mechanism off, for the test that shows what it is for
    reply_quorum: int | None = None

    @property
    def f(self) -> int:
        return (self.nodes - 1) // (3 if self.protocol == "pbft" else 2)

    @property
    def client(self) -> int:
        return self.nodes

    def check(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise SmrConfigError(f"replication must be 'pbft' or 'crash', got {self.protocol!r}")
        if not 1 <= self.commands <= 1_000_000 or not 2 <= self.nodes <= 16:
            raise SmrConfigError("commands must be 1..1000000 and nodes 2..16")
        for f in self.faults:
            if isinstance(f, Traitor) and f.strategy not in SMR_STRATEGIES:
                names = ", ".join(sorted(SMR_STRATEGIES))
                raise SmrConfigError(
                    f"{f.describe()}: the command log knows the strategies {names}"
                )
            if not isinstance(f, Traitor | Crash | LinkDrop | LinkDelay | LinkJitter):
                raise SmrConfigError(
                    f"{f.describe()}: the command-log simulator takes traitor, crash, link-drop, "
                    "link-delay and link-jitter faults"
                )


@dataclass
class Client:
    """A correct client: `window` requests in flight, each accepted on `quorum` matching replies."""

    node: int
    nodes: int
    commands: int
    window: int
    quorum: int
    retry_ticks: int
    keys: KeyRing | None
    next_req: int = 0
    outstanding: dict[int, tuple[Request, int]] = field(default_factory=dict)
    votes: dict[int, dict[tuple[int, str], set[int]]] = field(default_factory=dict)
    accepted: dict[int, tuple[int, str, int]] = field(default_factory=dict)
    sent_at: dict[int, int] = field(default_factory=dict)
    sent: int = 0

    def tick(self, now: int, lines: list[dict[str, Any]]) -> list[Send]:
        out: list[Send] = []
        while len(self.outstanding) < self.window and self.next_req < self.commands:
            req = Request(self.node, self.next_req, f"cmd-{self.next_req}")
            if self.keys is not None:
                req = Request(req.client, req.req, req.op, sign(self.keys, self.node, req, CLUSTER))
            self.outstanding[req.req] = (req, now)
            self.sent_at[req.req] = now
            self.next_req += 1
            lines.append({"event": "request", "node": self.node, "tick": now, "req": req.req})
            out += [Send(j, req) for j in range(self.nodes)]
        for k, (req, at) in list(self.outstanding.items()):
            if now - at >= self.retry_ticks:
                self.outstanding[k] = (req, now)
                out += [Send(j, req) for j in range(self.nodes)]
        self.sent += len(out)
        return out

    def receive(self, src: int, r: Reply, now: int, lines: list[dict[str, Any]]) -> None:
        """A reply counts for the replica it came from (its link), signed by it under PBFT."""
        if r.req not in self.outstanding or r.node != src:
            return
        if self.keys is not None and not verify(self.keys, src, r, CLUSTER):
            return
        voters = self.votes.setdefault(r.req, {}).setdefault((r.seq, r.result), set())
        voters.add(src)
        if len(voters) >= self.quorum:
            del self.outstanding[r.req]
            self.votes.pop(r.req, None)
            self.accepted[r.req] = (r.seq, r.result, now)
            lines.append(
                {
                    "event": "reply",
                    "node": self.node,
                    "tick": now,
                    "req": r.req,
                    "seq": r.seq,
                    "result": r.result,
                }
            )


@dataclass
class SmrRun:
    """One run: the logs the checker reads and the engine's own counts."""

    cfg: SmrConfig
    logs: dict[int, NodeLog]
    ticks: int
    messages: dict[str, int]
    client_messages: int
    signs: int
    verifies: int
    view_changes: dict[int, int]
    accepted: dict[int, tuple[int, str, int]]
    frames: int
    dropped: int
    delayed: int
    history_hash: str
    wall_s: float
    #: process CPU seconds from a request's send to its acceptance, per request (the cost table;
    #: CPU time, since the machine is shared), and for the whole run (`wall_s`)
    latency_s: list[float]


def _replicas(cfg: SmrConfig) -> tuple[list[Replica], list[KeyRing], KeyRing]:
    seeds = deterministic_seeds(cfg.nodes + 1, b"voter-smr")
    rings = [keyring_from_seeds(seeds, [i]) for i in range(cfg.nodes + 1)]
    everyone = keyring_from_seeds(seeds, list(range(cfg.nodes + 1)))
    reps: list[Replica] = []
    for i in range(cfg.nodes):
        if cfg.protocol == "pbft":
            pc = PbftConfig(cfg.nodes, (cfg.client,), cfg.timeout_ticks, cfg.checkpoint_every)
            reps.append(PbftReplica(i, pc, rings[i]))
        else:
            reps.append(PaxosReplica(i, PaxosConfig(cfg.nodes, (cfg.client,), cfg.timeout_ticks)))
    return reps, rings, everyone


@dataclass
class Simulation:
    """The network and the loop: deliver, tick the replicas and the client, log, repeat."""

    cfg: SmrConfig
    progress: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        cfg = self.cfg
        cfg.check()
        self.rng = random.Random(cfg.seed)
        self.replicas, self.rings, everyone = _replicas(cfg)
        quorum = cfg.reply_quorum or (cfg.f + 1 if cfg.protocol == "pbft" else 1)
        client_keys = self.rings[cfg.client] if cfg.protocol == "pbft" else None
        self.client = Client(
            cfg.client, cfg.nodes, cfg.commands, cfg.window, quorum, cfg.retry_ticks, client_keys
        )
        self.coalition = Coalition(everyone, CLUSTER, cfg.nodes)
        self.traitors = [f for f in cfg.faults if isinstance(f, Traitor)]
        self.coalition.members = {
            f.node for f in self.traitors if f.strategy == Strategy.EQUIVOCATE
        }
        self.adversaries = {
            f.node: Adversary(
                f.node,
                f.strategy,
                self.coalition,
                random.Random(cfg.seed + f.node),
                self._late_ticks(f),
            )
            for f in self.traitors
        }
        self.crash_at = {f.node: f.at_tick for f in cfg.faults if isinstance(f, Crash)}
        self.inflight: dict[int, list[tuple[int, int, Any]]] = {}
        self.lines: dict[int, list[dict[str, Any]]] = {i: [] for i in range(cfg.nodes + 1)}
        self.hash = hashlib.sha256()
        self.frames = self.dropped = self.delayed = 0
        self.wall_sent: dict[int, float] = {}
        self.views = dict.fromkeys(range(cfg.nodes), 0)
        self.latency_s: list[float] = []

    def _late_ticks(self, f: Traitor) -> int:
        if f.strategy != Strategy.LATE:
            return 0
        if f.delay_ms:
            return math.ceil(f.delay_ms / self.cfg.tick_ms)
        return 2 * self.cfg.timeout_ticks  # a primary slower than the timeout

    def up(self, i: int, t: int) -> bool:
        return i not in self.crash_at or t < self.crash_at[i]

    def _log(self, node: int, line: dict[str, Any]) -> None:
        self.lines[node].append(line)
        self.hash.update(json.dumps(line, sort_keys=True).encode() + b"\n")

    def route(self, src: int, sends: list[Send], t: int) -> None:
        """Put sends on the links: a traitor's rewrite, then the link faults (seeded)."""
        extra_src = 0
        adv = self.adversaries.get(src)
        if adv is not None and self._traitor_active(src, t):
            held = list(self.replicas[src].pending.values())
            sends = adv.rewrite(sends, held)
            extra_src = adv.late_ticks
        for s in sends:
            self.frames += 1
            extra = extra_src
            if s.dst < self.cfg.nodes and src < self.cfg.nodes:
                lost, more = self._link(src, s.dst, t)
                if lost:
                    self.dropped += 1
                    continue
                extra += more
            self.delayed += extra > 0
            self.inflight.setdefault(t + 1 + extra, []).append((src, s.dst, s.msg))

    def _traitor_active(self, node: int, t: int) -> bool:
        return any(f.node == node and f.window.active(t) for f in self.traitors)

    def _link(self, src: int, dst: int, t: int) -> tuple[bool, int]:
        extra = 0
        for f in self.cfg.faults:
            if not isinstance(f, LinkDrop | LinkDelay | LinkJitter):
                continue
            if not f.window.active(t) or not f.link.carries(src, dst):
                continue
            if isinstance(f, LinkDrop) and self.rng.random() < f.p:
                return True, 0
            if isinstance(f, LinkDelay):
                extra += math.ceil(f.delay_ms / self.cfg.tick_ms)
            if isinstance(f, LinkJitter):
                extra += self.rng.randint(0, math.ceil(f.max_ms / self.cfg.tick_ms))
        return False, extra

    def step(self, t: int) -> None:
        cfg = self.cfg
        for src, dst, msg in self.inflight.pop(t, []):
            if dst == cfg.client:
                if isinstance(msg, Reply):
                    before = len(self.client.accepted)
                    client_lines: list[dict[str, Any]] = []
                    self.client.receive(src, msg, t, client_lines)
                    for line in client_lines:
                        self._log(cfg.client, line)
                    if len(self.client.accepted) > before:
                        self.latency_s.append(time.process_time() - self.wall_sent[msg.req])
                continue
            if self.up(dst, t):
                self.route(dst, self.replicas[dst].receive(src, msg, t), t)
        for i, rep in enumerate(self.replicas):
            if not self.up(i, t):
                if self.crash_at.get(i) == t:
                    self._log(i, {"event": "crash", "node": i, "tick": t})
                continue
            self.route(i, rep.tick(t), t)
            self._drain(i, rep, t)
        client_lines = []
        sends = self.client.tick(t, client_lines)
        now = time.process_time()
        for line in client_lines:
            self.wall_sent[line["req"]] = now
            self._log(cfg.client, line)
        self.route(cfg.client, sends, t)

    def _drain(self, i: int, rep: Replica, t: int) -> None:
        if rep.view != self.views[i] and rep.normal:
            self.views[i] = rep.view
            self._log(i, {"event": "view", "node": i, "tick": t, "view": rep.view})
        for e in rep.executed:
            self._log(i, e.event(i, t))
        rep.executed.clear()

    def done(self, t: int) -> bool:
        """Every command accepted by the client and executed by every loyal replica still up."""
        if len(self.client.accepted) < self.cfg.commands:
            return False
        return all(
            len(r.service.done) >= self.cfg.commands
            for i, r in enumerate(self.replicas)
            if self.up(i, t) and i not in self.adversaries
        )

    def run(self) -> SmrRun:
        started = time.process_time()
        t = 0
        while t < self.cfg.ticks_max:
            self.step(t)
            if self.progress is not None and t % 256 == 0:
                self.progress(t)
            if self.done(t):
                break
            t += 1
        return self._result(t + 1, time.process_time() - started)

    def _result(self, ticks: int, wall_s: float) -> SmrRun:
        messages: dict[str, int] = {"Request": self.client.sent}
        for r in self.replicas:
            for k, n in r.counts.sent.items():
                messages[k] = messages.get(k, 0) + n
        logs = {i: NodeLog(i, events=list(lines)) for i, lines in self.lines.items()}
        return SmrRun(
            self.cfg,
            logs,
            ticks,
            messages,
            self.client.sent,
            sum(self.rings[i].signs for i in range(self.cfg.nodes + 1)),
            sum(self.rings[i].verifies for i in range(self.cfg.nodes + 1)),
            {i: r.counts.view_changes for i, r in enumerate(self.replicas)},
            dict(self.client.accepted),
            self.frames,
            self.dropped,
            self.delayed,
            self.hash.hexdigest(),
            wall_s,
            list(self.latency_s),
        )


def simulate(cfg: SmrConfig, progress: Callable[[int], None] | None = None) -> SmrRun:
    """Run the command log once (deterministic for a given config and seed)."""
    return Simulation(cfg, progress).run()


def smr_config(sc: Scenario) -> SmrConfig:
    """The one place a command-log `Scenario` becomes an `SmrConfig` (its ticks are a limit)."""
    return SmrConfig(
        sc.replication or "",
        sc.nodes,
        sc.commands,
        sc.seed,
        sc.faults,
        ticks_max=sc.ticks,
        tick_ms=1000.0 / sc.tick_hz,
    )


def summary(r: SmrRun) -> dict[str, Any]:
    """What a campaign's report adds for a command-log scenario (`command_log` in report.json)."""
    decided = max(1, len(r.accepted))
    return {
        "protocol": r.cfg.protocol,
        "commands": r.cfg.commands,
        "accepted": len(r.accepted),
        "ticks_run": r.ticks,
        "view_changes": max(r.view_changes.values(), default=0),
        "messages": r.messages,
        "messages_per_decision": round(sum(r.messages.values()) / decided, 3),
        "signatures": r.signs,
        "verifies": r.verifies,
    }


def timeline_of(r: SmrRun, faulty: list[int]) -> dict[int, list[str]]:
    """Per replica, per tick: ok, faulty (a traitor), or stop then down after a crash."""
    crashed = {
        e["node"]: e["tick"]
        for log in r.logs.values()
        for e in log.events
        if e.get("event") == "crash"
    }
    out: dict[int, list[str]] = {}
    for i in range(r.cfg.nodes):
        at = crashed.get(i)
        row = []
        for t in range(r.ticks):
            if at is not None and t >= at:
                row.append("stop" if t == at else "down")
            else:
                row.append("faulty" if i in faulty else "ok")
        out[i] = row
    return out


class SmrRunner:
    """The runner interface of hil.outcome for a command-log scenario (simulator only)."""

    mode: str = "sim"

    def run(
        self, sc: Scenario, out: Path | None = None, progress: Callable[[int], None] | None = None
    ) -> RunOutcome:
        started = time.monotonic()
        try:
            r = simulate(smr_config(sc), progress)
        except SmrConfigError as e:
            raise RunnerError(str(e)) from None
        return RunOutcome(
            "sim",
            r.logs,
            links=ChannelStats(frames=r.frames, dropped_frames=r.dropped, delayed_frames=r.delayed),
            crashes=sum(1 for log in r.logs.values() for e in log.events if e["event"] == "crash"),
            duration_s=time.monotonic() - started,
            timeline=timeline_of(r, faulty_nodes(sc.faults)),
            history_hash=r.history_hash,
            extra={"command_log": summary(r)},
        )
