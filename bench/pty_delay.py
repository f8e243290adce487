"""One-way frame delay through the pty link fabric, under a board-like load.

`python -m bench.pty_delay` starts the real link fabric (hil.fabric, its own
process, baud emulated) and N=4 "board" processes that open their pty ends with
pyserial exactly as voterd does. Every board runs a 50 Hz tick with two round slots
(OM(1): 0.8 T / 2 each); at the start of each round it does a CPU burst of pure-Python
work (composing the round) and then writes a ~40-byte frame to each of its 3 peers.
The frame carries its write time (CLOCK_MONOTONIC, shared by all processes on one
machine); the receiver takes its read time on the same clock.

A board polls its ports between ~0.1 ms chunks of its burst (select with zero
timeout), so a frame's read time says when it became readable to within a chunk,
while the CPU demand (and the contention the kernel's pty work sees) is that of a
board's tick. Variants (scheduling of the boards, the fabric and the kernel's pty
workers) run interleaved, several trials each; the table gives the pooled
percentiles and the median over trials of each trial's p99.

This measures the transport; it asserts nothing (speed is for `make bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.fabric import (
    KWORKER_PRIORITY,
    Sched,
    apply_sched,
    start_process,
    stop_process,
    unbound_kworkers,
)
from voter.bytelink import open_port

FRAME_BYTES = 41  # 40 bytes of text and the 0x00 delimiter the fabric splits on
ROUNDS = 2
CHUNK_S = 0.0001  # a burst polls its ports between chunks of about this much work
#: bursts: CPU per round at its start (compose), as a fraction of the tick's burst
ROUND_SHARE = (0.4, 0.6)
BOARD_START_MARGIN_S = 3.0  # as hil.cluster: a late board would flush early frames
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Variant:
    """One way of scheduling the boards, the fabric and the kernel's pty workers."""

    name: str
    board: Sched
    fabric: Sched
    kworker_priority: int | None = None  # raise the unbound kworkers (root), None = leave


#: the variants `--variants` may name: "after" is what firmware-sim starts (voterd at
#: SCHED_FIFO 20, the fabric at 30 raising the kernel's pty workers to 25), "before" the same
#: without the kworker boost (what it started until 2026-12-01)
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("before", Sched("fifo", 20), Sched("fifo", 30)),
        Variant("after", Sched("fifo", 20), Sched("fifo", 30), kworker_priority=KWORKER_PRIORITY),
        Variant("boards-other", Sched("other", 0), Sched("fifo", 30)),
        Variant("fabric-cpu0", Sched("fifo", 20), Sched("fifo", 30, (0,))),
        Variant("boards-cpu1-fabric-cpu0", Sched("fifo", 20, (1,)), Sched("fifo", 30, (0,))),
        Variant("kworkers-fifo25", Sched("fifo", 20), Sched("fifo", 30), kworker_priority=25),
        Variant("kworkers-fifo35", Sched("fifo", 20), Sched("fifo", 30), kworker_priority=35),
        Variant(
            "kworkers-fifo25-fabric-cpu0",
            Sched("fifo", 20),
            Sched("fifo", 30, (0,)),
            kworker_priority=25,
        ),
        # without root nothing gets SCHED_FIFO; what a user can still choose:
        Variant("nonroot", Sched("other", 0), Sched("other", 0)),
        Variant("nonroot-boards-nice5", Sched("other", 0, nice=5), Sched("other", 0)),
        Variant("nonroot-boards-idle", Sched("idle", 0), Sched("other", 0)),
    )
}
DEFAULT_VARIANTS = ("before", "after")


# -- one board (a child process) ---------------------------------------------------------
def _calibrate_chunk(target_s: float) -> int:
    """Iterations of the work loop that take about `target_s` on this machine (min of 5)."""
    n = 2000
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        _work(n)
        best = min(best, time.perf_counter() - t0)
    return max(1, int(n * target_s / best))


def _work(n: int) -> int:
    x = 1
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


def _frame(src: int, tick: int, rnd: int) -> bytes:
    text = f"F{src} {tick} {rnd} {time.monotonic_ns()} ".encode()
    return text.ljust(FRAME_BYTES - 1, b".") + b"\x00"


