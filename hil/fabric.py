"""The HIL link layer: pseudo-terminal pairs between boards, a forwarder, baud and fault emulation.

Each board end of each link is the slave side of its own pty (a real tty path a
board opens with pyserial, exactly like /dev/ttyAMA1). The fabric holds the
master sides and forwards bytes between the two ends of every link, one
direction at a time:

- baud emulation: ptys ignore the line rate, so bytes are released no faster
  than baud/10 bytes per second per direction (8N1), each frame when its last
  byte would have arrived;
- faults per direction: bit flips at a bit error rate (independent, or in
  bursts), whole-frame drops with probability p, an added delay, a random extra
  delay per frame (jitter, uniform in [0, max]); each may be limited to a time
  window. However a frame is delayed, a direction never reorders: a serial line
  cannot, so no frame is released before the one ahead of it.

Each end is a `voter.bytelink.FdLink` (`open_pty`): the fabric keeps the slave
sides open too, so a board can be killed and restarted on the same path, and
what an end does not take now waits in its bounded outbox. Randomness comes
from one seeded generator. It runs as its own process (`python -m hil.fabric
SPEC.json`) so its timing does not share a GIL with anything else.

On a real rig (`hil campaign run --mode serial`) the same forwarding and fault
code runs between real serial ports: the rig PC sits in every link, with one
port wired to each board's end. Only how the ends are opened differs
(`serial.serial_for_url` instead of pty masters), and there is no baud emulation
because the wire itself is real.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.channel import LinkChannel
from voter.bytelink import (
    FdLink,
    LinkClosed,
    LinkFull,
    PortError,
    nonblocking_port_link,
    open_port,
    open_pty,
)
from voter.faultmodel import FaultSpecError, LinkFault, fault_from_table, is_link

#: bytes a direction may hold back (queued for baud emulation, or released but not yet
#: taken by the board's end) before it refuses new frames, counted as overflow
QUEUE_BYTES_MAX = 1 << 20
#: how often the fabric looks for new unbound kworkers to raise (when asked to)
KWORKER_REFRESH_S = 1.0
#: SCHED_FIFO priority for the kernel's pty workers: above the boards' 20 (voterd), below
#: the fabric's 30. Measured (bench/pty_delay.py, docs/performance.md): one-way p99
#: 5.9 -> 3.0 ms, p99.9 12.3 -> 4.3 ms; above the fabric (35) was no better.
KWORKER_PRIORITY = 25


class FabricError(Exception):
    """A link end that cannot be opened, or a fabric process that did not start (one line)."""


@dataclass(frozen=True)
class Sched:
    """How a process asks to be scheduled.

    `policy` "fifo" (SCHED_FIFO at `priority`, needs root or RLIMIT_RTPRIO), "other"
    (SCHED_OTHER at `nice`; anyone may raise a nice value) or "idle" (SCHED_IDLE);
    `cpus` pins it (None = any CPU).
    """

    policy: str = "fifo"
    priority: int = 30
    cpus: tuple[int, ...] | None = None
    nice: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None, default: Sched) -> Sched:
        if spec is None:
            return default
        cpus = spec.get("cpus", default.cpus)
        return cls(
            str(spec.get("policy", default.policy)),
            int(spec.get("priority", default.priority)),
            None if cpus is None else tuple(int(c) for c in cpus),
            int(spec.get("nice", default.nice)),
        )

    def as_spec(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "priority": self.priority,
            "cpus": self.cpus,
            "nice": self.nice,
        }


#: the fabric's scheduling when the spec names none
FABRIC_SCHED = Sched("fifo", 30, None)


def apply_sched(sched: Sched, pid: int = 0) -> str:
    """Ask for `sched`; what is not granted (no privilege, no such CPU) is skipped quietly.

    Returns what was granted, e.g. "fifo:30 cpus=0" or "other", for the logs.
    """
    granted = "other"
    with contextlib.suppress(PermissionError, OSError, AttributeError):
        if sched.policy == "fifo":
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(sched.priority))
            granted = f"fifo:{sched.priority}"
        elif sched.policy == "idle":
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
            granted = "idle"
        else:
            os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    if sched.policy == "other" and sched.nice:
        with contextlib.suppress(PermissionError, OSError):
            os.setpriority(os.PRIO_PROCESS, pid, sched.nice)
            granted += f" nice={sched.nice}"
    if sched.cpus is not None:
        online = os.sched_getaffinity(0) | set(range(os.cpu_count() or 1))
        cpus = set(sched.cpus) & online
        with contextlib.suppress(PermissionError, OSError, AttributeError):
            if cpus:
                os.sched_setaffinity(pid, cpus)
                granted += " cpus=" + ",".join(str(c) for c in sorted(cpus))
    return granted


#: The kernel moves pty bytes in `flush_to_ldisc`, queued by `tty_flip_buffer_push` on the
#: unbound system workqueue: it runs in a "kworker/uN:M" thread (an unbound pool worker)
#: at normal priority, and SCHED_FIFO boards that keep both CPUs busy starve it for
#: milliseconds. Workers come and go, so they are found by name in /proc again and again.
KWORKER_PREFIX = "kworker/u"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return ""


def kernel_threads() -> list[int]:
    """Pids of the kernel's threads (children of kthreadd), or of every process if unknown."""
    try:
        return [int(p) for p in Path("/proc/2/task/2/children").read_text().split()]
    except (OSError, ValueError):
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def unbound_kworkers(known: dict[int, bool] | None = None) -> list[int]:
    """Pids of the kernel's unbound workqueue workers (where pty data is moved).

    `known` caches pid -> is-an-unbound-kworker between calls, so a periodic look
    reads only new threads' names (a full scan of /proc costs ~1 ms, too long for
    the fabric's loop); pids that are gone are forgotten.
    """
    cache: dict[int, bool] = {} if known is None else known
    pids = kernel_threads()
    alive = set(pids)
    for pid in [p for p in cache if p not in alive]:
        del cache[pid]
    for pid in pids:
        if pid not in cache:
            cache[pid] = _comm(pid).startswith(KWORKER_PREFIX)
    return [pid for pid in pids if cache[pid]]


