"""`make demo`: the main job. Four boards on pty serial links, board 3 lying, its link to 2 noisy.

Real voterd processes (the code that runs on the Raspberry Pis) exchange
readings at 50 Hz (or the highest rate this host's measured budget fits, or a
`--tick-hz` given: `python -m firmware_sim.demo --tick-hz 20`) with OM(1) through
the link fabric; board 3 equivocates (tells each peer a different reading) and
the wire from 3 to 2 flips bits; from tick 400 to 600 (40-60 % of the run) board
0's altimeter spikes by 5 km (a loyal board with a bad sensor: the mid-value vote masks it).
The view shows every board's reading and voted output under the channel names,
its counters and every violation since the start; the summary at the end says
whether agreement and validity held for boards 0-2.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from firmware_sim.cli import main as firmware_sim
from hil.cluster import PTY_LINK_LATENCY_US
from hil.pty_run import admission
from hil.scenario import Scenario

OUT = Path("runs/demo")
WANTED_HZ = 50.0
TICKS = 1000


def choose_rate() -> tuple[float, str]:
    """50 Hz if this host's measured budget fits it, else the highest rate that fits."""
    budget = admission(Scenario(tick_hz=WANTED_HZ), PTY_LINK_LATENCY_US * 1e-6)
    if budget.fits:
        return WANTED_HZ, ""
    hz = max(1.0, math.floor(min(WANTED_HZ, budget.highest_hz)))
    return hz, f" ({WANTED_HZ:g} Hz does not fit this host's measured budget: {budget.message})"


def given(argv: list[str], option: str) -> str | None:
    """The last value of `option` in argv (as argparse takes it), or None."""
    value = None
    for k, arg in enumerate(argv):
        if arg == option and k + 1 < len(argv):
            value = argv[k + 1]
        elif arg.startswith(option + "="):
            value = arg.partition("=")[2]
    return value


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None  # firmware-sim says what is wrong with it, in one line


def main() -> None:
    extra = sys.argv[1:]
    # The banner states the run firmware-sim will do: a rate or length given on the
    # command line wins over the demo's own (argparse takes the last occurrence).
    asked_hz, asked_ticks = _number(given(extra, "--tick-hz")), _number(given(extra, "--ticks"))
    hz, why = (asked_hz, " (asked)") if asked_hz and asked_hz > 0 else choose_rate()
    ticks = int(asked_ticks) if asked_ticks and asked_ticks > 0 else TICKS
    spike = f"{ticks * 2 // 5}-{ticks * 3 // 5}"  # 400-600 of the usual 1000 ticks
    print(
        f"voter demo: 4 boards, OM(1) at {hz:g} Hz for {ticks / hz:.0f} s{why}; board 3 "
        "equivocates, its link to board 2 flips bits (BER 1e-4), and board 0's altimeter "
        f"spikes at ticks {spike}.",
        flush=True,
    )
    args = [
        "run",
        "--nodes",
        "4",
        "--algorithm",
        "om",
        "--m",
        "1",
        "--tick-hz",
        f"{hz:g}",
        "--ticks",
        str(ticks),
        "--out",
        str(OUT),
        "--fault",
        "traitor:3:equivocate",
        "--fault",
        "link-bitflip:3-2:1e-4",
        "--fault",
        f"sensor:0:spike:{spike}",
        *extra,
    ]
    try:
        firmware_sim(args)
    except SystemExit as e:
        if e.code == 0:
            print(f"\nDecision logs: {OUT}/node<ID>.jsonl, run summary: {OUT}/run.json")
            print(
                "Next: .venv/bin/hil verify --nodes 3 --m 1 --algorithm om --traitors 1"
                "   (why three boards are not enough)"
            )
        raise


if __name__ == "__main__":
    main()
