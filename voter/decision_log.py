"""The decision log (SPEC.md): one JSON line per decided tick, plus event lines, per node.

Every line is flushed to the kernel when written, so a board killed with
SIGKILL loses no decision it had logged; fsync is not called per tick (SD-card
wear), so only a power cut can lose the last lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from voter.core.board import TickReport
from voter.core.ic import as_json_vector


class DecisionLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: TextIO = path.open("a", encoding="utf-8")
        self.lines = 0

    def decision(self, report: TickReport, algorithm: str, **extra: Any) -> None:
        d = report.decision
        line: dict[str, Any] = {
            "tick": d.tick,
            "node": d.node,
            "algorithm": algorithm,
            "local": list(d.local) if isinstance(d.local, tuple) else d.local,
            "vector": as_json_vector(d.vector),
            "output": list(d.output),
            "messages": d.messages,
            "late": report.late,
            "dropped": report.dropped,
        }
        line.update(extra)
        self._write(line)

    def event(self, event: str, **fields: Any) -> None:
        self._write({"event": event, **fields})

    def _write(self, obj: dict[str, Any]) -> None:
        self._fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.lines += 1

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, fsync: bool = True) -> None:
        try:
            if fsync:
                self.sync()
        finally:
            self._fh.close()