class KworkerBoost:
    """Optionally run the unbound kworkers at SCHED_FIFO `priority` (needs CAP_SYS_NICE).

    Where not permitted (not root, no /proc) it does nothing; `raised` says how many
    workers it holds. Several fabrics may run at once (parallel tests): each leaves a
    holder file, `refresh()` raises any worker found at normal priority again, and
    `restore()` puts the workers back to SCHED_OTHER (the kernel keeps their nice
    value) only when no other live fabric holds them. A fabric killed with SIGKILL
    leaves them raised until the kernel retires them; that only makes kernel work
    preempt the boards.
    """

    def __init__(self, priority: int | None) -> None:
        self.priority = priority
        self.raised: set[int] = set()
        self.refused = False
        self._holders = Path(tempfile.gettempdir()) / "voter-kworker-boost"
        self._known: dict[int, bool] = {}

    @property
    def granted(self) -> bool:
        """Whether any worker was raised (and not yet restored)."""
        return bool(self.raised)

    def refresh(self) -> None:
        if self.priority is None or self.refused:
            return
        if not self.raised:
            with contextlib.suppress(OSError):
                self._holders.mkdir(exist_ok=True)
                (self._holders / str(os.getpid())).touch()
        param = os.sched_param(self.priority)
        for pid in unbound_kworkers(self._known):
            try:
                if os.sched_getscheduler(pid) == os.SCHED_FIFO:
                    continue
                os.sched_setscheduler(pid, os.SCHED_FIFO, param)
                self.raised.add(pid)
            except ProcessLookupError:
                continue
            except (PermissionError, OSError):
                self.refused = True  # not ours to change here: stay quiet, stop trying
                return

    def _other_holders(self) -> bool:
        with contextlib.suppress(OSError):
            for entry in self._holders.iterdir():
                pid = int(entry.name) if entry.name.isdigit() else 0
                if pid == os.getpid() or pid <= 0:
                    continue
                try:
                    os.kill(pid, 0)
                    return True
                except ProcessLookupError:
                    entry.unlink(missing_ok=True)
                except PermissionError:
                    return True
        return False

    def restore(self) -> None:
        with contextlib.suppress(OSError):
            (self._holders / str(os.getpid())).unlink(missing_ok=True)
        # the last fabric out restores, also when the workers were raised by another one
        if self.priority is not None and not self.refused and not self._other_holders():
            for pid in unbound_kworkers():  # by name: a pid may have been reused since
                with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                    if os.sched_getparam(pid).sched_priority == self.priority:
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        self.raised.clear()


@dataclass
class DirectionStats:
    """The wire's own counts; what faults did is the channel's (`ChannelStats`)."""

    bytes: int = 0
    overflow_bytes: int = 0
    stale_bytes: int = 0


