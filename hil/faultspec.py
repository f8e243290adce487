"""What a scenario's faults mean for a run: can they happen, whom they make faulty, their cost.

The faults themselves are `voter.faultmodel` (parsed once, typed); this is the
HIL accounting around them: the checker leaves traitors out, and the fault
budget says how many faults count against the algorithm's bound and why.
"""

from __future__ import annotations

from collections.abc import Iterable

from hil.scenario import Scenario
from voter.core.protocol import mix_within_bound
from voter.faultmodel import (
    ClockStep,
    Crash,
    Fault,
    FaultSpecError,
    Stall,
    Traitor,
    boards,
    is_link,
    number_text,
)


def validate_run(faults: Iterable[Fault], ticks: int, tick_hz: float) -> None:
    """Refuse faults that cannot happen inside a run of `ticks` ticks at `tick_hz`.

    A crash, stall or clock step at a tick past the end, a fault window that
    opens after the run, or a stall longer than the whole run would leave a run
    that "passed" without the fault it was asked to survive.
    """
    run_ms = ticks * 1000.0 / tick_hz
    for f in faults:
        what = f.describe()
        at = f.at_tick if isinstance(f, Crash | Stall | ClockStep) else None
        if at is not None and at >= ticks:
            raise FaultSpecError(f"{what}: tick {at} is beyond the run (ticks 0..{ticks - 1})")
        if f.window.from_tick >= ticks:
            raise FaultSpecError(
                f"{what}: from_tick {f.window.from_tick} is beyond the run (ticks 0..{ticks - 1})"
            )
        if isinstance(f, Stall) and f.ms > run_ms:
            raise FaultSpecError(
                f"{what}: a {number_text(f.ms)} ms stall is longer than the run "
                f"({ticks} ticks at {number_text(tick_hz)} Hz = {number_text(run_ms)} ms)"
            )


def faulty_nodes(faults: Iterable[Fault]) -> list[int]:
    """Boards the checker leaves out: traitors (they may say anything)."""
    return sorted({f.node for f in faults if isinstance(f, Traitor)})


def fault_budget(faults: Iterable[Fault]) -> tuple[int, list[str]]:
    """How many faults count against the bound, and why each.

    A traitor counts once, and link faults on its own links are part of it. A
    link fault between two loyal boards counts like one more faulty board (SPEC.md).
    A crash is a benign omission fault of a loyal board and counts too, and so do
    a stall and a clock step: for those ticks the board is late or silent, a
    benign timing fault of that board. Memory faults and clock drift are meant to
    be turned benign by the board itself (ECC, crash-on-inconsistency, clock
    sync) and are reported, not counted.
    """
    classes, reasons = fault_classes(faults)
    return len(classes), reasons


def fault_classes(faults: Iterable[Fault]) -> tuple[dict[int, str], list[str]]:
    """Each counted board's class in the hybrid model ("manifest" | "asymmetric"), and why.

    Manifest means every loyal board sees the same nothing: a crashed board or a
    silent traitor. Everything else is counted as asymmetric, the conservative
    class: a stall or a late frame may reach some boards in time and not others,
    and a lying board may say anything. (A "*" link fault: 99 asymmetric boards.)
    """
    faults = list(faults)
    traitors = {f.node: f for f in faults if isinstance(f, Traitor)}
    reasons = [f"board {t} is a traitor" for t in sorted(traitors)]
    counted = {
        t: "manifest" if f.strategy == "silent" else "asymmetric" for t, f in traitors.items()
    }
    for f in faults:
        if is_link(f):
            ends = boards(f)
            if not ends:
                reasons.append(f"{f.describe()}: every link, beyond any bound")
                return {-1 - i: "asymmetric" for i in range(99)}, reasons
            if not set(ends) & set(traitors):
                pair = min(ends)
                if pair not in counted:
                    counted[pair] = "asymmetric"
                    reasons.append(
                        f"{f.describe()} is between loyal boards: counts as board {pair} faulty"
                    )
        if isinstance(f, Crash) and f.node not in counted:
            counted[f.node] = "manifest"
            reasons.append(f"{f.describe()}: a crashed board counts while it is down")
        if isinstance(f, Stall | ClockStep) and f.node not in counted:
            counted[f.node] = "asymmetric"
            reasons.append(
                f"{f.describe()}: a benign timing fault of board {f.node} (late or silent)"
            )
    return counted, reasons


def manifest_count(faults: Iterable[Fault]) -> int:
    """How many of the counted boards are manifest (crashed or silent)."""
    classes, _ = fault_classes(faults)
    return sum(1 for k in classes.values() if k == "manifest")


def inside_bound(sc: Scenario) -> bool:
    """Whether the theory covers the scenario's faults: OMH by its hybrid bound (a crashed or
    silent board costs one node), OM and SM by counting every board against `sc.bound`."""
    if sc.replication is not None:  # a command log: its own bound (hil.scenario.Scenario.bound)
        return fault_budget(sc.faults)[0] <= sc.bound
    classes, _ = fault_classes(sc.faults)
    manifest = sum(1 for k in classes.values() if k == "manifest")
    return mix_within_bound(sc.algorithm, sc.nodes, sc.m, len(classes) - manifest, 0, manifest)
