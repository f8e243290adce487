"""`hil campaign run --mode pty` for a command-log scenario: real voterd boards run PBFT.

The boards are `hil.cluster.ProcessCluster` with a [replication] table; the
rig is the client: it submits the scenario's commands through the loyal
boards' command sockets (`voter.commandlog`, a few in flight per board), and
each board sends its signed request to every replica and answers on f+1
matching replies, as `voter command send` does. The client's log (node N, as
in the simulator) is written from what the boards did: a `request` line per
`command` line a board logged (the board is the command's client), a `reply`
line per answer; `hil.smr_checks` judges the boards' `commit` lines against it.

Only what voterd can act out runs here: PBFT (`[replication] protocol =
"pbft"`) and crash-only (`"paxos"`, the scenario's `replication = "crash"`)
with traitors (the fault agent tells the board; `silent` silences its command
log with its agreement frames, `equivocate`, `lie`, `forge`, `withhold` and
`random` are `voter.smr_faults` rewriting the board's own replica's sends, the
same code the simulator runs; `late` stays in the simulator), and, crash-only,
a `crash`: the rig SIGKILLs the board
at the tick and restarts it as systemd would; the restarted replica recovers as
a learner (`voter.core.paxos`, docs/design.md "A restarted board") and its log
is judged like every other's. Other command-log faults run in the simulator
(`unsupported` says why, and the campaign skips the scenario with that line).
With fewer than 4 boards the agreement beside the log is SM(1) (OM(1) needs 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import selectors
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.checks import NodeLog, read_run
from hil.cluster import ProcessCluster
from hil.faultspec import faulty_nodes
from hil.outcome import RunOutcome, sum_links
from hil.scenario import Scenario
from voter.commandlog import connect
from voter.config import ReplicationConfig
from voter.core.adversary import Strategy
from voter.core.protocol import Algorithm
from voter.faultmodel import Crash, Traitor, to_command
from voter.smr_faults import BOARD_STRATEGIES

#: traitor strategies voterd's command log acts out: silent (the daemon drops the slot's
#: writes) and the rewrites of `voter.smr_faults` (the board, told to be the traitor by
#: the fault agent, rewrites its own replica's sends: the simulator's code)
PTY_STRATEGIES = frozenset({Strategy.SILENT}) | BOARD_STRATEGIES
#: commands in flight per board (each board holds at most CLIENT_PENDING_MAX)
WINDOW = 8
#: seconds the boards get, once every command was answered, to log the last commits
SETTLE_S = 10.0
#: the boards' [replication]: the simulator's checkpoint interval; the slot and the
#: view-change timer are voterd's defaults for the scenario's baud and rate
REPLICATION = ReplicationConfig(checkpoint_every=16)
#: a scenario's `replication` -> voterd's [replication] protocol
PROTOCOL = {"pbft": "pbft", "crash": "paxos"}
#: seconds a killed board stays down before the rig starts it again (systemd: RestartSec)
RESTART_DELAY_S = 0.5


def unsupported(sc: Scenario) -> str | None:
    """Why `sc` cannot run on pty boards, or None."""
    if sc.replication not in PROTOCOL:
        return f"replication {sc.replication!r} runs in the simulator only (--mode sim)"
    for f in sc.faults:
        if isinstance(f, Crash):
            if sc.replication != "crash":
                return "a crashed PBFT board on pty restarts empty (no recovery): simulator only"
            continue
        if not isinstance(f, Traitor):
            return f"{f.kind} faults on a command log run in the simulator only"
        if f.strategy not in PTY_STRATEGIES:
            return f"the {f.strategy} traitor on a command log runs in the simulator only"
    return None


def cluster_for(sc: Scenario, out: Path, realtime: bool) -> ProcessCluster:
    """The boards of a command-log scenario: its protocol; SM(1) beside it below 4 boards."""
    small = sc.nodes < 4
    return ProcessCluster(
        out,
        nodes=sc.nodes,
        algorithm=Algorithm.SM if small else sc.algorithm,
        m=1 if small else sc.m,
        tick_hz=sc.tick_hz,
        baud=sc.baud,
        seed=sc.seed,
        realtime=realtime,
        replication=dataclasses.replace(REPLICATION, protocol=PROTOCOL[sc.replication or ""]),
    )


@dataclass
class Crasher:
    """Kills each crashing board once its log reaches the crash tick, then restarts it."""

    cluster: ProcessCluster
    crashes: dict[int, int]
    last_tick: int
    done: set[int] = field(default_factory=set)

    def poll(self) -> None:
        for node, at in self.crashes.items():
            if node not in self.done and (self.cluster.last_tick(node) or -1) >= at:
                self.cluster.kill(node)
                self.done.add(node)
                time.sleep(RESTART_DELAY_S)
                self.cluster.restart(node, until_tick=self.last_tick)


@dataclass
class SmrPtyRunner:
    """Real boards running the command log; the runner interface of `hil.outcome`."""

    realtime: bool = True
    mode: str = "pty"

    def run(
        self, sc: Scenario, out: Path, progress: Callable[[int], None] | None = None
    ) -> RunOutcome:
        cluster = cluster_for(sc, out, self.realtime)
        started = time.monotonic()
        answers: list[dict[str, Any]] = []
        crashes = {f.node: f.at_tick for f in sc.faults if isinstance(f, Crash)}
        crasher = Crasher(cluster, crashes, sc.ticks - 1)
        try:
            cluster.setup()
            cluster.start(until_tick=sc.ticks - 1)
            for f in sc.faults:
                if isinstance(f, Traitor):
                    cluster.control(f.node, to_command(f))
            loyal = [i for i in range(sc.nodes) if i not in faulty_nodes(sc.faults)]
            # the rig submits through boards that stay up; a restarted board is judged too
            clients = [i for i in loyal if i not in crashes]
            answers = _client(cluster, sc, clients, progress, crasher.poll)
            _settle(cluster, loyal, len(answers), crasher.poll)
            exit_codes = {i: p.poll() for i, p in cluster.procs.items()}
        finally:
            fabric = cluster.stop()
        _client_log(out, sc.nodes, answers)
        logs = read_run(out, sc.nodes + 1)
        return RunOutcome(
            "pty",
            logs,
            links=sum_links(fabric),
            link_detail=fabric,
            duration_s=time.monotonic() - started,
            restarts=sum(cluster.restarts.values()),
            crashes=len(crasher.done),
            extra={
                "command_log": summary(logs, sc, len(answers)),
                "exit_codes": {str(k): v for k, v in exit_codes.items()},
                "run_dir": str(out),
            },
        )


def _client(
    cluster: ProcessCluster,
    sc: Scenario,
    boards: list[int],
    progress: Callable[[int], None] | None,
    poll: Callable[[], None],
) -> list[dict[str, Any]]:
    """Submit sc.commands commands round-robin through `boards`; the answers, as they came."""
    assert cluster.cfg is not None
    sel = selectors.DefaultSelector()
    conns = {}
    for b in boards:
        conns[b] = connect(cluster.cfg.command_socket_for(b), 5.0)
        conns[b].setblocking(False)
        sel.register(conns[b], selectors.EVENT_READ, b)
    flying: dict[int, int] = {}  # command id -> board
    answers: list[dict[str, Any]] = []
    sent = 0
    deadline = (cluster.start_at or time.monotonic()) + sc.ticks / sc.tick_hz
    try:
        while len(answers) < sc.commands and time.monotonic() < deadline:
            while sent < sc.commands and len(flying) < WINDOW * len(boards):
                board = boards[sent % len(boards)]
                with contextlib.suppress(OSError):  # a board that stopped: counted as unanswered
                    conns[board].send(json.dumps({"op": f"cmd-{sent}", "id": sent}).encode())
                flying[sent] = board
                sent += 1
            for key, _ in sel.select(0.05):
                with contextlib.suppress(OSError, ValueError):
                    a = json.loads(key.fileobj.recv(4096))  # type: ignore[union-attr]
                    if a.get("ok") and flying.pop(a.get("id"), None) is not None:
                        answers.append(a | {"client": key.data})
            poll()
            if progress is not None:
                progress(min((cluster.last_tick(b) or 0) for b in boards))
            if not cluster.running():
                break
    finally:
        for c in conns.values():
            c.close()
        sel.close()
    return answers


def summary(logs: Mapping[int, NodeLog], sc: Scenario, accepted: int) -> dict[str, Any]:
    """`command_log` in report.json, the keys `hil.smr_sim.summary` gives, from the boards'
    `command-log` stop lines (one tick = one command-log slot here, 1 / tick_hz)."""
    stops = [e for log in logs.values() for e in log.events if e.get("event") == "command-log"]
    commits = [e for log in logs.values() for e in log.events if e.get("event") == "commit"]
    messages: dict[str, int] = {}
    for e in stops:
        for kind, n in e.get("messages", {}).items():
            messages[kind] = messages.get(kind, 0) + n
    return {
        "protocol": sc.replication,
        "commands": sc.commands,
        "accepted": accepted,
        "ticks_run": max((e["tick"] for e in commits), default=0),
        "view_changes": max((e.get("view_changes", 0) for e in stops), default=0),
        "messages": messages,
        "messages_per_decision": round(sum(messages.values()) / max(1, accepted), 3),
        "signatures": sum(e.get("signatures", 0) for e in stops),
        "verifies": sum(e.get("verifies", 0) for e in stops),
    }


def _commit_count(cluster: ProcessCluster, node: int) -> int:
    try:
        text = cluster.log_path(node).read_text()
    except OSError:
        return 0
    return text.count('"event":"commit"')


def _settle(
    cluster: ProcessCluster, boards: list[int], commands: int, poll: Callable[[], None]
) -> None:
    """Wait (bounded) until every loyal board logged at least `commands` commits."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline and cluster.running():
        poll()  # a crash due after the last answer still happens
        if all(_commit_count(cluster, b) >= commands for b in boards):
            return
        time.sleep(0.2)


def _client_log(out: Path, nodes: int, answers: list[dict[str, Any]]) -> None:
    """node<N>.jsonl: the client's requests (every board's `command` line) and accepted replies."""
    lines = []
    for b in range(nodes):
        path = out / f"node{b}.jsonl"
        if not path.exists():
            continue
        for raw in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                e = json.loads(raw)
                if e.get("event") == "command":
                    lines.append(
                        {
                            "event": "request",
                            "node": nodes,
                            "tick": e["tick"],
                            "client": b,
                            "req": e["req"],
                        }
                    )
    for a in answers:
        lines.append(
            {
                "event": "reply",
                "node": nodes,
                "tick": a["tick"],
                "client": a["client"],
                "req": a["req"],
                "seq": a["seq"],
                "result": a["result"],
            }
        )
    (out / f"node{nodes}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
