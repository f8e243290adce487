"""Campaign throughput on the Dask engine: 1 worker against 2, and the local engine beside them.

One campaign of `--scenarios` OM(1) N=4 scenarios (a traitor each, seeds 1..S,
`--ticks` each) runs in three arms per round, interleaved so each sees the same
machine load: the local engine in this process, then `--engine dask` on a fresh
LocalCluster of 1 and of 2 worker processes. A rate is the campaign's cluster-ticks
over the wall time from the first submission to the last result (the cluster's
start is timed on its own: a long campaign pays it once), and per CPU second of
the processes that simulated (this one, or the workers: `time.process_time` read
on each); the ratio is of medians from the same session. Every arm must give the
same history hashes.

    .venv/bin/python -m bench.dask_scale [--runs 5] [--ticks 1000] [--scenarios 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from hil.campaign import run_scenario
from hil.dask_run import client, run_scenarios
from hil.scenario import Scenario
from voter.core.protocol import Algorithm
from voter.faultmodel import parse_fault


def campaign(scenarios: int, ticks: int) -> list[Scenario]:
    traitor = parse_fault("traitor:3:equivocate", 4)
    return [
        Scenario(f"om1-n4-liar-s{k}", 4, Algorithm.OM, 1, "safe", (traitor,), ticks, k)
        for k in range(1, scenarios + 1)
    ]


Arm = tuple[float, float, float, list[str | None]]  # start-up s, wall s, CPU s, hashes


def local_arm(scs: list[Scenario], out: Path) -> Arm:
    t0, c0 = time.perf_counter(), time.process_time()
    hashes = [run_scenario(s, "sim", out).history_hash for s in scs]
    return 0.0, time.perf_counter() - t0, time.process_time() - c0, hashes


def dask_arm(scs: list[Scenario], out: Path, workers: int) -> Arm:
    """Wall time on the cluster, and the CPU seconds its worker processes spent."""
    t0 = time.perf_counter()
    with client(None, workers) as c:
        # every worker imports the simulator before the clock starts (a one-off cost)
        c.run(lambda: __import__("hil.sim"))
        started = time.perf_counter() - t0
        cpu0 = sum(c.run(time.process_time).values())
        t1 = time.perf_counter()
        results = run_scenarios(c, scs, "sim", out)
        wall = time.perf_counter() - t1
        cpu = sum(c.run(time.process_time).values()) - cpu0
    return started, wall, cpu, [r.history_hash for r in results]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--scenarios", type=int, default=8)
    args = ap.parse_args(argv)
    scs = campaign(args.scenarios, args.ticks)
    total = args.scenarios * args.ticks
    arms = ("local", "dask-1", "dask-2")
    rates: dict[str, list[float]] = {a: [] for a in arms}
    cpu_rates: dict[str, list[float]] = {a: [] for a in arms}
    starts: dict[str, list[float]] = {a: [] for a in arms}
    hashes: dict[str, set[tuple[str | None, ...]]] = {a: set() for a in arms}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for run in range(args.runs):
            for arm in arms:  # interleaved: local, 1, 2, local, 1, 2, ...
                loads.append(os.getloadavg()[0])
                if arm == "local":
                    start, wall, cpu, got = local_arm(scs, out)
                else:
                    start, wall, cpu, got = dask_arm(scs, out, int(arm.split("-")[1]))
                rates[arm].append(total / wall)
                cpu_rates[arm].append(total / cpu)
                starts[arm].append(start)
                hashes[arm].add(tuple(got))
                print(
                    f"run {run} {arm}: {total / wall:.0f} ticks/s, {total / cpu:.0f} per CPU s "
                    f"(start {start:.1f} s, load {loads[-1]:.1f})",
                    flush=True,
                )
    med = {a: statistics.median(r) for a, r in rates.items()}
    result = {
        "scenarios": args.scenarios,
        "ticks_each": args.ticks,
        "runs": args.runs,
        "cores": os.cpu_count(),
        "loadavg_1min_median": round(statistics.median(loads), 2),
        "ticks_per_s_median": {a: round(v, 1) for a, v in med.items()},
        "ticks_per_s_all": {a: [round(v) for v in r] for a, r in rates.items()},
        "ticks_per_cpu_s_median": {a: round(statistics.median(r), 1) for a, r in cpu_rates.items()},
        "cluster_start_s_median": {a: round(statistics.median(starts[a]), 2) for a in arms[1:]},
        "dask-2/dask-1": round(med["dask-2"] / med["dask-1"], 3),
        "dask-1/local": round(med["dask-1"] / med["local"], 3),
        "same_hashes": len(set().union(*hashes.values())) == 1,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
