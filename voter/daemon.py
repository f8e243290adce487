"""voterd: one board's daemon. Serial links, the clock, the decision log, systemd.

The tick itself (schedule, rounds, clock sync, self-checks, clique avoidance,
the decision record) is `voter.core.driver.TickDriver`, the same object the
simulator drives; this module is its shell. It waits for the driver's next
deadline in `selectors` (measured here ~0.1 ms late; asyncio timers ~0.7 ms),
feeds it every frame with the time it was read, writes what it returns and
tells it when the writes were done, so a board that was stalled knows it.
It asks for SCHED_FIFO, falling back quietly when not granted.

Exit codes: 0 stopped cleanly, 2 bad configuration or environment,
70 crash-on-inconsistency, 71 the HIL `crash` command (systemd's
Restart=on-failure brings the board back after either).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from voter._cli_util import fail
from voter.budget import ROUNDS_FRACTION, TimingBudget, admit_config, check_cluster
from voter.config import ClusterConfig, ConfigFileError, load_cluster
from voter.control import ControlPortError, SerialControl, serial_port_of
from voter.core.board import Board, InconsistencyError
from voter.core.clock import JoinListener, join_offset
from voter.core.crypto import KeyRing
from voter.core.driver import Actions, TickDriver, Timing
from voter.core.frame import Frame, encode_frame
from voter.core.ic import ic_params
from voter.core.record import DecisionRecord
from voter.core.values import ReadingDomain
from voter.decision_log import DecisionLog
from voter.faults import (
    PROCESS_COMMANDS,
    FaultCommandError,
    FaultState,
    check_process_command,
    parse_command,
)
from voter.keys import KeyFileError, load_signing_key, parse_public_key
from voter.links import Link, LinkError
from voter.logsink import Log
from voter.sdnotify import Notifier, watchdog_interval_s
from voter.sensors import SensorError, SensorSource, open_sensor

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_INCONSISTENT = 70
EXIT_HIL_CRASH = 71
#: longest a crashing or re-executing board waits for its log lines to reach the rig
DRAIN_S = 0.2


class SetupError(Exception):
    """The environment refuses something the daemon needs (one line for the user, exit 2)."""


class Clock:
    """The board's local clock: monotonic, optionally drifting or stepped (HIL faults)."""

    def __init__(self) -> None:
        self._base = time.monotonic()
        self.drift_ppm = 0.0
        self._offset = 0.0  # keeps the clock continuous when the drift changes; holds steps

    def now(self) -> float:
        real = time.monotonic() - self._base
        return real * (1.0 + self.drift_ppm * 1e-6) + self._offset

    def set_drift(self, ppm: float) -> None:
        before = self.now()
        self.drift_ppm = ppm
        after = self.now()
        self._offset += before - after

    def step(self, seconds: float) -> None:
        """The HIL clock-step fault: the clock jumps (a crystal glitch, a bad RTC write)."""
        self._offset += seconds

    def to_real_delay(self, local_delay: float) -> float:
        return local_delay / (1.0 + self.drift_ppm * 1e-6)


@dataclass
class Options:
    hil: bool = False
    control: str = ""  # a unix socket path, or serial:PORT
    control_baud: int = 0  # serial control port; 0 = the cluster's baud
    listen_s: float | None = None
    realtime: bool = True
    start_at: float | None = None  # a common epoch on time.monotonic() (HIL: shared power-on)
    seed: int = 0
    max_ticks: int | None = None
    until_tick: int | None = None
    #: fixed latency of a link beyond the wire time (a USB adapter, the pty forwarder),
    #: until the two-way clock exchange has measured it
    link_latency_s: float = 0.0
    #: the largest frame's time on the wire (from the cluster's budget)
    wire_s: float = 0.0
    #: the measured timing budget (logged at start)
    admission: TimingBudget | None = None


