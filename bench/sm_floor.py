"""`make bench`'s node-tick CPU against its Ed25519 floor, this tree against others, interleaved.

Each run is a fresh interpreter on one tree (PYTHONPATH) running that tree's own
`bench.run.crypto_costs_us` and `bench.run.cpu_case` exactly as `make bench`
does (the floor is the same definition: median sign and verify through the
libsodium bindings, times the signs and verifies the tick made). Runs of the
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
import json, sys
from bench.run import cpu_case, crypto_costs_us
from voter.core.protocol import Algorithm
alg, ticks = sys.argv[1], int(sys.argv[2])
sign_us, verify_us = crypto_costs_us(3000)
r = cpu_case(Algorithm(alg), 1, 4, ticks)
floor = r["signs"] * sign_us + r["verifies"] * verify_us
print(json.dumps({"tick_us": r["tick_us"], "floor_us": floor, "sign_us": sign_us,
                  "verify_us": verify_us, "ratio": r["tick_us"] / floor if floor else None}))
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
        for key in ("tick_us", "floor_us", "ratio"):
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
