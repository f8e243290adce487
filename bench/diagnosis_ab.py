"""Diagnosis: its CPU cost in the simulator (off vs on, interleaved) and a fault-free soak.

`python -m bench.diagnosis_ab` runs SM(1) N=4 fault-free for `--ticks` per run,
off and on alternately `--reps` times, and prints the medians of CPU time per
cluster-tick and their ratio (ratios are what a shared machine can measure).
`--soak K` instead runs K fault-free ticks with diagnosis on, streamed, and
prints the checker's verdict: evidence, isolations and false isolations must
all be none. Numbers in docs/performance.md ("Diagnosis").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from hil.sim import SimConfig, Simulator
from voter.core.diagnosis import DiagnosisConfig
from voter.core.protocol import Algorithm


def _run(ticks: int, seed: int, diagnosis: DiagnosisConfig | None) -> tuple[float, Simulator]:
    cfg = SimConfig(
        nodes=4, algorithm=Algorithm.SM, m=1, ticks=ticks, seed=seed, diagnosis=diagnosis
    )
    sim = Simulator(cfg, keep_logs=False)
    started = time.process_time()
    sim.run()
    return time.process_time() - started, sim


def ab(ticks: int, reps: int) -> dict[str, object]:
    us: dict[str, list[float]] = {"off": [], "on": []}
    for rep in range(reps):
        for name, diag in (("off", None), ("on", DiagnosisConfig())):
            cpu_s, _ = _run(ticks, 30 + rep, diag)
            us[name].append(cpu_s / ticks * 1e6)
    off, on = statistics.median(us["off"]), statistics.median(us["on"])
    return {"us_per_tick": us, "median_off": off, "median_on": on, "ratio": on / off}


def soak(ticks: int) -> dict[str, object]:
    cfg = SimConfig(
        nodes=4, algorithm=Algorithm.SM, m=1, ticks=ticks, seed=21, diagnosis=DiagnosisConfig()
    )
    started = time.process_time()
    r = Simulator(cfg, keep_logs=False).run()
    assert r.check is not None
    return {
        "ticks": ticks,
        "cpu_s": round(time.process_time() - started, 1),
        "holds": r.check.holds,
        "isolation": r.check.isolation,
        "availability": r.check.availability(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--soak", type=int, default=0, metavar="K")
    args = p.parse_args()
    print(json.dumps(soak(args.soak) if args.soak else ab(args.ticks, args.reps), indent=1))


if __name__ == "__main__":
    main()