def board_main(spec: dict[str, Any]) -> None:
    """A board: tick at `tick_hz`, burst and send at each round start, record arrivals."""
    node = int(spec["node"])
    links = _BoardLinks(spec)
    rng = random.Random(int(spec["seed"]) * 1000 + node)
    apply_sched(Sched.from_spec(spec["sched"], Sched("other", 0)))
    period = 1.0 / float(spec["tick_hz"])
    slot = 0.8 * period / ROUNDS
    burst_s = float(spec["burst_ms"]) / 1000.0
    start = float(spec["start_at"])
    ticks = int(spec["ticks"])
    try:
        for k in range(ticks):
            t0 = start + k * period
            for r in range(ROUNDS):
                links.wait_until(t0 + r * slot)
                links.burst(burst_s * ROUND_SHARE[r] * rng.uniform(0.5, 1.5))
                links.send(node, k, r)
        links.wait_until(start + ticks * period + 0.05)  # the last frames in flight
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        Path(spec["out"]).write_text(json.dumps({"sent": links.sent, "records": links.records}))
        for port in links.ports.values():
            port.close()


class _BoardLinks:
    """A bench board's pty ends: frames read as they become readable, each recorded with its
    one-way delay, also between the chunks of a CPU burst."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.ports = {
            int(peer): open_port(url, int(spec["baud"]), 0.05) for peer, url in spec["ends"].items()
        }
        self.fds = {int(p.fileno()): peer for peer, p in self.ports.items()}
        self.partial = {peer: bytearray() for peer in self.ports}
        self.chunk_iters = _calibrate_chunk(CHUNK_S)
        self.records: list[tuple[int, int, int, int]] = []  # src, tick, round, delay_ns
        self.sent = 0

    def poll(self, timeout_s: float) -> None:
        ready, _, _ = select.select(list(self.fds), [], [], max(0.0, timeout_s))
        if not ready:
            return
        now = time.monotonic_ns()
        for fd in ready:
            peer = self.fds[fd]
            try:
                data = os.read(fd, 65536)
            except OSError:
                continue
            buf = self.partial[peer]
            buf += data
            while (idx := buf.find(b"\x00")) >= 0:
                fields = bytes(buf[:idx]).split()
                del buf[: idx + 1]
                with contextlib.suppress(ValueError, IndexError):
                    src, tick, rnd, t_ns = (int(fields[0][1:]), *map(int, fields[1:4]))
                    self.records.append((src, tick, rnd, now - t_ns))

    def wait_until(self, t: float) -> None:
        while (left := t - time.monotonic()) > 0:
            self.poll(left)

    def burst(self, seconds: float) -> None:
        chunks = max(1, round(seconds / CHUNK_S))
        for _ in range(chunks):
            _work(self.chunk_iters)
            self.poll(0.0)

    def send(self, node: int, tick: int, rnd: int) -> None:
        """The round's frame to every peer, each stamped with its own write time."""
        for port in self.ports.values():
            with contextlib.suppress(OSError):
                port.write(_frame(node, tick, rnd))
                self.sent += 1


# -- the machine's own stalls ---------------------------------------------------------
STALL_MS = 5.0  # a FIFO-99 sleeper woken this much late: the whole machine stalled


def monitor_main(spec: dict[str, Any]) -> None:
    """Sleep 1 ms at a time at SCHED_FIFO 99 until `end_at`; record wake-ups late > STALL_MS.

    Nothing in the pty path can delay this process: a gap here is the machine (the
    hypervisor, a non-preemptible kernel section, the kernel's fair server), and it
    separates such stalls from the delays the table measures.
    """
    granted = apply_sched(Sched("fifo", 99))
    gaps: list[float] = []
    end_at = float(spec["end_at"])
    try:
        while (now := time.monotonic()) < end_at:
            due = now + 0.001
            time.sleep(0.001)
            late_ms = (time.monotonic() - due) * 1000.0
            if late_ms > STALL_MS:
                gaps.append(round(late_ms, 2))
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        Path(spec["out"]).write_text(json.dumps({"granted": granted, "gaps_ms": gaps}))


def raised_kworkers() -> int:
    """Unbound kworkers already at a real-time policy (another fabric is boosting them)."""
    count = 0
    for pid in unbound_kworkers():
        with contextlib.suppress(OSError):
            count += os.sched_getscheduler(pid) != os.SCHED_OTHER
    return count


