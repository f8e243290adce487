"""Diagnosis: its CPU cost in the simulator (off vs on, interleaved) and a fault-free soak.

`python -m bench.diagnosis_ab` runs SM(1) N=4 (`--algorithm om`: OM(1) and its p/r
diagnosis) fault-free for `--ticks` per run, off and on alternately `--reps` times,
and prints the medians of CPU time per cluster-tick and their ratio (ratios are
what a shared machine can measure).
`--soak K` instead runs K fault-free ticks with diagnosis on, streamed, and
prints the checker's verdict: evidence, isolations and false isolations must
all be none. `--noise BER[,BER...]` runs OM(1) with bit errors on every link out of
loyal board 3 and prints, per BER, how often its frames were lost at one and at f+1
receivers in a tick, and what the p/r count did (isolations, false isolations).
Numbers in docs/performance.md ("Diagnosis").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from hil.outcome import judge
from hil.scenario import Scenario
from hil.sim import SimConfig, SimRunner, Simulator
from voter.core.diagnosis import DiagnosisConfig
from voter.core.protocol import Algorithm
from voter.faultmodel import LinkBitflip, LinkSelector


def _run(
    ticks: int, seed: int, diagnosis: DiagnosisConfig | None, algorithm: Algorithm
) -> tuple[float, Simulator]:
    cfg = SimConfig(nodes=4, algorithm=algorithm, m=1, ticks=ticks, seed=seed, diagnosis=diagnosis)
    sim = Simulator(cfg, keep_logs=False)
    started = time.process_time()
    sim.run()
    return time.process_time() - started, sim


def ab(ticks: int, reps: int, algorithm: Algorithm) -> dict[str, object]:
    us: dict[str, list[float]] = {"off": [], "on": []}
    for rep in range(reps):
        for name, diag in (("off", None), ("on", DiagnosisConfig())):
            cpu_s, _ = _run(ticks, 30 + rep, diag, algorithm)
            us[name].append(cpu_s / ticks * 1e6)
    off, on = statistics.median(us["off"]), statistics.median(us["on"])
    return {"us_per_tick": us, "median_off": off, "median_on": on, "ratio": on / off}


def soak(ticks: int, algorithm: Algorithm) -> dict[str, object]:
    cfg = SimConfig(
        nodes=4, algorithm=algorithm, m=1, ticks=ticks, seed=21, diagnosis=DiagnosisConfig()
    )
    started = time.process_time()
    r = Simulator(cfg, keep_logs=False).run()
    assert r.check is not None
    return {
        "algorithm": str(algorithm),
        "ticks": ticks,
        "cpu_s": round(time.process_time() - started, 1),
        "holds": r.check.holds,
        "isolation": r.check.isolation,
        "availability": r.check.availability(),
    }


def noise(ticks: int, ber: float) -> dict[str, object]:
    """Loyal board 3 behind noisy links: the transient faults p/r counting is meant to forgive."""
    faults = tuple(LinkBitflip(LinkSelector.parse(f"3>{j}", 4), ber) for j in (0, 1, 2))
    sc = Scenario(
        name="noise",
        algorithm=Algorithm.OM,
        faults=faults,
        diagnosis=DiagnosisConfig(),
        ticks=ticks,
        seed=8,
    )
    with tempfile.TemporaryDirectory() as out:
        logs = SimRunner().run(sc, Path(out)).logs
    check = judge(sc, logs)
    lost = [sum(logs[i].decisions[t].dropped > 0 for i in (0, 1, 2)) for t in range(ticks)]
    return {
        "ber": ber,
        "ticks": ticks,
        "ticks_lost_at_one_or_more": sum(n >= 1 for n in lost) / ticks,
        "ticks_lost_at_f_plus_1": sum(n >= 2 for n in lost) / ticks,
        "isolations": check.isolation["isolations"],
        "false_isolations": check.isolation["false_isolations"],
        "safe": check.safe,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--soak", type=int, default=0, metavar="K")
    p.add_argument("--algorithm", choices=("sm", "om", "omh"), default="sm")
    p.add_argument("--noise", default="", metavar="BER[,BER...]")
    args = p.parse_args()
    if args.noise:
        for ber in args.noise.split(","):
            print(json.dumps(noise(args.ticks, float(ber))), flush=True)
        return
    alg = Algorithm(args.algorithm)
    result = soak(args.soak, alg) if args.soak else ab(args.ticks, args.reps, alg)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