class Daemon:
    def __init__(
        self,
        cfg: ClusterConfig,
        node_id: int,
        keys: KeyRing,
        links: dict[int, Link],
        sensor: SensorSource,
        opts: Options,
        log: Log,
    ) -> None:
        self.cfg = cfg
        self.me = node_id
        self.links = links
        self.sensor = sensor
        self.opts = opts
        self.log = log
        self.period = cfg.period_s
        self.params = ic_params(cfg.n, cfg.m, cfg.algorithm, cfg.id)
        self.rounds = self.params.rounds
        self.slot = self.period * ROUNDS_FRACTION / self.rounds
        self.board = Board(self.params, node_id, len(cfg.channels), keys)
        self.clock = Clock()
        self.f_clock = (cfg.n - 1) // 3
        self.faults = FaultState(
            ReadingDomain(len(cfg.channels)), random.Random(opts.seed), self.period
        )
        self.timing = Timing(
            self.period,
            self.rounds,
            cfg.n,
            ROUNDS_FRACTION,
            precision_s=cfg.precision_ms / 1000,
            latency_s=opts.link_latency_s,
            wire_s=opts.wire_s,
            publish=cfg.publish,
            fail_silent=cfg.fail_silent,
        )
        self.driver = TickDriver(
            self.board,
            self.timing,
            self.sensor.read,
            algorithm=cfg.algorithm,
            sabotage=self.faults if opts.hil else None,
            cpu_clock=time.process_time,
        )
        self.driver.stop_after = opts.until_tick
        self.joiner = JoinListener(self.period)
        self.joining = True
        self.notifier = Notifier()
        wd = watchdog_interval_s()
        self.watchdog_every = wd / 4 if wd else 1.0
        self.dlog = DecisionLog(cfg.log_path(node_id))
        self.stopping = False
        # select(2) takes a microsecond timeout; epoll/poll round up to whole milliseconds.
        self.sel = selectors.SelectSelector()
        self.poll_links: list[Link] = []
        self.control: socket.socket | None = None
        self.serial_ctl: SerialControl | None = None
        self.crash_at: int | None = None
        # After a HIL restart the watchdog was stretched over the start-up; undo it once ticking.
        self._restore_watchdog = opts.start_at is not None and bool(os.environ.get("WATCHDOG_USEC"))
        self.out_sock: socket.socket | None = None
        self.out_path = cfg.output_socket_for(node_id)
        self.out_errors = 0
        self._delayed: list[tuple[float, Link, bytes]] = []
        self._last_wd = 0.0
        self._last_status = 0.0
        self.decided = 0

    # -- set-up ----------------------------------------------------------------
    def _setup_io(self) -> None:
        for link in self.links.values():
            fd = link.fileno()
            if fd is None:
                self.poll_links.append(link)
            else:
                self.sel.register(fd, selectors.EVENT_READ, link)
        port = serial_port_of(self.opts.control)
        if self.opts.hil and port is not None:
            try:
                self.serial_ctl = SerialControl.open(port, self.opts.control_baud or self.cfg.baud)
            except ControlPortError as e:
                raise SetupError(f"HIL control: {e}") from None
            fd = self.serial_ctl.fileno()
            if fd is None:
                self.serial_ctl.close()
                raise SetupError(f"HIL control port {port} has no file descriptor to wait on")
            self.sel.register(fd, selectors.EVENT_READ, "control")
            # The rig cannot read this board's disk: every log line also goes to it.
            self.dlog.tap = self.serial_ctl.send_line
        elif self.opts.hil and self.opts.control:
            path = Path(self.opts.control)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.bind(str(path))
            except OSError as e:
                sock.close()
                raise SetupError(f"cannot bind HIL control socket {path}: {e}") from None
            sock.setblocking(False)
            self.control = sock
            self.sel.register(sock, selectors.EVENT_READ, "control")
        if self.out_path:
            self.out_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.out_sock.setblocking(False)
        if self.opts.realtime:
            try:
                if os.sched_getscheduler(0) != os.SCHED_FIFO:  # the unit may have set it
                    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
                self.log.event("real-time scheduling on", policy="SCHED_FIFO")
            except (PermissionError, OSError, AttributeError):
                pass  # not granted by the unit (or not Linux): run as a normal process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    # -- time --------------------------------------------------------------------
    def wait_until(self, deadline: float, done: Callable[[], bool] | None = None) -> None:
        """Serve the links and the control port until local time `deadline` (or `done()`).

        The links are read once more even when the deadline has already passed, so
        a board that wakes late hands the driver what was waiting (the driver, told
        the time, knows it woke late and will not vouch for the tick).
        """
        first = True
        while True:
            self._flush_delayed()
            ctl = self.serial_ctl
            if ctl is not None and ctl.out:
                ctl.flush()
            if done is not None and done():
                return
            remaining = deadline - self.clock.now()
            if remaining <= 0 and not first:
                return
            first = False
            timeout = max(0.0, self.clock.to_real_delay(remaining))
            if self.poll_links or self._delayed:
                timeout = min(timeout, 0.0005)
            if ctl is not None and ctl.out:
                timeout = min(timeout, 0.002)  # come back to write the rest of the backlog
            for key, _ in self.sel.select(timeout):
                if key.data == "control":
                    self._control()
                else:
                    self._read(key.data)
            for link in self.poll_links:
                self._read(link)

    def _read(self, link: Link) -> None:
        items = link.read_frames()
        if not items:
            return
        now = self.clock.now()
        for item in items:
            if self.joining:
                if (
                    isinstance(item, Frame)
                    and item.round == 1
                    and item.src == link.peer
                    and item.dst == self.me
                ):
                    self.joiner.observe(
                        link.peer, item.tick, now - self.driver.epoch, self._join_delay_s(item)
                    )
                continue
            self._perform(self.driver.on_frame(link.peer, item, now))

    def _join_delay_s(self, frame: Frame) -> float:
        """Expected delay from a peer's t0 to our reading its round-1 frame (joining only).

        Bytes on an 8N1 line take 10 bits each (we see the frame when its last byte
        is in), plus the link's fixed latency; the two-way exchange takes over once
        the board ticks.
        """
        wire = len(encode_frame(frame)) * 10 / self.cfg.baud
        return wire + self.opts.link_latency_s

    # -- doing what the driver says ------------------------------------------------------
    def _perform(self, acts: Actions) -> None:
        """Stall (HIL), write, tell the driver when the writes were done, log, publish."""
        if acts.stall_s and acts.stall_when == "before-send":
            self._stall(acts.stall_s)
        now = self.clock.now()
        for o in acts.sends:
            link = self.links.get(o.dst)
            if link is None:
                continue
            if o.due > now:
                self._delayed.append((o.due, link, o.data))
            else:
                link.write(o.data)
        more = self.driver.done(self.clock.now())
        if acts.stall_s and acts.stall_when == "after-send":
            self._stall(acts.stall_s)
        for batch in (acts, more):
            for line in batch.lines:
                self.dlog.write(line)
                if isinstance(line, DecisionRecord):
                    self.decided += 1
            for out in batch.publish:
                self._publish(out)
        if more.decided is not None:
            self._after_decision(more.decided)

    def _stall(self, seconds: float) -> None:
        """The HIL stall fault: the whole board freezes, as under SIGSTOP or a long GC pause."""
        self.dlog.event("stall", node=self.me, tick=self.driver.tick, ms=round(seconds * 1e3, 3))
        time.sleep(seconds)

    def _flush_delayed(self) -> None:
        if not self._delayed:
            return
        now = self.clock.now()
        keep = []
        for due, link, data in self._delayed:
            if due <= now:
                link.write(data)
            else:
                keep.append((due, link, data))
        self._delayed = keep

    # -- HIL control -------------------------------------------------------------
    def _control(self) -> None:
        if self.serial_ctl is not None:
            bad = self.serial_ctl.bad_packets
            for raw in self.serial_ctl.read_commands():
                self._apply_command(raw)
            if self.serial_ctl.bad_packets > bad:
                self.dlog.event(
                    "control-noise", node=self.me, dropped=self.serial_ctl.bad_packets - bad
                )
            return
        assert self.control is not None
        while True:
            try:
                raw = self.control.recv(4096)
            except BlockingIOError:
                return
            self._apply_command(raw)

    def _apply_command(self, raw: bytes) -> None:
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
        # "node" and "event" are the log line's own keys: a command cannot overwrite them.
        self.dlog.event(
            "fault", node=self.me, **{k: v for k, v in cmd.items() if k not in ("node", "event")}
        )
        if cmd["cmd"] == "restart":
            self._reexec(float(cmd.get("start_in_s", 1.5)))
        if cmd["cmd"] == "crash":
            self.crash_at = int(cmd.get("at_tick") or 0)
        if cmd["cmd"] in ("clock-drift", "clear"):
            self.clock.set_drift(self.faults.drift_ppm)
        self.log.event(
            "HIL fault applied", **{k: v for k, v in cmd.items() if k != "cmd"}, cmd=cmd["cmd"]
        )

    def _crash(self) -> NoReturn:
        """The HIL `crash` command: die like a board that lost power, no stop line, exit 71.

        Only the log lines already queued for the rig get a brief chance to leave; the
        rig cannot SIGKILL a remote board, so the board does it to itself and systemd
        (Restart=on-failure) brings it back, to re-join from its peers.
        """
        if self.serial_ctl is not None:
            self.serial_ctl.drain(DRAIN_S)
        os._exit(EXIT_HIL_CRASH)

    def _reexec(self, start_in_s: float) -> NoReturn:
        """The HIL `restart` command: start afresh, at tick 0, `start_in_s` from now.

        The rig sends it to every board at once so they share an epoch (a common
        power-on) without a shared clock; the same process image is re-executed
        (same pid, so systemd keeps tracking it) with --start-at on our monotonic clock.
        """
        start_at = time.monotonic() + start_in_s
        # Python start-up plus the wait for the common start can outlast WatchdogSec=2s.
        self.notifier.notify(f"WATCHDOG_USEC={int((start_in_s + 30) * 1e6)}")
        self.notifier.watchdog()
        self.dlog.event("stop", node=self.me, reason="hil-restart", code=EXIT_OK)
        self._close(fsync=False)
        argv = restart_argv(sys.orig_argv[1:], start_at)
        os.execv(sys.executable, [sys.executable, *argv])

    # -- joining -----------------------------------------------------------------
    def join(self) -> int:
        """Learn the tick from f+1 agreeing peers, or cold-start; returns the first tick to run."""
        if self.opts.start_at is not None:
            epoch = self.opts.start_at - time.monotonic() + self.clock.now()
            first = max(0, int((self.clock.now() - epoch) // self.period) + 1)
            self._joined(epoch, first, "common-start", [])
            return first
        listen = self.opts.listen_s if self.opts.listen_s is not None else max(0.5, 5 * self.period)
        self.driver.epoch = self.clock.now()  # join offsets are measured against this
        deadline = self.driver.epoch + listen
        offsets: dict[int, float] = {}
        while self.clock.now() < deadline and not self.stopping:
            self.wait_until(min(deadline, self.clock.now() + self.period / 2))
            offsets.update(self.joiner.offsets())
            agreed = join_offset(list(offsets.values()), self.f_clock, self.slot / 2)
            if agreed is not None and len(offsets) >= self.f_clock + 1:
                break
        agreed = join_offset(list(offsets.values()), self.f_clock, self.slot / 2)
        if agreed is None and offsets:
            # Peers tick but fewer than f+1 agree: follow the lower median anyway and let
            # the fault-tolerant midpoint pull us in once more peers are heard.
            ordered = sorted(offsets.values())
            agreed = ordered[(len(ordered) - 1) // 2]
        how = "peers" if agreed is not None else "cold"
        epoch = self.driver.epoch - (agreed or 0.0)
        first = max(0, int((self.clock.now() - epoch) // self.period) + 1)
        self._joined(epoch, first, how, sorted(offsets))
        return first

    def _joined(self, epoch: float, first: int, how: str, peers: list[int]) -> None:
        self.driver.start(epoch, first)
        self.joining = False
        extra = {"peers": peers} if how != "common-start" else {}
        self.dlog.event("joined", node=self.me, tick=first, how=how, **extra)
        self.log.event("joined", tick=first, how=how)

    # -- the loop ----------------------------------------------------------------
    def run(self) -> int:
        self._setup_io()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.dlog.event(
            "start",
            node=self.me,
            pid=os.getpid(),
            algorithm=self.cfg.algorithm,
            m=self.cfg.m,
            tick_hz=self.cfg.tick_hz,
            publish=self.cfg.publish,
            fail_silent=self.cfg.fail_silent,
        )
        if self.opts.admission is not None:
            a = self.opts.admission
            self.dlog.event("admission", node=self.me, message=a.message, **a.as_dict())
        # Garbage collection on our schedule: a full collection in the middle of a round
        # (measured: 8 ms, all four boards in the same tick since they allocate alike)
        # makes every board late at once. Start-up objects are frozen out of the
        # collector; young generations are collected in each tick's slack time.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            tick = self.join()
            self.notifier.ready()
            self.notifier.status(f"joined at tick {tick}")
            if self.opts.start_at is not None:
                self._wait_start(tick)
            # The one unbounded loop of the daemon: one iteration per deadline until SIGTERM.
            while not self.stopping:
                d = self.driver
                if self._done_ticking(d):
                    break
                self.wait_until(d.next_deadline(), done=self._deadline_passed)
                if self.stopping:
                    break
                if d.round == 0:
                    step = self.faults.clock_step_s(d.tick) if self.opts.hil else 0.0
                    if step:
                        self.clock.step(step)
                        self.dlog.event(
                            "clock-jump", node=self.me, tick=d.tick, ms=round(step * 1e3, 3)
                        )
                self._perform(d.wake(self.clock.now()))
        except InconsistencyError as e:
            self.log.error("crash-on-inconsistency: stopping", reason=str(e))
            self.dlog.event("stop", node=self.me, reason=str(e), code=EXIT_INCONSISTENT)
            self._close(fsync=False)
            return EXIT_INCONSISTENT
        self._perform(self.driver.stop(self.clock.now()))
        self.notifier.stopping()
        self.dlog.event(
            "stop",
            node=self.me,
            reason="signal" if self.stopping else "done",
            code=EXIT_OK,
            ticks=self.board.totals.ticks,
            **self.driver.totals,
        )
        self._close()
        return EXIT_OK

    def _done_ticking(self, d: TickDriver) -> bool:
        """Past --until-tick / --ticks; a last decision awaiting confirmation first gets the
        next tick's round 1 (the tick itself is not decided)."""
        if self.opts.max_ticks is not None and self.decided >= self.opts.max_ticks:
            return True
        return d.finished

    def _deadline_passed(self) -> bool:
        return bool(self.clock.now() >= self.driver.next_deadline())

    def _after_decision(self, tick: int) -> None:
        self._health(tick)
        if self.crash_at is not None and tick >= self.crash_at:
            self._crash()
        gc.collect(1 if tick % 64 else 2)  # after the decision, in the slack before t0 + T

    def _wait_start(self, tick: int) -> None:
        """A common start seconds ahead: serve links and control, keep the watchdog fed."""
        t0 = self.driver.epoch + tick * self.period
        while not self.stopping and t0 - self.clock.now() > 0.5:
            self.wait_until(self.clock.now() + 0.5)
            self.notifier.watchdog()

    def _close(self, fsync: bool = True) -> None:
        # Leave real-time priority first: interpreter teardown at SCHED_FIFO would hold a
        # core for milliseconds and delay the boards that are still voting.
        with contextlib.suppress(PermissionError, OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        # The lines are already in the kernel; after a crash, restart fast rather than fsync.
        self.dlog.close(fsync=fsync)
        for link in self.links.values():
            link.close()
        self.sensor.close()
        if self.serial_ctl is not None:
            self.serial_ctl.drain(DRAIN_S)
            self.serial_ctl.close()
        if self.control is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.opts.control)

    def _publish(self, msg: dict[str, Any]) -> None:
        """The voted output of a decision the board vouches for, to the local consumer."""
        if self.out_sock is None:
            return
        try:
            self.out_sock.sendto(json.dumps(msg).encode(), self.out_path)
        except OSError:
            self.out_errors += 1  # no consumer yet: the decision is still logged

    def _health(self, tick: int) -> None:
        now = time.monotonic()
        if now - self._last_wd >= self.watchdog_every:
            self.notifier.watchdog()
            self._last_wd = now
            if self._restore_watchdog:
                self.notifier.notify(f"WATCHDOG_USEC={os.environ.get('WATCHDOG_USEC', '')}")
                self._restore_watchdog = False
        if now - self._last_status >= 1.0:
            t = self.board.totals
            self.notifier.status(
                f"tick {tick}, {self.driver.status()}, frames in {t.frames_in} "
                f"out {t.frames_out}, dropped {t.dropped}, late {t.late}, "
                f"corrected {t.corrected}"
            )
            self._last_status = now


def restart_argv(args: list[str], start_at: float) -> list[str]:
    """The command line again, with --start-at (and no --listen: the start is common)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--start-at", "--listen"):
            skip = True
            continue
        if a.startswith(("--start-at=", "--listen=")):
            continue
        out.append(a)
    return [*out, "--start-at", f"{start_at:.6f}"]


def build(args: argparse.Namespace) -> Daemon:
    """Everything that can fail on bad input, each as one clear line (exit 2)."""
    try:
        cfg = load_cluster(Path(args.config))
        node = cfg.node(args.node)
    except ConfigFileError as e:
        fail(str(e))
    alg = cfg.algorithm
    try:
        budget = check_cluster(cfg.n, cfg.m, alg, len(cfg.channels))
    except ValueError as e:
        fail(f"{cfg.path}: {e}")
    log = Log(args.node)
    # Admission: this board's measured CPU per round, the wire, the link latency and the
    # precision against the round slots. A rate that does not fit is not refused (the board
    # withholds what it cannot vouch for), but it is said, once, with the rate that fits.
    precision_s = cfg.precision_ms / 1000
    admission = admit_config(
        cfg,
        latency_s=args.link_latency_us * 1e-6,
        precision_s=precision_s,
        precision_fraction=0.0 if precision_s else 1 / 8,
    )
    if not admission.fits:
        log.warning(admission.message, **admission.as_dict())
    try:
        own = load_signing_key(node.key_file)
    except KeyFileError as e:
        fail(str(e))
    if bytes(own.verify_key) != node.public_key:
        fail(f"{node.key_file} does not match node {args.node}'s public key in {cfg.path}")
    verify = {n.id: parse_public_key(n.public_key.hex()) for n in cfg.nodes}
    keys = KeyRing(verify_keys=verify, signing_keys={args.node: own})
    try:
        sensor = open_sensor(
            node.sensor, len(cfg.channels), args.node, cfg.period_s, cfg.path.parent
        )
    except SensorError as e:
        fail(str(e))
    links: dict[int, Link] = {}
    try:
        for peer, url in sorted(node.links.items()):
            links[peer] = Link.open(peer, url, cfg.baud, cfg.id)
    except LinkError as e:
        for link in links.values():
            link.close()
        sensor.close()
        fail(str(e))
    opts = Options(
        hil=args.hil,
        control=args.control or node.control,
        control_baud=args.control_baud or 0,
        listen_s=args.listen,
        realtime=not args.no_realtime,
        start_at=args.start_at,
        seed=args.seed if args.seed is not None else args.node,
        max_ticks=args.ticks,
        until_tick=args.until_tick,
        link_latency_s=args.link_latency_us * 1e-6,
        # Round-1 frames carry the timing block on top of the budget's frames (<= 12 bytes).
        wire_s=(max(budget.round_bytes) + 12) * 10 / cfg.baud,
        admission=admission,
    )
    return Daemon(cfg, args.node, keys, links, sensor, opts, log)


def main(argv: list[str] | None = None, exit_fn: Callable[[int], Any] = SystemExit) -> None:
    parser = argparse.ArgumentParser(
        prog="voterd", description="Board daemon: interactive consistency on serial links."
    )
    parser.add_argument("--config", required=True, help="cluster TOML (voter cluster init)")
    parser.add_argument("--node", required=True, type=int, help="this board's node id")
    parser.add_argument(
        "--hil", action="store_true", help="HIL mode: accept fault commands on the control socket"
    )
    parser.add_argument(
        "--control",
        default="",
        help="HIL control: a unix socket path, or serial:PORT (overrides the config's control)",
    )
    parser.add_argument(
        "--control-baud",
        type=int,
        default=None,
        help="baud of a serial:PORT control line (default: the cluster's baud)",
    )
    parser.add_argument(
        "--listen",
        type=float,
        default=None,
        help="seconds to listen for running peers before a cold start",
    )
    parser.add_argument(
        "--start-at",
        type=float,
        default=None,
        help="HIL: common epoch on CLOCK_MONOTONIC instead of listening",
    )
    parser.add_argument("--ticks", type=int, default=None, help="stop after this many ticks")
    parser.add_argument(
        "--until-tick", type=int, default=None, help="stop after deciding this tick"
    )
    parser.add_argument("--seed", type=int, default=None, help="HIL: seed of injected faults")
    parser.add_argument("--no-realtime", action="store_true", help="do not ask for SCHED_FIFO")
    parser.add_argument(
        "--link-latency-us",
        type=float,
        default=0.0,
        help="fixed link latency beyond the wire time (USB adapter, pty forwarder)",
    )
    args = parser.parse_args(argv)
    if args.start_at is not None and not args.hil:
        fail("--start-at is a HIL option (add --hil)")
    daemon = build(args)
    try:
        code = daemon.run()
    except KeyboardInterrupt:
        code = EXIT_OK
    except SetupError as e:
        fail(str(e))
    raise exit_fn(code)
