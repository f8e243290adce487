"""One campaign scenario on real boards (`--mode serial`): the rig PC's side.

The boards run `voterd --hil` under systemd with `control = "serial:PORT"`; the
rig sits in every link and holds each board's control line. Per scenario:

1. ask every board for a `clear` (proves it is up and clears the last scenario's faults);
2. start the link fabric on the rig's link ports with the scenario's link faults
   (the same forwarding and fault code as the pty fabric), its clock at tick 0;
3. send every board `restart` with the same start delay: each re-executes with
   --start-at, so all start at tick 0 together, like a common power-on;
4. as each board's new process says "start", send it its node faults (the same
   commands firmware-sim sends over the unix socket; a crash becomes a `crash`
   command at its tick, because the rig cannot SIGKILL a remote board);
5. collect the log lines the boards stream back until every board has decided
   the last tick (or a deadline), then `clear` every board;
6. write DIR/node<ID>.jsonl; the campaign judges them and writes run.json as for every mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.checks import read_run
from hil.fabric import FabricError, start_process, stop_process
from hil.outcome import RunnerError, RunOutcome, sum_links
from hil.rig import Rig
from hil.scenario import Scenario
from hil.verdict import missed_start_text
from voter.control import ControlPortError, SerialControl, command_packet, parse_line_packet
from voter.core.record import parse_line
from voter.faultmodel import Crash, Fault, is_board, is_link, to_command, to_table

PROBE_TIMEOUT_S = 20.0  # a board may be in a systemd restart (RestartSec=1s + start-up)
PROBE_RESEND_S = 1.0
FABRIC_MARGIN_S = 2.0  # the fabric process must be forwarding before tick 0
GRACE_S = 10.0
START_GRACE_S = 5.0  # after the last tick's time, for a re-joining board to catch up


class RigRunError(RunnerError):
    """The scenario could not be run on the rig (one line: a board silent, a port missing)."""


@dataclass
class BoardStream:
    """What one board's control line has told the rig."""

    node: int
    ctl: SerialControl
    recording: bool = False
    restarted: bool = False  # the old process acknowledged `restart`
    lines: list[str] = field(default_factory=list)
    last_seq: int | None = None
    lost: int = 0
    max_tick: int = -1
    starts: int = 0
    first_join: int | None = None  # the tick the restarted process joined at (0 = on time)
    acks: list[dict[str, Any]] = field(default_factory=list)

    def take(self, seq: int, line: str, nonce: str) -> dict[str, Any] | None:
        if self.last_seq is not None and seq > self.last_seq + 1:
            self.lost += seq - self.last_seq - 1
        self.last_seq = seq  # a smaller number: the board process restarted, its count too
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            if self.recording:
                self.lines.append(line)  # the checker counts it as a bad line
            return None
        event = obj.get("event")
        if event == "fault" and obj.get("run") == nonce:
            self.acks.append(obj)
            if obj.get("cmd") == "restart":
                self.restarted = True
        if event == "start" and self.restarted:
            self.recording = True
            self.starts += 1
        if event == "joined" and self.recording and self.first_join is None:
            self.first_join = int(obj.get("tick", -1))
        if self.recording:
            self.lines.append(line)
            if event is None and isinstance(obj.get("tick"), int):
                self.max_tick = max(self.max_tick, obj["tick"])
        return obj


class RigSession:
    def __init__(self, rig: Rig, nonce: str) -> None:
        self.rig = rig
        self.nonce = nonce
        self.boards: dict[int, BoardStream] = {}

    # -- control lines -------------------------------------------------------------
    def open(self) -> None:
        try:
            for i, url in sorted(self.rig.control.items()):
                ctl = SerialControl.open(url, self.rig.control_baud, out_max=1 << 20)
                self.boards[i] = BoardStream(i, ctl)
        except ControlPortError as e:
            self.close()
            raise RigRunError(f"rig: {e}") from None

    def close(self) -> None:
        for b in self.boards.values():
            b.ctl.drain(0.5)
            b.ctl.close()

    def send(self, node: int, cmd: dict[str, Any]) -> None:
        ctl = self.boards[node].ctl
        ctl.queue(command_packet({**cmd, "run": self.nonce}))
        ctl.drain(0.5)

    def pump(self, timeout_s: float) -> None:
        """Read whatever the boards sent within `timeout_s`."""
        fds = {b.ctl.fileno(): b for b in self.boards.values()}
        ready, _, _ = select.select([fd for fd in fds if fd is not None], [], [], timeout_s)
        for fd in ready:
            b = fds[fd]
            for payload in b.ctl.read_payloads():
                parsed = parse_line_packet(payload)
                if parsed is None:
                    b.ctl.bad_packets += 1
                    continue
                b.take(parsed[0], parsed[1], self.nonce)

    def acked(self, node: int, cmd: str) -> bool:
        return any(a.get("cmd") == cmd for a in self.boards[node].acks)

    def probe(self) -> None:
        """Every board answers a `clear`: it is up, in HIL mode, and its faults are gone."""
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        waiting = set(self.boards)
        last_sent = 0.0
        while waiting and time.monotonic() < deadline:
            if time.monotonic() - last_sent > PROBE_RESEND_S:
                for i in waiting:
                    self.send(i, {"cmd": "clear"})
                last_sent = time.monotonic()
            self.pump(0.05)
            waiting = {
                i for i in waiting if not any(a.get("cmd") == "clear" for a in self.boards[i].acks)
            }
        if waiting:
            ports = ", ".join(f"board {i} on {self.rig.control[i]}" for i in sorted(waiting))
            raise RigRunError(
                f"no answer on the control line from {ports} within {PROBE_TIMEOUT_S:g} s "
                '(is voterd running with --hil and control = "serial:PORT"?)'
            )


