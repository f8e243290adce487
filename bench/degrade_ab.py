"""A/B: simulator CPU per cluster-tick with planned degradation off and on (fault-free OM(1),
N=4), interleaved, medians. `python -m bench.degrade_ab [--ticks T] [--pairs P]`."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hil.scenario import Scenario
from hil.sim import SimRunner
from voter.core.mode import DegradeConfig
from voter.core.protocol import Algorithm


def one(degrade: DegradeConfig | None, ticks: int, out: Path) -> float:
    """CPU µs per simulated cluster-tick of one run."""
    sc = Scenario(name="ab", algorithm=Algorithm.OM, degrade=degrade, ticks=ticks, seed=3)
    t0 = time.process_time()
    SimRunner().run(sc, out)
    return (time.process_time() - t0) / ticks * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            off.append(one(None, args.ticks, Path(tmp) / f"off{i}"))
            on.append(one(DegradeConfig(), args.ticks, Path(tmp) / f"on{i}"))
    a, b = statistics.median(off), statistics.median(on)
    print(f"off {a:.0f} µs, on {b:.0f} µs per cluster-tick: {b / a:.3f}x")


if __name__ == "__main__":
    main()
