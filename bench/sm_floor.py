"""`make bench`'s node-tick CPU against its Ed25519 floor, this tree against others, interleaved.

Each run is a fresh interpreter on one tree (PYTHONPATH) running `bench.run.cpu_case`'s
loop written out here, so every tree is timed the same way: the floor as `make bench`
defines it (the signs and verifies the tick made, each at the median cost through the
libsodium bindings of 4 signs and 4 verifies timed before every tick), the tick on the
wall and the thread's CPU clock. Runs of the
trees alternate, so all see the same machine load; the figures are medians over
runs, and a tree's ratio to the baseline is of medians from the same session.

    .venv/bin/python -m bench.sm_floor --baseline /tmp/main-checkout [--runs 7]
        [--tree mypyc=build/mypyc] [--alg sm --alg om] [--ticks 400]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ONE_RUN = """
import json, statistics, sys, time
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from voter.core.board import Board
from voter.core.frame import FrameSplitter, encode_frame
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm
from voter.simkeys import board_keys
alg, ticks, n = Algorithm(sys.argv[1]), int(sys.argv[2]), 4
CHANNELS = 3
# bench.run.cpu_case's loop and CryptoClock, written out so every tree is timed the same way
pk, sk = crypto_sign_seed_keypair(b"\\x01" * 32)
sign_ns, verify_ns = [], []
def floor_samples(tick):
    for k in range(4):
        msg = (tick * 4 + k).to_bytes(8, "big") * 10
        t0 = time.perf_counter_ns()
        sig = crypto_sign(msg, sk)[:64]
        t1 = time.perf_counter_ns()
        crypto_sign_open(sig + msg, pk)
        t2 = time.perf_counter_ns()
        sign_ns.append(t1 - t0)
        verify_ns.append(t2 - t1)
params = ic_params(n, 1, alg, "bench")
keys = board_keys(n, "bench")
boards = [Board(params, i, CHANNELS, keys[i]) for i in range(n)]
splitters = {(i, j): FrameSplitter(params.cluster) for i in range(n) for j in range(n)}
wall, cpu = [], []
for tick in range(ticks):
    floor_samples(tick)
    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    out = [b.begin_tick(tick, (1000.0 + i + tick * 1e-3, 60.0, 2.0)) for i, b in enumerate(boards)]
    for _ in range(params.rounds):
        for fs in out:
            for f in fs:
                for item in splitters[(f.src, f.dst)].feed(encode_frame(f)):
                    boards[f.dst].on_frame(f.src, item)
        out = [b.next_round() for b in boards]
    for b in boards:
        b.finish_tick()
    cpu.append(time.thread_time_ns() - c0)
    wall.append(time.perf_counter_ns() - t0)
sign_us, verify_us = statistics.median(sign_ns) / 1e3, statistics.median(verify_ns) / 1e3
signs = sum(k.signs for k in keys.values()) / ticks / n
verifies = sum(k.verifies for k in keys.values()) / ticks / n
floor = signs * sign_us + verifies * verify_us
tick_us = statistics.median(wall) / 1e3 / n
tick_cpu_us = statistics.median(cpu) / 1e3 / n
print(json.dumps({"tick_us": tick_us, "tick_cpu_us": tick_cpu_us, "floor_us": floor,
                  "sign_us": sign_us, "verify_us": verify_us, "ratio": tick_us / floor,
                  "ratio_cpu": tick_cpu_us / floor}))
"""


def one_run(tree: Path, alg: str, ticks: int) -> dict[str, float]:
    """One `make bench` CPU case (N=4, m=1) and its floor, in a fresh interpreter on `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _ONE_RUN, alg, str(ticks)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return got


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="a checkout of the tree to compare with")
    ap.add_argument("--tree", action="append", default=[], help="LABEL=PATH, another tree")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--ticks", type=int, default=400, help="ticks per run (make bench: 400)")
    ap.add_argument("--alg", action="append", help="sm and/or om (default: sm)")
    args = ap.parse_args(argv)
    trees = {"this": ROOT} | {t.split("=")[0]: Path(t.split("=", 1)[1]) for t in args.tree}
    if args.baseline:
        trees["baseline"] = args.baseline
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for i in range(args.runs):
        for alg in args.alg or ["sm"]:
            # Alternate the order too, so no tree always runs right after the same one.
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for label, tree in order:
                r = one_run(tree, alg, args.ticks)
                runs.setdefault((alg, label), []).append(r)
                print(f"run {i} {alg} {label}: {json.dumps(r)}", file=sys.stderr, flush=True)
    print(json.dumps(summary(runs, "baseline" if args.baseline else None), indent=1))


def summary(
    runs: dict[tuple[str, str], list[dict[str, float]]], baseline: str | None
) -> dict[str, dict[str, object]]:
    """Medians and ranges per (algorithm, tree); speed-ups against the baseline's median tick."""
    out: dict[str, dict[str, object]] = {}
    for (alg, label), rs in runs.items():
        entry: dict[str, object] = {}
        for key in ("tick_us", "tick_cpu_us", "floor_us", "ratio", "ratio_cpu"):
            xs = [r[key] for r in rs]
            entry[key] = round(statistics.median(xs), 2)
            entry[f"{key}_range"] = f"{min(xs):.2f}-{max(xs):.2f}"
        if baseline is not None and (alg, baseline) in runs:
            base = statistics.median(r["tick_us"] for r in runs[(alg, baseline)])
            mine = statistics.median(r["tick_us"] for r in rs)
            entry["speedup_vs_baseline"] = round(base / mine, 3)
        out[f"{alg}/{label}"] = entry
    return out


if __name__ == "__main__":
    main()