# -- one trial: fabric + 4 boards ------------------------------------------------------
def trial(v: Variant, seconds: float, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run fabric + boards under `v` for `seconds`; return every delay (µs) and counts."""
    out = Path(tempfile.mkdtemp(prefix=f"{v.name}-", dir=work))
    spec: dict[str, Any] = {
        "nodes": args.nodes,
        "baud": args.baud,
        "seed": args.seed,
        "faults": [],
        "sched": v.fabric.as_spec(),
        "kworker_priority": v.kworker_priority,
    }
    ticks = max(1, round(seconds * args.tick_hz))
    foreign = raised_kworkers() if v.kworker_priority is None else 0
    fabric, ends = start_process(spec, out)
    boards: list[subprocess.Popen[bytes]] = []
    start_at = time.monotonic() + BOARD_START_MARGIN_S
    mspec = {"end_at": start_at + ticks / args.tick_hz, "out": str(out / "monitor.json")}
    cmd = [sys.executable, "-m", "bench.pty_delay", "--monitor", json.dumps(mspec)]
    monitor = subprocess.Popen(cmd, stderr=(out / "monitor.stderr").open("wb"))
    try:
        _start_boards(boards, v, args, ends, start_at, ticks, out)
        for b in boards:
            b.wait(timeout=seconds + 60)
        monitor.wait(timeout=seconds + 60)
    finally:
        for b in [*boards, monitor]:
            stop_process(b)
        stop_process(fabric)
    sent, delays = _board_results(out, args.nodes)
    granted = (out / "fabric.stderr").read_text(errors="replace").strip().splitlines()
    mon_path = out / "monitor.json"
    gaps = json.loads(mon_path.read_text())["gaps_ms"] if mon_path.exists() else []
    return {
        "variant": v.name,
        "sent": sent,
        "received": len(delays),
        "delays_us": delays,
        "fabric": granted[-1] if granted else "",
        "machine_stalls_ms": gaps,
        # kworkers someone else had raised when a no-boost trial began: it is not "before"
        "foreign_raised_kworkers": foreign,
    }


def _start_boards(
    boards: list[subprocess.Popen[bytes]],
    v: Variant,
    args: argparse.Namespace,
    ends: dict[str, str],
    start_at: float,
    ticks: int,
    out: Path,
) -> None:
    """One board process per node, appended to `boards` as each starts (so a failure part
    way still stops the ones already running)."""
    for i in range(args.nodes):
        bspec = {
            "node": i,
            "ends": {j: ends[f"{i}-{j}"] for j in range(args.nodes) if j != i},
            "baud": args.baud,
            "seed": args.seed,
            "sched": v.board.as_spec(),
            "tick_hz": args.tick_hz,
            "burst_ms": args.burst_ms,
            "start_at": start_at,
            "ticks": ticks,
            "out": str(out / f"board{i}.json"),
        }
        cmd = [sys.executable, "-m", "bench.pty_delay", "--board", json.dumps(bspec)]
        boards.append(subprocess.Popen(cmd, stderr=(out / f"board{i}.stderr").open("wb")))


def _board_results(out: Path, nodes: int) -> tuple[int, list[float]]:
    """Frames the boards sent, and every delay they recorded (µs)."""
    delays: list[float] = []
    sent = 0
    for i in range(nodes):
        path = out / f"board{i}.json"
        if not path.exists():
            raise SystemExit(f"board {i} wrote no result (see {out / f'board{i}.stderr'})")
        res = json.loads(path.read_text())
        sent += res["sent"]
        delays += [rec[3] / 1000.0 for rec in res["records"]]
    return sent, delays


# -- statistics and the table ----------------------------------------------------------
def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99.9 is a delay that happened)."""
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(len(s) * q / 100.0 + 0.5) - 1))
    return s[k]


def summarize(trials: list[dict[str, Any]], wire_us: float) -> dict[str, Any]:
    pooled = [d for t in trials for d in t["delays_us"]]
    row: dict[str, Any] = {
        "trials": len(trials),
        "frames": len(pooled),
        "sent": sum(t["sent"] for t in trials),
        "lost": sum(t["sent"] - t["received"] for t in trials),
        "wire_us": wire_us,
    }
    if not pooled:
        return row
    for q in PERCENTILES:
        row[f"p{q:g}_ms"] = percentile(pooled, q) / 1000.0
    row["max_ms"] = max(pooled) / 1000.0
    row["beyond_wire_p50_us"] = percentile(pooled, 50.0) - wire_us
    row["trial_p99_ms"] = [percentile(t["delays_us"], 99.0) / 1000.0 for t in trials]
    row["median_trial_p99_ms"] = statistics.median(row["trial_p99_ms"])
    row["trial_p50_ms"] = [percentile(t["delays_us"], 50.0) / 1000.0 for t in trials]
    row["median_trial_p50_ms"] = statistics.median(row["trial_p50_ms"])
    for limit_ms in (2.0, 4.0, 8.0):
        row[f"over_{limit_ms:g}ms"] = sum(1 for d in pooled if d > limit_ms * 1000.0)
    stalls = [g for t in trials for g in t.get("machine_stalls_ms", [])]
    row["machine_stalls"] = len(stalls)
    row["machine_stall_max_ms"] = max(stalls, default=0.0)
    row["contaminated_trials"] = sum(1 for t in trials if t.get("foreign_raised_kworkers"))
    return row