@dataclass
class Direction:
    """Bytes from board `src`'s end to board `dst`'s end of their link."""

    src: int
    dst: int
    source: FdLink  #: board src's end: what it writes is read here
    sink: FdLink  #: board dst's end: released frames are written here (its outbox: unwritten)
    baud: int
    channel: LinkChannel = field(default_factory=LinkChannel)
    stats: DirectionStats = field(default_factory=DirectionStats)
    partial: bytearray = field(default_factory=bytearray)
    queue: list[tuple[float, bytes]] = field(default_factory=list)
    wire_free: float = 0.0
    last_due: float = 0.0  # release time of the newest queued frame: none may overtake it

    def byte_time(self) -> float:
        return 10.0 / self.baud if self.baud > 0 else 0.0


class Fabric:
    """All links of a cluster. `ends[(a, b)]` is the port at board a's end of its link to b.

    Without `ports`, each end is a new pty (its slave path is what board a opens) and
    the line rate is emulated. With `ports`, `ports[(a, b)]` is the rig's serial port
    wired to board a's UART for peer b (any `serial_for_url` URL with a descriptor).
    """

    def __init__(
        self,
        nodes: int,
        baud: int,
        seed: int = 0,
        t0: float | None = None,
        ports: Mapping[tuple[int, int], str] | None = None,
        port_baud: Mapping[tuple[int, int], int] | None = None,
        forward_from_s: float | None = None,
        tick_s: float = 0.0,
    ) -> None:
        self.nodes = nodes
        self.baud = baud
        self.rng = random.Random(seed)
        self.t0 = time.monotonic() if t0 is None else t0
        #: monotonic time of tick 0 (None: not known yet, so no tick's faults are active).
        #: A given t0 is tick 0 (the serial rig); a pty cluster tells it on stdin at start.
        self.tick0: float | None = t0
        #: bytes read before this time (relative to t0) are the boards' previous life: dropped
        self.forward_from_s = forward_from_s
        #: the cluster's period: link-fault windows are in ticks, counted from t0
        self.tick_s = tick_s
        self.ends: dict[tuple[int, int], str] = {}
        self._links: dict[tuple[int, int], FdLink] = {}
        self.directions: list[Direction] = []
        if ports is None:
            self._open_ptys()
            wire_baud = baud  # ptys ignore the line rate: emulate it
        else:
            self._open_ports(ports, port_baud or {})
            wire_baud = 0  # real UARTs: the wire keeps its own time
        for a in range(nodes):
            for b in range(nodes):
                if a != b:
                    # what a writes on its end (a,b) comes out at b's end (b,a)
                    self.directions.append(
                        Direction(a, b, self._links[(a, b)], self._links[(b, a)], wire_baud)
                    )
        self._stop = False
        self.kworkers: KworkerBoost | None = None

    def _open_ptys(self) -> None:
        for a in range(self.nodes):
            for b in range(self.nodes):
                if a == b:
                    continue
                self._links[(a, b)], self.ends[(a, b)] = open_pty(QUEUE_BYTES_MAX)

    def _open_ports(
        self, ports: Mapping[tuple[int, int], str], port_baud: Mapping[tuple[int, int], int]
    ) -> None:
        for a in range(self.nodes):
            for b in range(self.nodes):
                if a == b:
                    continue
                url = ports.get((a, b))
                if url is None:
                    self.close()
                    raise FabricError(f"no rig port for board {a}'s end of link {a}-{b}")
                try:
                    port = open_port(url, port_baud.get((a, b), self.baud), write_timeout_s=0)
                except PortError as e:
                    self.close()
                    raise FabricError(f"link {a}-{b}, board {a}'s side: {e}") from None
                link = nonblocking_port_link(port, QUEUE_BYTES_MAX)
                if not isinstance(link, FdLink):
                    link.close()
                    self.close()
                    raise FabricError(f"link {a}-{b}: {url} has no file descriptor")
                self._links[(a, b)] = link
                self.ends[(a, b)] = url

    def direction(self, src: int, dst: int) -> Direction:
        for d in self.directions:
            if d.src == src and d.dst == dst:
                return d
        raise KeyError((src, dst))

    def add_fault(self, fault: LinkFault) -> None:
        """Put `fault` on every direction its link selector covers."""
        for d in self.directions:
            if fault.link.carries(d.src, d.dst):
                d.channel.faults.append(fault)

    def tick(self) -> int:
        """The tick the cluster is in now (-1: before tick 0, or tick 0 not known yet)."""
        if self.tick0 is None:
            return -1
        since = time.monotonic() - self.tick0
        if self.tick_s <= 0:
            return 0 if since >= 0 else -1
        return math.floor(since / self.tick_s)

    def _read_control(self, fd: int) -> bool:
        """A line `{"tick0": MONOTONIC}` from the cluster; False once there is no more to read."""
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        for line in data.splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self.tick0 = float(json.loads(line)["tick0"])
        return bool(data) and self.tick0 is None

    # -- forwarding ----------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def _ingest(self, d: Direction, data: bytes) -> None:
        if self.forward_from_s is not None and self.now() < self.forward_from_s:
            d.stats.stale_bytes += len(data)
            return
        d.stats.bytes += len(data)
        d.partial += data
        while True:
            idx = d.partial.find(b"\x00")
            if idx < 0:
                if len(d.partial) > 8192:  # no delimiter at all: forward as is
                    self._frame(d, bytes(d.partial))
                    d.partial.clear()
                return
            frame = bytes(d.partial[: idx + 1])
            del d.partial[: idx + 1]
            self._frame(d, frame)

    def _frame(self, d: Direction, data: bytes) -> None:
        t = self.now()
        transit = d.channel.transmit(data, self.tick(), self.rng)
        if transit.data is None:
            return
        frame, delay = transit.data, transit.delay_s
        start = max(d.wire_free, t)
        d.wire_free = start + len(frame) * d.byte_time()
        if sum(len(q) for _, q in d.queue) > QUEUE_BYTES_MAX:
            d.stats.overflow_bytes += len(frame)
            return
        # In order, as on a wire: a frame waits for the (more delayed) one ahead of it.
        due = max(d.wire_free + delay, d.last_due)
        d.last_due = due
        d.queue.append((due, frame))

    def _release(self) -> float | None:
        """Write what is due; return seconds until the next release (None = nothing queued)."""
        t = self.now()
        soonest: float | None = None
        for d in self.directions:
            if d.queue:
                keep = []
                for due, data in d.queue:
                    if due <= t:
                        self._deliver(d, data)
                    else:
                        keep.append((due, data))
                        soonest = due if soonest is None else min(soonest, due)
                d.queue = keep
            if d.sink.pending:
                try:
                    d.sink.flush()
                except LinkClosed as e:
                    d.stats.overflow_bytes += e.lost
                if d.sink.pending:
                    soonest = t + 0.001 if soonest is None else min(soonest, t + 0.001)
        return None if soonest is None else max(0.0, soonest - t)

    def _deliver(self, d: Direction, frame: bytes) -> None:
        """Hand a due frame to board dst's end; one that does not fit is refused and counted.

        The backlog ahead of it is kept (it used to be cleared whole past the limit).
        """
        try:
            d.sink.write(frame)
        except (LinkFull, LinkClosed) as e:
            d.stats.overflow_bytes += e.lost

    def serve(self, duration_s: float | None = None, control_fd: int | None = None) -> None:
        """Forward until stop() (or SIGTERM in the process form), or for `duration_s`.

        `control_fd` (the process form's stdin) carries the tick-0 line.
        """
        # select(2): microsecond timeouts (epoll rounds up to whole milliseconds)
        sel = selectors.SelectSelector()
        for d in self.directions:
            fd = d.source.fileno()
            if fd is not None:  # None only once the fabric is closed
                sel.register(fd, selectors.EVENT_READ, d)
        if control_fd is not None:
            sel.register(control_fd, selectors.EVENT_READ, None)
        end = None if duration_s is None else self.now() + duration_s
        refresh_at = 0.0
        while not self._stop and (end is None or self.now() < end):
            if self.kworkers is not None and self.now() >= refresh_at:
                self.kworkers.refresh()  # new workers appear on demand: raise them too
                refresh_at = self.now() + KWORKER_REFRESH_S
            wait = self._release()
            timeout = 0.05 if wait is None else min(wait, 0.05)
            for key, _ in sel.select(timeout):
                d = key.data
                if d is None:
                    if not self._read_control(key.fd):
                        sel.unregister(key.fd)  # told once (or EOF): must not spin the loop
                    continue
                try:
                    data = d.source.read()
                except LinkClosed:
                    continue  # EIO while the board end is closed (board restarting)
                if data:
                    self._ingest(d, data)
        sel.close()

    def stop(self) -> None:
        self._stop = True

    def stats(self) -> dict[str, Any]:
        return {
            f"{d.src}>{d.dst}": {**asdict(d.stats), **asdict(d.channel.stats)}
            for d in self.directions
        }

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links = {}


