"""Does agreement survive its own timing on this host? Repeated fault-free firmware-sim runs.

    python -m bench.timing --runs 10 --algorithm om --tick-hz 50 --ticks 300
    python -m bench.timing --runs 3 --algorithm om --tick-hz 300 --ticks 300 --json out.json

Each run is a real `firmware-sim run` (4 voterd processes on ptys). Reported per
run and pooled: violations among published outputs (agreement, validity,
integrity, timeliness), availability per board (published / ticks up), withheld
ticks by reason, and what the boards measured themselves: the clock precision
they achieved (the largest pairwise offset each board sees, `precision_us`), the
one-way link delay from their two-way exchanges (`latency_us`, wire time
included), their round-1 write lag and their CPU per tick. Speed figures belong
here, not in timed tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.checks import read_run
from hil.pty_run import run
from hil.scenario import Scenario
from voter.core.protocol import ALGORITHMS


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(
    out: Path, algorithm: str, tick_hz: float, ticks: int, seed: int, baud: int, fail_silent: bool
) -> dict[str, Any]:
    spec = Scenario(
        algorithm="sm" if algorithm == "sm" else "om",
        tick_hz=tick_hz,
        ticks=ticks,
        seed=seed,
        baud=baud,
        fail_silent=fail_silent,
    )
    res = run(spec, out)
    c = res.check
    logs = read_run(out, spec.nodes)
    fields: dict[str, list[float]] = {
        k: [] for k in ("precision_us", "latency_us", "lateness_us", "cpu_us")
    }
    for log in logs.values():
        for line in log.decisions.values():
            for k, vals in fields.items():
                v = line.cpu_us if k == "cpu_us" else line.timing[k]
                if isinstance(v, int | float):
                    vals.append(float(v))
    violations = {k: c.counts[k] for k in ("agreement", "validity", "integrity", "timeliness")}
    avail = [a for a in c.availability().values() if a is not None]
    return {
        "violations": violations,
        "liveness": c.counts["liveness"],
        "availability_min": min(avail) if avail else None,
        "withheld": c.to_json()["withheld"],
        "missed_start": res.run_json.get("missed_start", {}),
        "samples": fields,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.timing", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--algorithm", choices=ALGORITHMS, default="om")
    ap.add_argument("--tick-hz", type=float, default=50.0)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument(
        "--no-fail-silent", action="store_true", help="boards publish every decision (debug)"
    )
    ap.add_argument("--json", type=Path, default=None, help="write the pooled figures here")
    args = ap.parse_args(argv)
    summary = _summary(args, _runs(args))
    print(json.dumps(summary, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))


def _runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """`args.runs` fault-free runs with seeds 0, 1, ...; a progress line for each on stderr."""
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voter-timing-") as tmp:
        for i in range(args.runs):
            r = one_run(
                Path(tmp) / f"r{i}",
                args.algorithm,
                args.tick_hz,
                args.ticks,
                i,
                args.baud,
                not args.no_fail_silent,
            )
            runs.append(r)
            done = i + 1
            rate = done / (time.monotonic() - started)
            eta = (args.runs - done) / rate
            bad = sum(r["violations"].values())
            print(
                f"run {done}/{args.runs}: violations {bad}, availability min "
                f"{(r['availability_min'] or 0) * 100:.1f} %, withheld {r['withheld']} "
                f"({rate * 60:.1f} runs/min, ETA {eta:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return runs


def _summary(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs pooled: violation counts, availability, and percentiles of what boards measured."""
    pooled: dict[str, list[float]] = {}
    for r in runs:
        for k, vals in r["samples"].items():
            pooled.setdefault(k, []).extend(vals)
    return {
        "algorithm": args.algorithm,
        "tick_hz": args.tick_hz,
        "ticks": args.ticks,
        "baud": args.baud,
        "fail_silent": not args.no_fail_silent,
        "runs": args.runs,
        "runs_with_violations": sum(1 for r in runs if sum(r["violations"].values())),
        "violations": {k: sum(r["violations"][k] for r in runs) for k in runs[0]["violations"]},
        "availability_min": min((r["availability_min"] or 0.0) for r in runs),
        "availability_median_of_run_minima": _pct(
            [r["availability_min"] or 0.0 for r in runs], 0.5
        ),
        "missed_start_runs": sum(1 for r in runs if r["missed_start"]),
        "percentiles_us": {
            k: {q: _pct(v, p) for q, p in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))}
            for k, v in pooled.items()
        },
    }


if __name__ == "__main__":
    main()
