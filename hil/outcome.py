"""What every runner hands back, and everything computed from it once: counters, totals, run.json.

The simulator, the pty cluster and the serial rig differ in how they run a
scenario, not in what a run means. Each returns a `RunOutcome`: the boards'
decision logs, what the link channel did (`hil.channel.ChannelStats`, the same
object in every mode) and what only the rig knows (restarts, crashes). The
counters, the per-board totals, the checker's verdict and run.json are then
computed here from that, so a counter has one name and one meaning in every
mode. Where a mode cannot observe a figure (only the simulator can decode a
corrupted frame next to the one that was sent), it is None, never a 0.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from hil.channel import ChannelStats
from hil.checks import CheckResult, NodeLog, check
from hil.faultspec import fault_budget, faulty_nodes, inside_bound, manifest_count
from hil.scenario import Scenario
from hil.smr_checks import check_log

MODES = ("sim", "pty", "serial")


class RunnerError(Exception):
    """A scenario the runner could not run (a silent board, a missed start): one line."""


class Runner(Protocol):
    """Runs a scenario: the simulator, real processes on ptys, or real boards on a rig."""

    mode: str

    def run(
        self, sc: Scenario, out: Path, progress: Callable[[int], None] | None = None
    ) -> RunOutcome: ...


@dataclass
class RunOutcome:
    """One run of a scenario, in any mode."""

    mode: str
    logs: dict[int, NodeLog]
    #: what the link-fault channel did, summed over every direction
    links: ChannelStats = field(default_factory=ChannelStats)
    #: per direction "a>b": that direction's counters (the fabric's or the simulator's)
    link_detail: dict[str, dict[str, int]] = field(default_factory=dict)
    #: boards the rig (re)started after a crash or a stop, and crashes it carried out
    restarts: int = 0
    crashes: int = 0
    duration_s: float = 0.0
    #: per board, per tick: ok | error | withheld | down | stop (None: read from the logs)
    timeline: dict[int, list[str]] | None = None
    history_hash: str | None = None
    #: memory faults injected (1-bit, 2-bit), where the runner can count them
    memory_injected: tuple[int, int] | None = None
    #: corrupted frames the decoder refused / took for another frame (the simulator only)
    link_decoded: tuple[int, int] | None = None
    #: what only this mode knows, for run.json (exit codes, admission, the serial stream)
    extra: dict[str, Any] = field(default_factory=dict)
    #: why the scenario was not run (serial mode: another cluster, a silent board)
    skipped: str | None = None


@dataclass
class Counters:
    """One run's counters: the same names and meanings in sim, pty and serial mode."""

    decided: int = 0  # decision lines written by any board
    published: int = 0
    withheld: int = 0
    frames_sent: int = 0  # frames that entered a link
    frames_dropped: int = 0  # frames the boards' decoders refused (COBS, CRC, schema, ...)
    late: int = 0  # frames the boards took after their round closed
    corrected: int = 0  # memory errors the boards' SECDED corrected
    stops: int = 0  # boards that stopped themselves (inconsistency, memory)
    crashes: int = 0  # crashes the rig carried out
    restarts: int = 0
    stalls: int = 0
    clock_steps: int = 0
    link_dropped: int = 0
    link_delayed: int = 0
    link_jittered: int = 0
    link_corrupted: int = 0
    flipped_bits: int = 0
    memory_single: int | None = None
    memory_double: int | None = None
    memory_stops: int = 0  # boards that stopped on a memory error they detected
    link_detected: int | None = None
    link_undetected: int | None = None
    #: channel samples the boards' validity checks voided before commanding them
    sensor_invalid: int = 0

    def to_json(self) -> dict[str, int | None]:
        return asdict(self)

    def coverage(self) -> dict[str, int | None]:
        """The detection-coverage view (report.py): what was injected, what became of it."""
        return {
            "link_corrupted": self.link_corrupted,
            "link_detected": self.link_detected,
            "link_undetected": self.link_undetected,
            "memory_single": self.memory_single,
            "memory_double": self.memory_double,
            "memory_corrected": self.corrected,
            "memory_stops": self.memory_stops,
        }


COUNTER_NAMES = tuple(f.name for f in fields(Counters))


def _stops(log: NodeLog) -> list[Mapping[str, Any]]:
    return [e for e in log.events if e.get("event") == "stop" and e.get("code") not in (0, None)]


def counters(outcome: RunOutcome) -> Counters:
    """The counters of a run, from its logs and what its runner observed."""
    c = Counters(restarts=outcome.restarts, crashes=outcome.crashes)
    for log in outcome.logs.values():
        for line in log.decisions.values():
            c.decided += 1
            c.withheld += line.withheld is not None
            c.frames_dropped += line.dropped
            c.late += line.late
            c.corrected += line.corrected
            c.sensor_invalid += len(line.invalid or ())
        stops = _stops(log)
        c.stops += len(stops)
        c.memory_stops += sum(1 for e in stops if "memory" in str(e.get("reason", "")))
        c.stalls += sum(1 for e in log.events if e.get("event") == "stall")
        c.clock_steps += sum(1 for e in log.events if e.get("event") == "clock-jump")
    c.published = c.decided - c.withheld
    links = outcome.links
    c.frames_sent = links.frames
    c.link_dropped, c.link_delayed = links.dropped_frames, links.delayed_frames
    c.link_jittered, c.link_corrupted = links.jittered_frames, links.corrupted_frames
    c.flipped_bits = links.flipped_bits
    if outcome.memory_injected is not None:
        c.memory_single, c.memory_double = outcome.memory_injected
    if outcome.link_decoded is not None:
        c.link_detected, c.link_undetected = outcome.link_decoded
    return c