def _pair(key: str) -> tuple[int, int]:
    a, b = key.split("-")
    return int(a), int(b)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """SIGTERM `proc` (it flushes and writes its counters), SIGKILL if it hangs; always reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tell_tick0(proc: subprocess.Popen[bytes], tick0: float) -> None:
    """Tell a fabric process the monotonic time of tick 0 (its link-fault windows count from it)."""
    if proc.stdin is None:
        return
    with contextlib.suppress(OSError):
        proc.stdin.write(json.dumps({"tick0": tick0}).encode() + b"\n")
        proc.stdin.flush()


def start_process(
    spec: dict[str, Any], out: Path, timeout_s: float = 10.0
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the fabric as its own process; return it and its map "a-b" -> board a's end.

    Writes out/fabric-spec.json; the process writes out/fabric-ends.json when it is
    forwarding and out/fabric.json (counters) when it stops.
    """
    ends_file = out / "fabric-ends.json"
    ends_file.unlink(missing_ok=True)
    spec = {**spec, "ends_out": str(ends_file), "stats_out": str(out / "fabric.json")}
    spec_path = out / "fabric-spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    err_path = out / "fabric.stderr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.fabric", str(spec_path)],
        stdin=subprocess.PIPE,
        stderr=err_path.open("wb"),
    )
    deadline = time.monotonic() + timeout_s
    while not ends_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            lines = err_path.read_text(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"see {err_path}"
            raise FabricError(f"the link fabric did not start: {why}")
        time.sleep(0.01)
    ends: dict[str, str] = json.loads(ends_file.read_text())
    return proc, ends


def main(argv: list[str] | None = None) -> None:
    """Process form: read a JSON spec, write the tty map, forward until SIGTERM, write stats."""
    ap = argparse.ArgumentParser(prog="python -m hil.fabric")
    ap.add_argument(
        "spec",
        help="JSON: nodes, baud, seed, t0, tick_s, faults, ends_out, stats_out[, ports, port_baud]",
    )
    args = ap.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    ports = spec.get("ports")
    try:
        fabric = Fabric(
            int(spec["nodes"]),
            int(spec.get("baud", 0)),
            int(spec.get("seed", 0)),
            spec.get("t0"),
            ports=None if ports is None else {_pair(k): str(v) for k, v in ports.items()},
            port_baud={_pair(k): int(v) for k, v in spec.get("port_baud", {}).items()},
            forward_from_s=spec.get("forward_from_s"),
            tick_s=float(spec.get("tick_s", 0.0)),
        )
    except FabricError as e:
        print(f"fabric: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        for table in spec.get("faults", []):
            fault = fault_from_table(table, fabric.nodes)
            if not is_link(fault):
                raise FaultSpecError(f"{fault.describe()} is not a link fault")
            fabric.add_fault(fault)
    except FaultSpecError as e:
        fabric.close()
        print(f"fabric: bad fault {e}", file=sys.stderr)
        raise SystemExit(2) from None

    def _stop(signum: int, frame: object) -> None:
        fabric.stop()

    # The fabric stands for copper: it must not queue behind the boards' CPU work, so it
    # runs above their real-time priority when the machine allows it.
    granted = apply_sched(Sched.from_spec(spec.get("sched"), FABRIC_SCHED))
    kworker_priority = spec.get("kworker_priority")
    if kworker_priority is not None:
        fabric.kworkers = KworkerBoost(int(kworker_priority))
        fabric.kworkers.refresh()
        granted += f" kworkers={len(fabric.kworkers.raised)}"
    print(f"fabric: scheduling {granted}", file=sys.stderr)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ends = {f"{a}-{b}": path for (a, b), path in fabric.ends.items()}
    tmp = Path(spec["ends_out"] + ".tmp")
    tmp.write_text(json.dumps(ends))
    tmp.rename(spec["ends_out"])  # atomic: the parent waits for this file
    try:
        fabric.serve(control_fd=sys.stdin.fileno() if fabric.tick0 is None else None)
    finally:
        if fabric.kworkers is not None:
            fabric.kworkers.restore()
        Path(spec["stats_out"]).write_text(json.dumps(fabric.stats(), indent=1))
        fabric.close()


if __name__ == "__main__":
    main()
