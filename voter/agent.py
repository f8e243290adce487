"""The HIL fault agent inside a board: the rig's commands in, the board's log lines out.

Only a board started with --hil has one. Commands arrive on a unix datagram
socket (pty rig) or a framed serial control line (`serial:PORT`, the hardware
rig, which also gets every decision-log line since it cannot read the board's
disk). Board faults go to `voter.faults.FaultState`, the driver's sabotage; the
process faults (`crash`, `restart`) and the clock faults act here.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import NoReturn

from voter.control import ControlPortError, SerialControl, serial_port_of
from voter.decision_log import DecisionLog
from voter.exitcodes import EXIT_HIL_CRASH, EXIT_OK, SetupError
from voter.faults import (
    PROCESS_COMMANDS,
    FaultCommandError,
    FaultState,
    check_process_command,
    parse_command,
)
from voter.health import Health
from voter.localclock import Clock
from voter.logsink import Log

#: longest a crashing or re-executing board waits for its log lines to reach the rig
DRAIN_S = 0.2
#: the selector's tag for the control port (links are tagged with their `Link`)
CONTROL = "control"


class Restart(Exception):
    """The HIL `restart` command: the daemon closes what it holds, then `reexec(start_at)`.

    `start_at` None: start again and wait for the rig's `start` command (--start-when-told).
    """

    def __init__(self, start_at: float | None) -> None:
        super().__init__(start_at)
        self.start_at = start_at


class FaultAgent:
    """Applies the rig's fault commands to this board, and forwards its log lines (serial)."""

    def __init__(
        self,
        me: int,
        faults: FaultState,
        clock: Clock,
        dlog: DecisionLog,
        log: Log,
        health: Health,
        *,
        control: str,
        control_baud: int,
        expects_start: bool = False,
    ) -> None:
        self.me = me
        self.faults = faults
        self.clock = clock
        self.dlog = dlog
        self.log = log
        self.health = health
        self.control = control  # a unix socket path, or serial:PORT
        self.control_baud = control_baud
        self.sock: socket.socket | None = None
        self.serial: SerialControl | None = None
        self.crash_at: int | None = None
        #: tick 0 on CLOCK_MONOTONIC, once the rig's `start` command said when
        self.start_at: float | None = None
        self._expects_start = expects_start  # started with --start-when-told

    # -- the control port ----------------------------------------------------------
    def open(self, sel: selectors.BaseSelector) -> None:
        """Open the control port and wait on it in `sel` (SetupError: one line, exit 69)."""
        port = serial_port_of(self.control)
        if port is not None:
            try:
                self.serial = SerialControl.open(port, self.control_baud)
            except ControlPortError as e:
                raise SetupError(f"HIL control: {e}") from None
            fd = self.serial.fileno()
            if fd is None:
                self.serial.close()
                raise SetupError(f"HIL control port {port} has no file descriptor to wait on")
            sel.register(fd, selectors.EVENT_READ, CONTROL)
            # The rig cannot read this board's disk: every log line also goes to it.
            self.dlog.tap = self.serial.send_line
        elif self.control:
            path = Path(self.control)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.bind(str(path))
            except OSError as e:
                sock.close()
                raise SetupError(f"cannot bind HIL control socket {path}: {e}") from None
            sock.setblocking(False)
            self.sock = sock
            sel.register(sock, selectors.EVENT_READ, CONTROL)

    @property
    def backlog(self) -> bool:
        """Log lines still queued for the serial control line."""
        return self.serial is not None and bool(self.serial.pending)

    def flush(self) -> None:
        if self.serial is not None:
            self.serial.flush()

    def on_readable(self) -> None:
        """Apply every command waiting on the control port."""
        if self.serial is not None:
            bad = self.serial.bad_packets
            for raw in self.serial.read_commands():
                self._apply(raw)
            if self.serial.bad_packets > bad:
                self.dlog.event(
                    "control-noise", node=self.me, dropped=self.serial.bad_packets - bad
                )
            return
        assert self.sock is not None
        while True:
            try:
                raw = self.sock.recv(4096)
            except BlockingIOError:
                return
            self._apply(raw)

    def close(self) -> None:
        if self.serial is not None:
            self.serial.drain(DRAIN_S)
            self.serial.close()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.control)

    # -- the commands -----------------------------------------------------------------
    def _apply(self, raw: bytes) -> None:
        try:
            cmd = parse_command(raw)
            if cmd["cmd"] in PROCESS_COMMANDS:
                cmd = check_process_command(cmd)
            else:
                cmd = self.faults.apply(raw)
        except (FaultCommandError, KeyError, ValueError, TypeError) as e:
            self.log.warning("bad HIL command ignored", error=str(e))
            self.dlog.event("fault-rejected", node=self.me, error=str(e))
            return
        if cmd["cmd"] == "start":  # not a fault: the `joined` line says how the board started
            self._start(cmd)
            return
        # "node" and "event" are the log line's own keys: a command cannot overwrite them.
        self.dlog.event(
            "fault", node=self.me, **{k: v for k, v in cmd.items() if k not in ("node", "event")}
        )
        if cmd["cmd"] == "restart":
            when_told = "start_in_s" not in cmd and cmd.get("when_told") is True
            self._restart(None if when_told else float(cmd.get("start_in_s", 1.5)))
        if cmd["cmd"] == "crash":
            self.crash_at = int(cmd.get("at_tick") or 0)
        if cmd["cmd"] in ("clock-drift", "clear"):
            self.clock.set_drift(self.faults.drift_ppm)
        self.log.event(
            "HIL fault applied", **{k: v for k, v in cmd.items() if k != "cmd"}, cmd=cmd["cmd"]
        )

    def clock_step(self, tick: int) -> None:
        """Between ticks: the HIL clock-step fault due at `tick`, if any, jumps the clock."""
        step = self.faults.clock_step_s(tick)
        if step:
            self.clock.step(step)
            self.dlog.event("clock-jump", node=self.me, tick=tick, ms=round(step * 1e3, 3))

    def decided(self, tick: int) -> None:
        """After a decision: a `crash` command due by `tick` takes the board down now."""
        if self.crash_at is not None and tick >= self.crash_at:
            self._crash()

    def _crash(self) -> NoReturn:
        """The HIL `crash` command: die like a board that lost power, no stop line, exit 71.

        Only the log lines already queued for the rig get a brief chance to leave; the
        rig cannot SIGKILL a remote board, so the board does it to itself and systemd
        (Restart=on-failure) brings it back, to re-join from its peers.
        """
        if self.serial is not None:
            self.serial.drain(DRAIN_S)
        os._exit(EXIT_HIL_CRASH)

    def _start(self, cmd: dict[str, object]) -> None:
        """The rig's `start`: tick 0 at `at` (CLOCK_MONOTONIC, same host) or `in_s` from now.

        Only a board waiting for it (--start-when-told) takes it; a running board has its
        epoch and logs the command as rejected.
        """
        if not self._expects_start or self.start_at is not None:
            why = "already told" if self.start_at is not None else "not waiting for a start"
            self.log.warning("HIL start ignored", reason=why)
            self.dlog.event("fault-rejected", node=self.me, error=f"start: {why}")
            return
        at, in_s = cmd.get("at"), cmd.get("in_s")  # one of them, a number (checked)
        if isinstance(at, int | float):
            self.start_at = float(at)
        elif isinstance(in_s, int | float):
            self.start_at = time.monotonic() + in_s

    def _restart(self, start_in_s: float | None) -> NoReturn:
        """The HIL `restart` command: start afresh, at tick 0, `start_in_s` from now.

        The rig sends it to every board at once so they share an epoch (a common
        power-on) without a shared clock; the daemon closes what it holds and
        `reexec` runs the same process image again with --start-at on our monotonic clock.
        With `start_in_s` None the board comes back waiting for the rig's `start`,
        which the rig sends once every board is up again (no margin to guess).
        """
        start_at = None if start_in_s is None else time.monotonic() + start_in_s
        # Python start-up plus the wait for the common start can outlast WatchdogSec=2s;
        # told to wait for `start`, the board also waits for the slowest board to be up.
        self.health.stretch_watchdog(30 + (start_in_s if start_in_s is not None else 60))
        self.dlog.event("stop", node=self.me, reason="hil-restart", code=EXIT_OK)
        raise Restart(start_at)


def reexec(start_at: float | None) -> NoReturn:
    """The same process image again (same pid, so systemd keeps tracking it), common start."""
    argv = restart_argv(sys.orig_argv[1:], start_at)
    os.execv(sys.executable, [sys.executable, *argv])


def restart_argv(args: list[str], start_at: float | None) -> list[str]:
    """The command line again, with --start-at, or --start-when-told if `start_at` is None
    (and no --listen: the start is common)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--start-at", "--listen"):
            skip = True
            continue
        if a == "--start-when-told" or a.startswith(("--start-at=", "--listen=")):
            continue
        out.append(a)
    if start_at is None:
        return [*out, "--start-when-told"]
    return [*out, "--start-at", f"{start_at:.6f}"]
