"""`python -m bench.tick_cpu`: the per-round CPU profile admission control budgets for.

For OM(1), OMH(1) and SM(1) with 4 boards: the CPU p50/p99 of a board's costliest round
(its own frames out + its N-1 peers' frames in) and of finish_tick, measured
with `voter.budget.measure_tick_cpu` exactly as voterd measures itself at
start-up, and the highest tick rate that fits at 921600 baud with 0.5 ms link
latency and 0.5 ms clock precision. Each figure is the median over `--runs`
independent measurements (a p99 from one short run moves with whatever else the
host is doing); the spread is printed beside it so a reader can judge it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from voter.budget import (
    DEFAULT_EXTRA_ROUND1_BYTES,
    CpuProfile,
    check_cluster,
    measure_tick_cpu,
    timing_budget,
)
from voter.core.protocol import Algorithm

CASES: tuple[tuple[Algorithm, int, int], ...] = (("om", 1, 4), ("omh", 1, 4), ("sm", 1, 4))
CHANNELS = 3
BAUD = 921600
LATENCY_S = 0.5e-3
PRECISION_S = 0.5e-3
CLOCKS = {"thread": time.thread_time_ns, "wall": time.perf_counter_ns}


def _spread(xs: list[float]) -> str:
    return f"{min(xs):.4g}-{max(xs):.4g}"


def bench_case(
    alg: Algorithm, m: int, n: int, runs: int, seconds: float, clock: str
) -> dict[str, Any]:
    """Median (and range) over `runs` measurements of one cluster's profile and rate."""
    frames = check_cluster(n, m, alg, CHANNELS)
    profiles: list[CpuProfile] = []
    elapsed: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        profiles.append(
            measure_tick_cpu(n, m, alg, CHANNELS, clock=CLOCKS[clock], time_budget_s=seconds)
        )
        elapsed.append(time.perf_counter() - t0)
    budgets = [
        timing_budget(1.0, frames.round_bytes, p, BAUD, LATENCY_S, PRECISION_S) for p in profiles
    ]
    bare = [
        timing_budget(1.0, frames.round_bytes, p, BAUD, LATENCY_S, PRECISION_S, 0) for p in profiles
    ]

    def ms(xs: list[float]) -> list[float]:
        return [x * 1e3 for x in xs]

    figures = {
        "round_ms_p50": ms([p.round_path_p50_s for p in profiles]),
        "round_ms_p99": ms([p.round_path_p99_s for p in profiles]),
        "decide_ms_p50": ms([p.decide_p50_s for p in profiles]),
        "decide_ms_p99": ms([p.decide_p99_s for p in profiles]),
        "highest_hz": [b.highest_hz for b in budgets],
        "highest_hz_without_timing_payload": [b.highest_hz for b in bare],
    }
    out: dict[str, Any] = {
        "case": f"{alg}{m}_n{n}",
        "runs": runs,
        "ticks_per_run": statistics.median(p.ticks for p in profiles),
        "seconds_per_run": round(statistics.median(elapsed), 3),
        "round_bytes": list(frames.round_bytes),
        "binding": budgets[0].binding,
        "binding_term": budgets[0].binding_term,
    }
    for key, xs in figures.items():
        out[key] = round(statistics.median(xs), 4)
        out[f"{key}_range"] = _spread(xs)
    mid = statistics.median_low(range(runs))  # a run whose message a reader can see whole
    out["message_at_highest"] = budgets[mid].at(budgets[mid].highest_hz).message
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.tick_cpu", description=__doc__)
    ap.add_argument("--runs", type=int, default=5, help="measurements per case (default: 5)")
    ap.add_argument(
        "--seconds", type=float, default=1.0, help="time budget of one measurement (default: 1)"
    )
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="thread", help="default: thread")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    results = [bench_case(a, m, n, args.runs, args.seconds, args.clock) for a, m, n in CASES]
    if args.json:
        print(json.dumps({"baud": BAUD, "latency_ms": 0.5, "precision_ms": 0.5, "cases": results}))
        return
    print(
        f"per-round CPU ({args.clock} clock), medians over {args.runs} runs of "
        f"~{args.seconds:g} s; rates at {BAUD} baud, latency 0.5 ms, precision 0.5 ms, "
        f"+{DEFAULT_EXTRA_ROUND1_BYTES} round-1 bytes"
    )
    for r in results:
        print(
            f"{r['case']}: round p50 {r['round_ms_p50']:.3f} ms p99 {r['round_ms_p99']:.3f} ms "
            f"(range {r['round_ms_p99_range']}); finish_tick p50 {r['decide_ms_p50']:.3f} ms "
            f"p99 {r['decide_ms_p99']:.3f} ms; frames {r['round_bytes']} bytes; "
            f"highest rate {r['highest_hz']:g} Hz (range {r['highest_hz_range']}; "
            f"{r['highest_hz_without_timing_payload']:g} Hz without the timing payload), "
            f"bound by {r['binding']} ({r['binding_term']}); {r['ticks_per_run']:g} ticks a run"
        )
        print(f"  {r['message_at_highest']}")


if __name__ == "__main__":
    main()
