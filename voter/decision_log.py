"""The decision log (SPEC.md): one JSON line per decided tick, plus event lines, per node.

Every line is flushed to the kernel when written, so a board killed with
SIGKILL loses no decision it had logged; fsync is not called per tick (SD-card
wear), so only a power cut can lose the last lines. Files are rotated by size
(`node<ID>.jsonl.1` ... `.3`), so a board in service cannot fill its disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from voter.core.record import DecisionRecord

#: A board at 50 Hz writes ~1.3 GB a day; past this size the log is rotated.
ROTATE_BYTES = 256 * 1024 * 1024
KEEP_FILES = 3


class DecisionLog:
    """Append-only JSON Lines, rotated to `.1`, `.2`, ... when it passes `rotate_bytes`.

    Rotation happens between lines, so every file holds whole lines; the newest
    decisions are always in `path` (what the rig and checkers read).
    """

    def __init__(self, path: Path, rotate_bytes: int = ROTATE_BYTES, keep: int = KEEP_FILES):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self._fh: TextIO = path.open("a", encoding="utf-8")
        self._size = self._fh.tell()
        self.lines = 0
        #: HIL over a serial control port: every line also goes to the rig (must not raise)
        self.tap: Callable[[str], None] | None = None

    def event(self, event: str, **fields: Any) -> None:
        self._write({"event": event, **fields})

    def write(self, line: DecisionRecord | dict[str, Any]) -> None:
        """A line the tick driver built (a decision record or an event)."""
        self._write(line.to_json() if isinstance(line, DecisionRecord) else line)

    def _write(self, obj: dict[str, Any]) -> None:
        text = json.dumps(obj, separators=(",", ":")) + "\n"
        if self.rotate_bytes and self._size + len(text) > self.rotate_bytes:
            self._rotate()
        self._fh.write(text)
        self._fh.flush()
        self._size += len(text)
        self.lines += 1
        if self.tap is not None:
            self.tap(text[:-1])

    def _rotate(self) -> None:
        self._fh.close()
        for k in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{k}")
            if older.exists():
                older.rename(self.path.with_name(f"{self.path.name}.{k + 1}"))
        self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        self.path.with_name(f"{self.path.name}.{self.keep + 1}").unlink(missing_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._size = 0

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, fsync: bool = True) -> None:
        try:
            if fsync:
                self.sync()
        finally:
            self._fh.close()
