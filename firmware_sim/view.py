"""The live terminal view of a firmware-sim run (rich): readings, vectors, votes, counters."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hil.faultspec import faulty_nodes
from voter.core.record import DecisionRecord, parse_line

if TYPE_CHECKING:
    from hil.cluster import ProcessCluster
    from hil.scenario import Scenario


def last_decision(path: Path) -> DecisionRecord | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        record = parse_line(line)
        if record is not None:
            return record
    return None


def _fmt(values: Any) -> str:
    if values is None:
        return "[red]ERROR[/]"
    return " ".join(f"{v:9.2f}" if isinstance(v, float) else "    -    " for v in values)


class LiveView:
    def __init__(self, spec: Scenario) -> None:
        self.spec = spec
        self.traitors = set(faulty_nodes(spec.faults))
        self.totals: dict[int, dict[str, int]] = {}
        self._offsets: dict[int, int] = {}
        self.live = Live(self._render({}), refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.__exit__(t, e, tb)

    def update(self, cluster: ProcessCluster, ticks: dict[int, int | None]) -> None:
        lines = {i: last_decision(cluster.log_path(i)) for i in range(self.spec.nodes)}
        self._accumulate(cluster)
        self.live.update(self._render(lines, cluster))

    def _accumulate(self, cluster: ProcessCluster) -> None:
        # Incrementally sum counters from each log (only the new bytes are read).
        for i in range(self.spec.nodes):
            path = cluster.log_path(i)
            t = self.totals.setdefault(
                i, {"dropped": 0, "late": 0, "corrected": 0, "ticks": 0, "withheld": 0}
            )
            try:
                with path.open("rb") as fh:
                    fh.seek(self._offsets.get(i, 0))
                    data = fh.read()
            except OSError:
                continue
            cut = data.rfind(b"\n") + 1
            self._offsets[i] = self._offsets.get(i, 0) + cut
            for raw in data[:cut].decode(errors="replace").splitlines():
                record = parse_line(raw)
                if record is not None:
                    t["ticks"] += 1
                    t["dropped"] += record.dropped
                    t["late"] += record.late
                    t["corrected"] += record.corrected
                    t["withheld"] += record.withheld is not None

    def _render(
        self, lines: dict[int, DecisionRecord | None], cluster: ProcessCluster | None = None
    ) -> Panel:
        s = self.spec
        table = Table(expand=True, show_edge=False)
        for col in (
            "board",
            "role",
            "tick",
            "own reading",
            "voted output",
            "vector ok",
            "withheld",
            "dropped",
            "late",
            "ECC fixed",
        ):
            table.add_column(col, justify="right" if col not in ("role",) else "left")
        for i in range(s.nodes):
            line = lines.get(i)
            role = "[red]traitor[/]" if i in self.traitors else "[green]loyal[/]"
            t = self.totals.get(i, {})
            alive = cluster is None or i in cluster.running()
            if line is None:
                table.add_row(str(i), role, "-", "", "", "", "", "", "", "")
                continue
            ok = sum(1 for v in line.vector or [] if v is not None)
            table.add_row(
                str(i),
                role if alive else "[yellow]restarting[/]",
                str(line.tick),
                _fmt(line.local),
                _fmt(line.output),
                f"{ok}/{s.nodes}",
                str(t.get("withheld", 0)),
                str(t.get("dropped", 0)),
                str(t.get("late", 0)),
                str(t.get("corrected", 0)),
            )
        # Only published decisions count: a withheld one was never output.
        loyal = [
            x
            for i, x in lines.items()
            if i not in self.traitors and x is not None and x.published
        ]
        newest = max((y.tick for y in loyal), default=-1)
        common = {json.dumps(x.vector) for x in loyal if x.tick == newest}
        head = Text.from_markup(
            f"[b]{s.nodes} boards[/], {s.algorithm.upper()}({s.m}) at {s.tick_hz:g} Hz, "
            f"{s.baud} baud, faults: {', '.join(f.describe() for f in s.faults) or 'none'}\n"
            + (
                "loyal boards hold [green]the same vector[/]"
                if len(common) == 1
                else "loyal boards: waiting for a common tick"
                if not common
                else "[red]loyal vectors differ[/]"
            )
        )
        return Panel(Group(head, table), title="firmware-sim", border_style="blue")
