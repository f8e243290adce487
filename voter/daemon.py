"""The board daemon's loop: wait for the tick driver's deadlines, serve the links, do what it says.

The tick itself (schedule, rounds, clock sync, self-checks, clique avoidance,
the decision record) is `voter.core.driver.TickDriver`, the same object the
simulator drives; this module is its shell. It waits for the driver's next
deadline in `selectors` (measured here ~0.1 ms late; asyncio timers ~0.7 ms),
feeds it every frame with the time it was read, writes what it returns and
tells it when the writes were done, so a board that was stalled knows it.

Everything else is handed in, built by `voter.voterd`: the links
(`voter.peerlinks`), the local clock (`voter.localclock`), joining
(`voter.join`), systemd health (`voter.health`), the output socket
(`voter.output`) and, under --hil, the fault agent (`voter.agent`).
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from voter.agent import CONTROL, FaultAgent, Restart, reexec
from voter.budget import TimingBudget
from voter.commandlog import COMMANDS, CommandLog
from voter.config import ClusterConfig
from voter.core.board import InconsistencyError
from voter.core.driver import Actions, TickDriver
from voter.core.record import DecisionRecord
from voter.core.smr_wire import Fragment, SmrFrame
from voter.decision_log import DecisionLog
from voter.exitcodes import EXIT_INCONSISTENT, EXIT_OK, EXIT_UNAVAILABLE, SetupError
from voter.health import Health
from voter.join import Joiner, first_tick, listen_s
from voter.links import Link
from voter.localclock import Clock
from voter.logsink import Log
from voter.output import Output
from voter.peerlinks import PeerLinks
from voter.realtime import enter_fifo, leave_fifo
from voter.sensors import SensorSource


@dataclass
class Options:
    """How this run starts and ends (from the command line)."""

    listen_s: float | None = None
    realtime: bool = True
    start_at: float | None = None  # a common epoch on time.monotonic() (HIL: shared power-on)
    #: HIL: the common epoch comes in the rig's `start` command, sent once all boards are ready
    start_when_told: bool = False
    #: ... and gives up after this long without it (the rig may have died): exit 69
    start_timeout_s: float = 300.0
    max_ticks: int | None = None
    #: the measured timing budget (logged at start)
    admission: TimingBudget | None = None


@dataclass
class Parts:
    """What a board is made of, built and checked by `voter.voterd.build`."""

    cfg: ClusterConfig
    me: int
    driver: TickDriver
    clock: Clock
    links: PeerLinks
    sensor: SensorSource
    dlog: DecisionLog
    log: Log
    joiner: Joiner
    health: Health
    output: Output
    agent: FaultAgent | None  # only under --hil
    #: the replicated command log ([replication] in cluster.toml); None = agreement only
    commands: CommandLog | None = None


class Daemon:
    """One board's loop around its tick driver, from joining to the stop line."""

    def __init__(self, parts: Parts, opts: Options) -> None:
        self.parts = parts
        self.driver = parts.driver
        self.clock = parts.clock
        self.opts = opts
        self.stopping = False
        self.joining = True
        self.decided = 0
        # select(2) takes a microsecond timeout; epoll/poll round up to whole milliseconds.
        self.sel = selectors.SelectSelector()

    # -- set-up ----------------------------------------------------------------
    def _setup_io(self) -> None:
        self.parts.links.register(self.sel)
        if self.parts.agent is not None:
            self.parts.agent.open(self.sel)
        if self.parts.commands is not None:
            self.parts.commands.open(self.sel)
        self.parts.output.open()
        if self.opts.realtime:
            enter_fifo(self.parts.log)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _start(self) -> None:
        """Open the ports, take the signals, log the start line (and the timing budget)."""
        self._setup_io()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        cfg = self.parts.cfg
        self.parts.dlog.event(
            "start",
            node=self.parts.me,
            pid=os.getpid(),
            algorithm=cfg.algorithm,
            m=cfg.m,
            tick_hz=cfg.tick_hz,
            publish=cfg.publish,
            fail_silent=cfg.fail_silent,
        )
        if self.opts.admission is not None:
            a = self.opts.admission
            self.parts.dlog.event("admission", node=self.parts.me, message=a.message, **a.as_dict())

    # -- time --------------------------------------------------------------------
    def wait_until(self, deadline: float, done: Callable[[], bool] | None = None) -> None:
        """Serve the links and the control port until local time `deadline` (or `done()`).

        The links are read once more even when the deadline has already passed, so
        a board that wakes late hands the driver what was waiting (the driver, told
        the time, knows it woke late and will not vouch for the tick).
        """
        links, agent = self.parts.links, self.parts.agent
        first = True
        while True:
            if links.held:
                links.flush_due(self.clock.now())
            if agent is not None and agent.backlog:
                agent.flush()
            if done is not None and done():
                return
            remaining = deadline - self.clock.now()
            if remaining <= 0 and not first:
                return
            first = False
            timeout = max(0.0, self.clock.to_real_delay(remaining))
            if links.busy:
                timeout = min(timeout, 0.0005)
            if agent is not None and agent.backlog:
                timeout = min(timeout, 0.002)  # come back to write the rest of the backlog
            for key, _ in self.sel.select(timeout):
                if key.data == CONTROL:
                    assert agent is not None
                    agent.on_readable()
                elif key.data == COMMANDS:
                    assert self.parts.commands is not None
                    self.parts.commands.on_readable(key.fileobj)
                else:
                    self._read(key.data)
            for link in links.polled:
                self._read(link)

    def _read(self, link: Link) -> None:
        items = link.read_frames()
        if not items:
            return
        now = self.clock.now()
        for item in items:
            if isinstance(item, SmrFrame | Fragment):  # only on links of a command-log board
                if self.parts.commands is not None:
                    self.parts.commands.on_item(link.peer, item)
                continue
            if self.joining:
                self.parts.joiner.observe(link.peer, item, now - self.driver.epoch)
                continue
            self._perform(self.driver.on_frame(link.peer, item, now))

    # -- doing what the driver says ------------------------------------------------------
    def _perform(self, acts: Actions) -> None:
        """Stall (HIL), write, tell the driver when the writes were done, log, publish."""
        if acts.stall_s and acts.stall_when == "before-send":
            self._stall(acts.stall_s)
        now = self.clock.now()
        for o in acts.sends:
            self.parts.links.send(o.dst, o.data, o.due, now)
        more = self.driver.done(self.clock.now())
        if acts.stall_s and acts.stall_when == "after-send":
            self._stall(acts.stall_s)
        for batch in (acts, more):
            for line in batch.lines:
                self.parts.dlog.write(line)
                if isinstance(line, DecisionRecord):
                    self.decided += 1
                    self.parts.output.decided(line)
            for out in batch.publish:
                self.parts.output.publish(out)
        if more.decided is not None:
            self._after_decision(more.decided)

    def _stall(self, seconds: float) -> None:
        """The HIL stall fault: the whole board freezes, as under SIGSTOP or a long GC pause."""
        self.parts.dlog.event(
            "stall", node=self.parts.me, tick=self.driver.tick, ms=round(seconds * 1e3, 3)
        )
        time.sleep(seconds)

    def _after_decision(self, tick: int) -> None:
        if self.parts.commands is not None:  # the command-log slot: after the rounds decided
            self.parts.commands.slot(tick, self.parts.links, self.clock.now())
        self.parts.health.decided(tick)
        if self.parts.agent is not None:
            self.parts.agent.decided(tick)
        gc.collect(1 if tick % 64 else 2)  # after the decision, in the slack before t0 + T

    # -- joining -----------------------------------------------------------------
    def join(self) -> int:
        """Learn the tick from f+1 agreeing peers, or cold-start; returns the first tick to run."""
        start_at = self._told_start() if self.opts.start_when_told else self.opts.start_at
        if start_at is not None:
            epoch = start_at - time.monotonic() + self.clock.now()
            return self._joined(epoch, "common-start", [])
        if self.opts.start_when_told:  # stopped before the rig said when
            return self._joined(self.clock.now(), "common-start", [])
        listen = listen_s(self.driver.period, self.opts.listen_s)
        self.driver.epoch = self.clock.now()  # join offsets are measured against this
        deadline = self.driver.epoch + listen
        while self.clock.now() < deadline and not self.stopping:
            self.wait_until(min(deadline, self.clock.now() + self.driver.period / 2))
            if self.parts.joiner.quorum():
                break
        offset, how, peers = self.parts.joiner.verdict()
        return self._joined(self.driver.epoch - offset, how, peers)

    def _told_start(self) -> float | None:
        """Ready: serve the ports until the rig's `start` command names tick 0 (None: stopped).

        A fixed start margin cannot know how long start-up takes on a loaded host
        (boards joined 45-64 ticks late with 3 s); readiness is this board's to say.
        """
        agent = self.parts.agent
        assert agent is not None  # --start-when-told is a HIL option
        give_up = self.clock.now() + self.opts.start_timeout_s
        while not self.stopping and agent.start_at is None:
            if self.clock.now() >= give_up:
                # A rig that died (or never came) would leave the board waiting for good.
                raise SetupError(
                    f"HIL: no `start` from the rig within {self.opts.start_timeout_s:g} s "
                    "(--start-timeout); is the rig running?"
                )
            wake = min(give_up, self.clock.now() + 0.5)
            self.wait_until(wake, done=lambda: agent.start_at is not None)
            self.parts.health.waiting()
        return agent.start_at

    def _joined(self, epoch: float, how: str, peers: list[int]) -> int:
        first = first_tick(epoch, self.clock.now(), self.driver.period)
        self.driver.start(epoch, first)
        self.joining = False
        extra = {"peers": peers} if how != "common-start" else {}
        self.parts.dlog.event("joined", node=self.parts.me, tick=first, how=how, **extra)
        self.parts.log.event("joined", tick=first, how=how)
        if self.parts.commands is not None:  # a restarted crash-only replica recovers
            self.parts.commands.joined(how, first)
        return first

    # -- the loop ----------------------------------------------------------------
    def run(self) -> int:
        """Start, join, tick until told to stop; the exit code (a HIL restart never returns)."""
        self._start()
        # Garbage collection on our schedule: a full collection in the middle of a round
        # (measured: 8 ms, all four boards in the same tick since they allocate alike)
        # makes every board late at once. Start-up objects are frozen out of the
        # collector; young generations are collected in each tick's slack time.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            self._vote()
        except InconsistencyError as e:
            self.parts.log.error("crash-on-inconsistency: stopping", reason=str(e))
            self.parts.dlog.event("stop", node=self.parts.me, reason=str(e), code=EXIT_INCONSISTENT)
            self._close(fsync=False)
            return EXIT_INCONSISTENT
        except Restart as r:
            self._close(fsync=False)
            reexec(r.start_at)  # None: --start-when-told
        except SetupError as e:  # no `start` came: the decision log says why it ends
            self.parts.dlog.event("stop", node=self.parts.me, reason=str(e), code=EXIT_UNAVAILABLE)
            self._close(fsync=False)
            raise
        return self._stop()

    def _vote(self) -> None:
        """Join, then one driver step per deadline until SIGTERM or the last tick."""
        tick = self.join()
        self.parts.health.ready(tick)
        if self.opts.start_at is not None or self.opts.start_when_told:
            self._wait_start(tick)
        # The one unbounded loop of the daemon: one iteration per deadline until SIGTERM.
        while not self.stopping:
            d = self.driver
            if self._done_ticking(d):
                break
            self.wait_until(d.next_deadline(), done=self._deadline_passed)
            if self.stopping:
                break
            if d.round == 0 and self.parts.agent is not None:
                self.parts.agent.clock_step(d.tick)
            self._perform(d.wake(self.clock.now()))

    def _stop(self) -> int:
        """The last decisions, STOPPING=1 and the stop line with the run's totals."""
        self._perform(self.driver.stop(self.clock.now()))
        self.parts.health.stopping()
        if self.parts.commands is not None:
            totals = self.parts.commands.totals()
            self.parts.dlog.event(
                "command-log", node=self.parts.me, tick=self.driver.tick, **totals
            )
        self.parts.dlog.event(
            "stop",
            node=self.parts.me,
            reason="signal" if self.stopping else "done",
            code=EXIT_OK,
            ticks=self.driver.board.totals.ticks,
            **self.driver.totals,
            **self._invalid(),
        )
        self._close()
        return EXIT_OK

    def _invalid(self) -> dict[str, Any]:
        """The stop line's `invalid`: {channel: {reason: samples}} when a check voided any."""
        v = self.driver.validity
        return {"invalid": v.summary()} if v is not None and v.counts else {}

    def _done_ticking(self, d: TickDriver) -> bool:
        """Past --until-tick / --ticks; a last decision awaiting confirmation first gets the
        next tick's round 1 (the tick itself is not decided)."""
        if self.opts.max_ticks is not None and self.decided >= self.opts.max_ticks:
            return True
        return d.finished

    def _deadline_passed(self) -> bool:
        return bool(self.clock.now() >= self.driver.next_deadline())

    def _wait_start(self, tick: int) -> None:
        """A common start seconds ahead: serve links and control, keep the watchdog fed."""
        t0 = self.driver.epoch + tick * self.driver.period
        while not self.stopping and t0 - self.clock.now() > 0.5:
            self.wait_until(self.clock.now() + 0.5)
            self.parts.health.waiting()

    def _close(self, fsync: bool = True) -> None:
        # Leave real-time priority first (see voter.realtime).
        leave_fifo()
        # The lines are already in the kernel; after a crash, restart fast rather than fsync.
        self.parts.dlog.close(fsync=fsync)
        self.parts.links.close()
        if self.parts.commands is not None:
            self.parts.commands.close()
        self.parts.sensor.close()
        if self.parts.agent is not None:
            self.parts.agent.close()
        self.parts.output.close()
