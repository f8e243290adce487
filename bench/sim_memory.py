"""Peak memory of the simulator over long runs: lines kept in memory vs streamed to the checker.

Each size runs in a fresh process (ru_maxrss is a high-water mark for the whole
process), OM(1) N=4 with an equivocating traitor. "growth" is the peak minus the
resident size just before `run()`: what the run itself held. Usage:

    .venv/bin/python -m bench.sim_memory                 # streamed 1e3/1e4/1e5, kept 1e3/1e4
    .venv/bin/python -m bench.sim_memory --kept-max 100000
    .venv/bin/python -m bench.sim_memory --soak --sizes 10000 100000   # `hil soak` episodes
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from typing import Any

SIZES = (1_000, 10_000, 100_000)
TRAITOR = "traitor:3:equivocate"


def _rss_kb() -> int:
    """Resident size now (Linux: /proc/self/statm pages), in KB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() // 1024


def child(ticks: int, keep_logs: bool) -> dict[str, Any]:
    from hil.sim import SimConfig, Simulator
    from voter.faultmodel import parse_fault

    cfg = SimConfig(ticks=ticks, seed=1, faults=[parse_fault(TRAITOR, 4)])
    marks = [n for n in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000) if n < ticks]

    def sample(tick: int) -> None:
        """Resident size on the way (stderr): flat or growing shows before the run ends."""
        while marks and tick >= marks[0]:
            mb = _rss_kb() / 1024
            print(
                f"  {'kept' if keep_logs else 'streamed'} @{marks.pop(0)}: {mb:.1f} MB",
                file=sys.stderr,
            )

    sim = Simulator(cfg, sample, keep_logs=keep_logs)
    before_kb = _rss_kb()
    started = time.perf_counter()
    r = sim.run()
    wall_s = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    holds = r.check.holds if r.check is not None else None
    return {
        "ticks": ticks,
        "mode": "kept" if keep_logs else "streamed",
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "growth_mb": round((peak_kb - before_kb) / 1024, 1),
        "ticks_per_s": round(ticks / wall_s),
        "holds": holds,
        "history_hash": r.history_hash[:16],
    }


def soak_child(ticks: int) -> dict[str, Any]:
    """One `hil soak` episode of `ticks` (random faults inside the bound), streamed."""
    import tempfile
    from pathlib import Path

    from hil.soak import SoakPlan, run_ticks

    before_kb = _rss_kb()
    plan = SoakPlan(seed=1, ticks=ticks, episode_ticks=ticks)
    with tempfile.TemporaryDirectory() as out:
        r = run_ticks(plan, Path(out), replay=False)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "ticks": ticks,
        "mode": "soak",
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "growth_mb": round((peak_kb - before_kb) / 1024, 1),
        "ticks_per_s": r["ticks_per_s"],
        "holds": r["violations"] == 0,
        "faults": r["faults"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("TICKS", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--kept-max", type=int, default=10_000, help="largest size run with logs kept")
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument(
        "--soak", action="store_true", help="one `hil soak` episode per size (random faults)"
    )
    args = ap.parse_args(argv)
    if args.child:
        ticks, mode = int(args.child[0]), args.child[1]
        print(json.dumps(soak_child(ticks) if mode == "soak" else child(ticks, mode == "kept")))
        return 0
    rows = []
    modes = ("soak",) if args.soak else ("streamed", "kept")
    for ticks in args.sizes:
        for mode in modes:
            if mode == "kept" and ticks > args.kept_max:
                continue
            cmd = [sys.executable, "-m", "bench.sim_memory", "--child", str(ticks), mode]
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            rows.append(json.loads(out))
            print(json.dumps(rows[-1]), file=sys.stderr)
    what = "hil soak episode (seed 1)" if args.soak else f"OM(1) N=4, {TRAITOR}"
    print(f"Python {platform.python_version()}, {platform.machine()}; {what}\n")
    print("| ticks | mode | peak RSS MB | growth MB | ticks/s | holds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['ticks']:,} | {r['mode']} | {r['peak_rss_mb']} | {r['growth_mb']} "
            f"| {r['ticks_per_s']} | {r['holds']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