def table(rows: dict[str, dict[str, Any]], reference: str | None) -> str:
    head = (
        "| variant | frames (lost) | p50 | p90 | p99 | p99.9 | max | > 4 ms | > 8 ms "
        "| median trial p99 | vs " + (reference or "-") + " | machine stalls (max ms) |"
    )
    lines = [head, "|" + "---|" * 12]
    ref = rows.get(reference or "", {}).get("median_trial_p99_ms")
    for name, r in rows.items():
        if "p50_ms" not in r:
            lines.append(f"| {name} | 0 ({r['lost']}) |" + " — |" * 10)
            continue
        ratio = "—" if not ref else f"{r['median_trial_p99_ms'] / ref:.2f}x"
        lines.append(
            f"| {name} | {r['frames']} ({r['lost']}) | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['p99.9_ms']:.2f} | {r['max_ms']:.2f} "
            f"| {r['over_4ms']} | {r['over_8ms']} | {r['median_trial_p99_ms']:.2f} | {ratio} "
            f"| {r['machine_stalls']} ({r['machine_stall_max_ms']:.0f}) |"
        )
    return "\n".join(lines)


def _progress(done: int, total: int, t_start: float, frames: int, note: str) -> None:
    elapsed = time.monotonic() - t_start
    eta = elapsed / done * (total - done) if done else 0.0
    rate = frames / elapsed if elapsed > 0 else 0.0
    print(
        f"[{done}/{total}] {note}; {rate:,.0f} frames/s, {elapsed:.0f} s elapsed, ETA {eta:.0f} s",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.board:
        board_main(json.loads(args.board))
        return 0
    if args.monitor:
        monitor_main(json.loads(args.monitor))
        return 0
    if args.quick:
        args.seconds, args.repeats = 6.0, 1
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(
            f"pty_delay: unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)})",
            file=sys.stderr,
        )
        return 2
    wire_us = FRAME_BYTES * 10 / args.baud * 1e6 if args.baud else 0.0
    per = _trials(names, args)
    rows = {n: summarize(per[n], wire_us) for n in names}
    print(
        f"\nOne-way delay, write to read, pty -> fabric -> pty; {args.nodes} boards at "
        f"{args.tick_hz:g} Hz, {args.burst_ms:g} ms CPU per tick, {args.baud} baud "
        f"(wire time of a {FRAME_BYTES}-byte frame {wire_us:.0f} µs); "
        f"{args.repeats} x {args.seconds:g} s per variant, interleaved; ms.\n"
    )
    print(table(rows, names[0]))
    for name, r in rows.items():
        if r.get("contaminated_trials"):
            print(
                f"\nwarning: {name}: in {r['contaminated_trials']} trial(s) another process had "
                "already raised the kernel's pty workers (a fabric running elsewhere): "
                "that variant did not run as named; measure again on an idle machine."
            )
    if args.json:
        doc = {
            "host": os.uname().nodename,
            "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rows": rows,
        }
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench.pty_delay", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="per trial (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="trials per variant, interleaved")
    ap.add_argument("--quick", action="store_true", help="1 trial of 6 s per variant")
    ap.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma list of: {', '.join(VARIANTS)} (the first is the reference)",
    )
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--tick-hz", type=float, default=50.0)
    ap.add_argument("--burst-ms", type=float, default=3.0, help="CPU per board per tick")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the summary (and per-trial figures) here")
    ap.add_argument("--board", help=argparse.SUPPRESS)  # internal: run one board
    ap.add_argument("--monitor", help=argparse.SUPPRESS)  # internal: the stall monitor
    return ap


def _trials(names: list[str], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """`args.repeats` trials of each variant, interleaved; a progress line after each."""
    per: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    total = len(names) * args.repeats
    t_start = time.monotonic()
    frames = 0
    with tempfile.TemporaryDirectory(prefix="pty-delay-") as tmp:
        for rep in range(args.repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate: no fixed slot
            for name in order:
                t = trial(VARIANTS[name], args.seconds, args, Path(tmp))
                per[name].append(t)
                frames += t["received"]
                p99 = percentile(t["delays_us"], 99.0) / 1000.0 if t["delays_us"] else float("nan")
                note = f"{name}: p99 {p99:.2f} ms, {t['fabric']}"
                _progress(sum(map(len, per.values())), total, t_start, frames, note)
    return per


if __name__ == "__main__":
    raise SystemExit(main())