def sum_links(detail: Mapping[str, Mapping[str, int]]) -> ChannelStats:
    """The channel counters of every direction added up (from the fabric's fabric.json)."""
    total = ChannelStats()
    for direction in detail.values():
        for f in fields(ChannelStats):
            setattr(total, f.name, getattr(total, f.name) + int(direction.get(f.name, 0)))
    return total


def node_totals(logs: Mapping[int, NodeLog]) -> dict[str, dict[str, int]]:
    """Per board: decided, published, withheld, dropped, late, corrected, stops, joins."""
    out: dict[str, dict[str, int]] = {}
    for i, log in logs.items():
        lines = log.decisions.values()
        withheld = sum(1 for x in lines if x.withheld is not None)
        out[str(i)] = {
            "decided": len(log.decisions),
            "published": len(log.decisions) - withheld,
            "withheld": withheld,
            "dropped": sum(x.dropped for x in lines),
            "late": sum(x.late for x in lines),
            "corrected": sum(x.corrected for x in lines),
            "stops": len(_stops(log)),
            "joins": sum(1 for e in log.events if e.get("event") == "joined"),
            "invalid": sum(len(x.invalid or ()) for x in lines),
        }
    return out


def invalid_counts(logs: Mapping[int, NodeLog]) -> dict[str, dict[str, dict[str, int]]]:
    """Per board, channel and reason: samples its validity checks voided (boards with any)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for i, log in sorted(logs.items()):
        for line in log.decisions.values():
            for channel, reason in (line.invalid or {}).items():
                per = out.setdefault(str(i), {}).setdefault(channel, {})
                per[reason] = per.get(reason, 0) + 1
    return out


def timeline(
    logs: Mapping[int, NodeLog], ticks: int, faulty: Collection[int] = ()
) -> dict[int, list[str]]:
    """Per board, per tick: ok | peer-error | error | faulty | withheld | stop | down.

    An ERROR entry for a faulty board, or for a board with no line that tick, is what a
    loyal board should hold ("peer-error"); only an ERROR entry for a loyal board that
    decided says this board's vector is wrong ("error"). A faulty board's own lines are
    "faulty", whatever they say: its log is not evidence of health.
    """
    out: dict[int, list[str]] = {}
    for i, log in logs.items():
        stopped = {e.get("tick") for e in _stops(log)}
        stopped |= {e.get("tick") for e in log.events if e.get("event") == "crash"}
        row = []
        for t in range(ticks):
            line = log.decisions.get(t)
            if line is None:
                row.append("stop" if t in stopped else "down")
            elif i in faulty:
                row.append("faulty")
            elif line.withheld is not None:
                row.append("withheld")
            else:
                row.append(_entries_state(line.vector or [], t, logs, faulty))
        out[i] = row
    return out


def _entries_state(
    vector: Sequence[object], t: int, logs: Mapping[int, NodeLog], faulty: Collection[int]
) -> str:
    """ok, peer-error (ERROR only where a faulty or silent peer is) or error (a loyal peer's)."""
    missing = [j for j, v in enumerate(vector) if v is None]
    if not missing:
        return "ok"
    expected = all(j in faulty or j not in logs or t not in logs[j].decisions for j in missing)
    return "peer-error" if expected else "error"


def judge(sc: Scenario, logs: Mapping[int, NodeLog]) -> CheckResult:
    """The checker's verdict on a run of `sc`: its traitors left out, its ticks, its period."""
    if sc.replication is not None:  # a command log: its own properties (hil.smr_checks)
        return check_log(logs, sc.nodes, faulty_nodes(sc.faults))
    return check(
        logs, faulty_nodes(sc.faults), window=(0, sc.ticks - 1), period_us=1e6 / sc.tick_hz
    )


def run_json(sc: Scenario, outcome: RunOutcome, result: CheckResult) -> dict[str, Any]:
    """The run directory's run.json (SPEC.md): the same keys whichever mode ran it."""
    counted, reasons = fault_budget(sc.faults)
    return {
        "mode": outcome.mode,
        "nodes": sc.nodes,
        "algorithm": sc.algorithm,
        "m": sc.m,
        "tick_hz": sc.tick_hz,
        "publish": sc.publish,
        "fail_silent": sc.fail_silent,
        "ticks": sc.ticks,
        "baud": sc.baud,
        "seed": sc.seed,
        "faulty": faulty_nodes(sc.faults),
        "faults": [f.describe() for f in sc.faults],
        "fault_budget": {
            "counted": counted,
            "bound": sc.bound,
            "inside_bound": inside_bound(sc),
            "manifest": manifest_count(sc.faults),
            "reasons": reasons,
        },
        "counters": counters(outcome).to_json(),
        "boards": node_totals(outcome.logs),
        "invalid": invalid_counts(outcome.logs),
        "links": outcome.link_detail,
        "history_hash": outcome.history_hash,
        "check": result.to_json(),
        **outcome.extra,
    }
