"""Progress bars for hil's long loops: count, rate and time left, on stderr only.

stdout carries results (and --json), so a bar never goes there; off a terminal
there is no bar at all (a log file would fill with redraws).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

#: hears (done, total) from a loop
Update = Callable[[int, int], None]


class RateColumn(ProgressColumn):
    """Items per second, e.g. "1,840 cases/s" or "0.42/s" (rich's own speed column counts
    bytes): rich's moving window, else the mean so far, "?" before the first item."""

    def __init__(self, unit: str = "", digits: int = 0) -> None:
        super().__init__()
        self.unit = f" {unit}" if unit else ""
        self.digits = digits

    def render(self, task: Task) -> Text:
        mean = task.completed / task.elapsed if task.completed and task.elapsed else None
        speed = task.finished_speed or task.speed or mean
        text = "?" if speed is None else f"{speed:,.{self.digits}f}"
        return Text(f"{text}{self.unit}/s", style="progress.data.speed")


@contextmanager
def counting_bar(what: str, unit: str, *, enabled: bool | None = None) -> Iterator[Update]:
    """A bar `what [####    ] done/total  rate  elapsed  ~left`; `enabled` defaults to
    "stderr is a terminal". Cleared when the loop ends, so the result stands alone."""
    on = sys.stderr.isatty() if enabled is None else enabled
    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not on,
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
