"""The live terminal view of a firmware-sim run (rich): readings, vectors, votes, counters.

It reads only what the boards write (their decision logs, the new bytes on each
update) and judges them with `hil.checks.check`, the checker that judges the run
at the end: the headline's running count of violations is the run's verdict so
far, never a second opinion. A tick is judged once every running loyal board has
decided it, so a slow board's line is never missed; past violations stay counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hil.checks import PROPERTIES, NodeLog, Violation, check
from hil.faultspec import faulty_nodes
from voter.core.record import DecisionRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hil.cluster import ProcessCluster
    from hil.scenario import Scenario

#: a reading's column width: wide enough for -99999.99, or for its channel's name
_VALUE_WIDTH = 9


@dataclass
class BoardTotals:
    """One board's counters since the start of the run, summed from its log lines."""

    ticks: int = 0
    withheld: int = 0
    dropped: int = 0
    late: int = 0
    corrected: int = 0

    def add(self, record: DecisionRecord) -> None:
        self.ticks += 1
        self.withheld += record.withheld is not None
        self.dropped += record.dropped
        self.late += record.late
        self.corrected += record.corrected


@dataclass
class Verdict:
    """The checker's counts over ticks 0..`through`, added up window by window."""

    through: int = -1
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROPERTIES, 0))
    first: Violation | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LiveView:
    def __init__(self, spec: Scenario, channels: Sequence[str] = ()) -> None:
        self.spec = spec
        self.traitors = set(faulty_nodes(spec.faults))
        #: the cluster config's channel names (update() reads them from the cluster)
        self.channels = tuple(channels)
        self.logs = {i: NodeLog(i) for i in range(spec.nodes)}
        self.latest: dict[int, DecisionRecord] = {}
        self.totals = {i: BoardTotals() for i in range(spec.nodes)}
        self.verdict = Verdict()
        #: per board: "running", "done" or why it stopped (absent: not started yet)
        self.states: dict[int, str] = {}
        self._offsets: dict[int, int] = {}
        self._cluster: ProcessCluster | None = None
        self.live = Live(self.render(), refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The runner's last watch call can come before the boards' last lines and exits:
        # read the logs once more (the cluster is stopped by now) and judge every tick.
        if self._cluster is not None:
            self.update(self._cluster, {}, final=True)
        self.live.__exit__(t, e, tb)
        if not self.live.console.is_terminal:
            self.live.console.line()  # rich ends a file's last frame without one

    # -- reading the boards -------------------------------------------------------
    def update(
        self, cluster: ProcessCluster, ticks: dict[int, int | None], *, final: bool = False
    ) -> None:
        """The runner's watch hook: read new log lines, judge settled ticks, redraw."""
        self._cluster = cluster
        if cluster.cfg is not None:
            self.channels = cluster.cfg.channels
        for i in range(self.spec.nodes):
            self._read_new(i, cluster.log_path(i))
        running = set(cluster.running())
        for i in range(self.spec.nodes):
            self.states[i] = self._state(i, cluster, running)
        self.judge(self.spec.ticks - 1 if final else self._settled(running))
        self.live.update(self.render())

    def _read_new(self, node: int, path: Path) -> None:
        """Only the complete lines written since the last call."""
        try:
            with path.open("rb") as fh:
                fh.seek(self._offsets.get(node, 0))
                data = fh.read()
        except OSError:
            return
        cut = data.rfind(b"\n") + 1
        self._offsets[node] = self._offsets.get(node, 0) + cut
        for raw in data[:cut].decode(errors="replace").splitlines():
            self.add_line(node, raw)

    def add_line(self, node: int, raw: str) -> None:
        """One log line, read as `hil.checks.read_log` reads it: an event or a decision."""
        log = self.logs[node]
        try:
            obj = json.loads(raw)
        except ValueError:
            log.bad_lines += 1
            return
        if not isinstance(obj, dict):
            log.bad_lines += 1
        elif "event" in obj:
            log.events.append(obj)
        else:
            try:
                record = DecisionRecord.parse(obj)
            except ValueError:
                log.bad_lines += 1
                return
            log.decisions[record.tick] = record
            self.latest[node] = record
            self.totals[node].add(record)

    def _state(self, node: int, cluster: ProcessCluster, running: set[int]) -> str:
        if node in running:
            return "running"
        line = self.latest.get(node)
        if line is not None and line.tick >= self.spec.ticks - 1:
            return "done"
        proc = cluster.procs.get(node)
        if proc is None:
            return "not started"
        code = proc.poll()
        where = "before its first tick" if line is None else f"at tick {line.tick}"
        return f"stopped {where} (exit {code})"

    def _settled(self, running: set[int]) -> int:
        """The newest tick every running loyal board has decided (-1: none yet)."""
        loyal = [i for i in running if i not in self.traitors]
        if not loyal:
            return -1  # between runs of boards, or before the start: judge nothing yet
        latest = [self.latest[i].tick if i in self.latest else -1 for i in loyal]
        return min(*latest, self.spec.ticks - 1)

    def judge(self, through: int) -> None:
        """Check ticks after the last judged one up to `through`, with the run's own rules."""
        v = self.verdict
        if through <= v.through:
            return
        window = (v.through + 1, through)
        result = check(self.logs, self.traitors, window, period_us=1e6 / self.spec.tick_hz)
        for prop, n in result.counts.items():
            v.counts[prop] += n
        if v.first is None and result.violations:
            v.first = min(result.violations, key=lambda x: x.tick)
        v.through = through
        # Judged lines are not needed again (liveness reads the join events and the lines
        # after `through`): memory stays bounded by the lag, however long the run.
        for log in self.logs.values():
            log.decisions = {t: x for t, x in log.decisions.items() if t > through}

    # -- drawing -----------------------------------------------------------------
    def render(self) -> Panel:
        # About 150 columns show a board per line; a narrower terminal wraps the cells.
        return Panel(
            Group(self._headline(), self._table(), self._legend()),
            title="firmware-sim",
            border_style="blue",
        )

    def _table(self) -> Table:
        table = Table(expand=True, show_edge=False)
        for col in (
            "board",
            "role",
            "state",
            "tick",
            "own reading" + self._names(),
            "voted output" + self._names(),
            "vector entries",
            "withheld",
            "dropped",
            "late",
            "ECC fixed",
        ):
            table.add_column(col, justify="left" if col in ("role", "state") else "right")
        for i in range(self.spec.nodes):
            table.add_row(*self._row(i))
        return table

    def _row(self, i: int) -> list[str]:
        role = "[red]traitor[/]" if i in self.traitors else "[green]loyal[/]"
        state = self.states.get(i, "not started")
        if state.startswith("stopped"):
            state = f"[yellow]{state}[/]"
        line = self.latest.get(i)
        if line is None:
            return [str(i), role, state, "-", *[""] * 7]
        t = self.totals[i]
        return [
            str(i),
            role,
            state,
            str(line.tick),
            self._fmt(line.local),
            self._fmt(line.output),
            _entries(line.vector, self.spec.nodes),
            str(t.withheld),
            str(t.dropped),
            str(t.late),
            str(t.corrected),
        ]

    def _widths(self, count: int) -> list[int]:
        """Each value as wide as its channel's name (a value past the named ones: the minimum)."""
        names = self.channels
        return [max(_VALUE_WIDTH, len(names[k]) if k < len(names) else 0) for k in range(count)]

    def _names(self) -> str:
        """The second header line: the channel names over their values (none if unknown)."""
        if not self.channels:
            return ""
        widths = self._widths(len(self.channels))
        return "\n" + " ".join(name.rjust(w) for name, w in zip(self.channels, widths, strict=True))

    def _fmt(self, values: Any) -> str:
        if not isinstance(values, list):
            return "[red]ERROR[/]"
        widths = self._widths(len(values))
        return " ".join(
            f"{v:{w}.2f}" if isinstance(v, int | float) else "-".rjust(w)
            for v, w in zip(values, widths, strict=False)
        )

    def _headline(self) -> Text:
        s = self.spec
        return Text.from_markup(
            f"[b]{s.nodes} boards[/], {s.algorithm.upper()}({s.m}) at {s.tick_hz:g} Hz, "
            f"{s.ticks} ticks, {s.baud} baud, "
            f"faults: {', '.join(f.describe() for f in s.faults) or 'none'}\n"
            + _verdict_text(self.verdict, sorted(set(range(s.nodes)) - self.traitors))
        )

    def _legend(self) -> Text:
        n = self.spec.nodes
        channels = ", ".join(self.channels) or "unknown until the boards start"
        return Text.from_markup(
            f"[dim]vector entries: how many of the {n} boards' readings this board's agreed "
            "vector holds; ERROR: j = no agreed value for board j (faulty, silent or garbled); "
            "the vote is the mid-value of the entries, per channel.\n"
            f"channels (cluster config): {channels}; units: the config has none (a name's "
            "suffix may say it, as in altitude_m). Counters: since the start.[/]"
        )


def _entries(vector: Any, nodes: int) -> str:
    """The entries cell, e.g. "3/4, ERROR: 3": three hold a value, board 3's is empty."""
    if not isinstance(vector, list):
        return "[red]no vector[/]"
    empty = [j for j, v in enumerate(vector) if v is None]
    held = f"{len(vector) - len(empty)}/{nodes}"
    if not empty:
        return held
    return f"{held}, [red]ERROR: {' '.join(map(str, empty))}[/]"


def _verdict_text(v: Verdict, loyal: list[int]) -> str:
    """The headline's second line: every violation since tick 0, not only the latest tick's."""
    who = f"loyal boards {loyal}"
    if v.through < 0:
        return f"{who}: no tick judged yet (a tick is judged once each has decided it)"
    if v.total == 0:
        return f"{who}: [green]no violation[/] in ticks 0-{v.through} ({', '.join(PROPERTIES)})"
    parts = ", ".join(f"{prop} {n}" for prop, n in v.counts.items() if n)
    first = ""
    if v.first is not None:
        first = f"; first at tick {v.first.tick}: {v.first.prop}, {escape(v.first.detail)}"
    return (
        f"{who}: [red]{v.total} violation{'s' if v.total != 1 else ''} since the start[/] "
        f"in ticks 0-{v.through} ({parts}){first}"
    )
