"""`python -m bench.validity`: what the sensor validity checks cost a board per tick.

The checks run once per tick on the board's own reading, so their cost is compared with
the rest of the tick, measured in the same run: OM(1) and SM(1) node ticks at N=4 (bench.run's
`cpu_case`, the same code) against `Validity.check` with every check on for 3 channels, fed
the simulated sensor's readings. Medians of `--runs` runs; only the ratio is stable on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.run import cpu_case
from voter.core.protocol import Algorithm
from voter.core.validity import ChannelLimits, Validity
from voter.sensors import SimSensor

NAMES = ("altitude_m", "airspeed_mps", "pitch_deg")
LIMITS = (
    ChannelLimits(-500.0, 20000.0, 5, 300.0, 3, 50, 10),
    ChannelLimits(0.0, 150.0, 5, 120.0, 3, 50, 10),
    ChannelLimits(-45.0, 45.0, 5, 40.0, 3, 50, 10),
)


def check_us(ticks: int) -> float:
    """Median microseconds of one `Validity.check` on a 3-channel reading."""
    sensor = SimSensor(3, 0, 0, 0.02)
    readings = [sensor.read(k) for k in range(ticks)]
    v = Validity(LIMITS, NAMES, 0.02)
    times = []
    for k, r in enumerate(readings):
        t0 = time.perf_counter_ns()
        v.check(k, r)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.validity")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=300)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"check_us": [], "om1_tick_us": [], "sm1_tick_us": []}
    for _ in range(args.runs):
        rows["check_us"].append(check_us(args.ticks * 10))
        rows["om1_tick_us"].append(cpu_case(Algorithm.OM, 1, 4, args.ticks)["tick_us"])
        rows["sm1_tick_us"].append(cpu_case(Algorithm.SM, 1, 4, args.ticks)["tick_us"])
    med = {k: statistics.median(v) for k, v in rows.items()}
    med["ratio_om1"] = med["check_us"] / med["om1_tick_us"]
    med["ratio_sm1"] = med["check_us"] / med["sm1_tick_us"]
    print(json.dumps({k: round(v, 4) for k, v in med.items()}, indent=1))


if __name__ == "__main__":
    main()
