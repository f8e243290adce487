"""Simulator cluster-ticks/s for OM(1) and SM(1) N=4, this tree against a baseline tree.

Each run is a fresh interpreter on one tree (PYTHONPATH), timing `simulate` alone
(imports and key generation excluded). Runs of the two trees alternate, so both
see the same machine load, and the ratio is of medians from the same session:
on a shared 2-vCPU machine only such a ratio means anything (docs/performance.md).

    .venv/bin/python -m bench.sim_rate --baseline /tmp/main-checkout [--runs 5] [--ticks 1000]
        [--tree step1=/tmp/step1-checkout ...]   # more trees, each also against the baseline
        [--tree mypyc=build/mypyc]               # the compiled core (`make mypyc`)
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

#: (name, algorithm, faults, fast lane): fault-free, a value-level traitor (its links
#: stay fast), and every frame through the bytes (COBS, CRC, splitter), as faulty links go
CASES: tuple[tuple[str, str, list[str], bool], ...] = (
    ("om1_n4", "om", [], True),
    ("om1_n4_traitor", "om", ["traitor:3:equivocate"], True),
    ("sm1_n4", "sm", [], True),
    ("sm1_n4_traitor", "sm", ["traitor:3:equivocate"], True),
    ("om1_n4_bytes", "om", [], False),
    ("sm1_n4_bytes", "sm", [], False),
)

_ONE_RUN = """
import json, sys, time
from hil.sim import SimConfig, simulate
from voter.core.protocol import Algorithm
from voter.faultmodel import parse_fault
alg, ticks, faults = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
cfg = SimConfig(nodes=4, algorithm=Algorithm(alg), m=1, ticks=ticks, seed=1, tick_hz=20.0,
                faults=[parse_fault(f, 4) for f in faults], fast_lane=sys.argv[4] == "1")
t0, c0 = time.perf_counter(), time.process_time()
r = simulate(cfg)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"rate": ticks / wall, "cpu_rate": ticks / cpu, "hash": r.history_hash}))
"""


def one_run(
    tree: Path, alg: str, ticks: int, faults: list[str], fast: bool
) -> tuple[float, float, str]:
    """Cluster-ticks per wall and per CPU second of one simulation in a fresh interpreter
    on `tree`, and its history hash."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _ONE_RUN, alg, str(ticks), json.dumps(faults), str(int(fast))],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return float(got["rate"]), float(got["cpu_rate"]), str(got["hash"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="a checkout of the tree to compare with")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--tree", action="append", default=[], help="LABEL=PATH, another tree")
    ap.add_argument("--case", action="append", help="run only these cases (default: all)")
    args = ap.parse_args(argv)
    trees = {"this": ROOT} | {t.split("=")[0]: Path(t.split("=", 1)[1]) for t in args.tree}
    if args.baseline:
        trees["baseline"] = args.baseline
    results: dict[str, dict[str, float | str]] = {}
    for name, alg, faults, fast in CASES:
        if args.case and name not in args.case:
            continue
        rates: dict[str, list[float]] = {t: [] for t in trees}
        cpu_rates: dict[str, list[float]] = {t: [] for t in trees}
        hashes: dict[str, set[str]] = {t: set() for t in trees}
        for _ in range(args.runs):
            for label, tree in trees.items():  # interleaved: A B A B ...
                rate, cpu_rate, digest = one_run(tree, alg, args.ticks, faults, fast)
                rates[label].append(rate)
                cpu_rates[label].append(cpu_rate)
                hashes[label].add(digest)
        row: dict[str, float | str] = {}
        # Wall-clock rates, then per CPU second (less sensitive to other jobs on the machine).
        for kind, runs in (("", rates), ("cpu ", cpu_rates)):
            medians = {t: statistics.median(r) for t, r in runs.items()}
            row |= {f"{kind}{t}": round(v, 1) for t, v in medians.items()}
            for label in trees:
                if label != "baseline" and "baseline" in trees:
                    ratio = medians[label] / medians["baseline"]
                    row[f"{kind}{label}/baseline"] = round(ratio, 3)
        if "baseline" in trees:
            same = all(h == hashes["baseline"] for h in hashes.values())
            row["same_hash"] = "yes" if same else "NO"
        results[name] = row
        print(name, json.dumps(row), flush=True)
    print(json.dumps({"ticks": args.ticks, "runs": args.runs, "cases": results}))


if __name__ == "__main__":
    main()