@dataclass
class SerialRunner:
    """Real boards on real serial lines, through the rig PC; the runner interface of hil.outcome."""

    rig: Rig
    mode: str = "serial"

    def run(
        self, sc: Scenario, out: Path, progress: Callable[[int], None] | None = None
    ) -> RunOutcome:
        """Run `sc` on the rig's boards (at their cluster's rate); write their node logs to `out`.

        RigRunError when the boards cannot be run (a silent board, a missed start).
        """
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("node*.jsonl"):
            stale.unlink()
        started = time.monotonic()
        session = RigSession(self.rig, f"{out.name}-{os.getpid()}-{time.monotonic_ns()}")
        fabric_proc: subprocess.Popen[bytes] | None = None
        fabric: dict[str, Any] = {}
        try:
            session.open()
            session.probe()
            fabric_proc, tick0 = self._start(session, sc, out)
            self._collect(session, sc, tick0, progress)
        finally:
            if fabric_proc is not None:
                stop_process(fabric_proc)
                with contextlib.suppress(OSError, ValueError):
                    fabric = json.loads((out / "fabric.json").read_text())
            with contextlib.suppress(Exception):
                for i in session.boards:  # leave no traitor behind for the next scenario
                    session.send(i, {"cmd": "clear"})
            session.close()
        for i, b in session.boards.items():
            kept = [x for x in b.lines if not _after(x, sc.ticks - 1)]
            (out / f"node{i}.jsonl").write_text("".join(x + "\n" for x in kept))
        boards = session.boards.values()
        acked = sum(1 for b in boards for a in b.acks if a.get("cmd") not in ("clear", "restart"))
        stream = {
            "stream_lines_lost": sum(b.lost for b in boards),
            "control_noise": sum(b.ctl.bad_packets for b in boards),
            "commands_unacknowledged": sum(map(len, _node_commands(sc.faults).values())) - acked,
        }
        return RunOutcome(
            "serial",
            read_run(out, sc.nodes),
            links=sum_links(fabric),
            link_detail=fabric,
            restarts=sum(max(0, b.starts - 1) for b in boards),
            crashes=sum(1 for f in sc.faults if isinstance(f, Crash)),
            duration_s=time.monotonic() - started,
            extra={
                "rig": str(self.rig.path),
                "run_dir": str(out),
                "restarts": {str(b.node): max(0, b.starts - 1) for b in boards},
                "stream": stream,
            },
        )

    def _start(
        self, session: RigSession, sc: Scenario, out: Path
    ) -> tuple[subprocess.Popen[bytes], float]:
        """The fabric on the link ports with its clock at tick 0, then every board restarted."""
        rig, period = self.rig, sc.period_s
        tick0 = time.monotonic() + FABRIC_MARGIN_S + rig.start_in_s
        spec = {
            "nodes": sc.nodes,
            "baud": rig.cluster.baud,
            "seed": sc.seed,
            "t0": tick0,
            # Before tick 0 the links carry only the boards' previous life: not forwarded.
            "forward_from_s": -period / 2,
            "faults": [to_table(f) for f in sc.faults if is_link(f)],
            "tick_s": period,
            "ports": {f"{a}-{b}": url for (a, b), url in rig.links.items()},
            "port_baud": {f"{a}-{b}": baud for (a, b), baud in rig.link_baud.items()},
        }
        try:
            proc, _ = start_process(spec, out)
        except FabricError as e:
            raise RigRunError(str(e)) from None
        while time.monotonic() < tick0 - rig.start_in_s:
            session.pump(0.02)
        start_in = tick0 - time.monotonic()
        if start_in < 0.5:
            stop_process(proc)
            raise RigRunError("the link fabric took too long to start; the common start is missed")
        for i in session.boards:
            session.send(i, {"cmd": "restart", "start_in_s": round(start_in, 6)})
        return proc, tick0

    def _collect(
        self,
        session: RigSession,
        sc: Scenario,
        tick0: float,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Send each board its faults as it starts; read until all decided the last tick."""
        last = sc.ticks - 1
        commands = _node_commands(sc.faults)
        sent: set[int] = set()
        deadline = tick0 + sc.ticks * sc.period_s + GRACE_S
        while time.monotonic() < deadline:
            session.pump(0.05)
            for i, b in session.boards.items():
                if b.recording and i not in sent:
                    for cmd in commands.get(i, []):
                        session.send(i, cmd)
                    sent.add(i)
            if time.monotonic() > tick0 + START_GRACE_S and len(sent) < len(session.boards):
                silent = sorted(set(session.boards) - sent)
                raise RigRunError(f"board(s) {silent} did not restart for the common start")
            late = {i: b.first_join for i, b in session.boards.items() if b.first_join}
            if late:
                raise RigRunError(
                    missed_start_text(late, self.rig.start_in_s, "raise start_in_s in the rig file")
                )
            if progress is not None:
                progress(min(b.max_tick for b in session.boards.values()))
            if all(b.max_tick >= last for b in session.boards.values()):
                break


def _after(line: str, last: int) -> bool:
    """A decision line past the scenario's last tick (the boards keep running)."""
    record = parse_line(line)
    return record is not None and record.tick > last


def _node_commands(faults: Iterable[Fault]) -> dict[int, list[dict[str, Any]]]:
    """What each board is told: its own faults, and crashes (a real board exits on command)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for f in faults:
        if is_board(f) or isinstance(f, Crash):
            out.setdefault(f.node, []).append(to_command(f))
    return out
