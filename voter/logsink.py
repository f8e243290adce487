"""Operational log lines for voterd: journald with structured fields, or one plain stderr line.

Under systemd (JOURNAL_STREAM names our stderr) and with systemd-python installed, `Log` sends
MESSAGE, PRIORITY and VOTER_* fields (VOTER_NODE, VOTER_TICK, ...) so `journalctl
VOTER_NODE=2` works. Everywhere else it writes `voterd[node 2]: message key=value ...` on stderr.

This is not the decision log (node<ID>.jsonl, see SPEC.md), and it must never raise: a broken
journal socket or closed stderr must not stop a board that is voting correctly.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

# syslog priorities, as journald and sd-daemon(3) number them.
PRIORITY_ERROR = 3
PRIORITY_WARNING = 4
PRIORITY_INFO = 6

_FIELD_RE = re.compile(r"[^A-Z0-9_]")
_PLAIN_RE = re.compile(r"[^\s=\"']+")

JournalSend = Callable[..., Any]


def _journal_send() -> JournalSend | None:
    try:
        from systemd import journal  # systemd-python: the optional `voter[systemd]` extra
    except ImportError:
        return None
    send: JournalSend = journal.send
    return send


def _stderr_is_journal(stream: TextIO, env: Mapping[str, str]) -> bool:
    """True if systemd connected `stream` to the journal (systemd.exec(5), JOURNAL_STREAM).

    Checked by device:inode rather than "not a tty": firmware-sim and tests give voterd a pipe
    for stderr and expect to read the lines there, not find them in the host's journal.
    """
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev_s, ino_s = value.split(":", 1)
        st = os.fstat(stream.fileno())
        return st.st_dev == int(dev_s) and st.st_ino == int(ino_s)
    except (ValueError, OSError, AttributeError):
        return False


def field_name(key: str) -> str:
    """The journald field for a keyword argument: `tick` -> `VOTER_TICK`."""
    return "VOTER_" + _FIELD_RE.sub("_", key.upper())[:58]


def _plain(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, str) and not _PLAIN_RE.fullmatch(value):
        # Quote anything with spaces, '=' or quotes so `key=value` pairs stay parseable.
        text = json.dumps(value)
    return text


class Log:
    """Structured operational log for one node."""

    def __init__(
        self,
        node: int | None = None,
        *,
        ident: str = "voterd",
        stream: TextIO | None = None,
        journal: JournalSend | bool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`journal`: None = decide automatically, False = never, or a send function to use."""
        self.node = node
        self.ident = ident
        self._stream = stream
        env = os.environ if env is None else env
        self._send: JournalSend | None
        under_journal = _stderr_is_journal(self.stream, env)
        if journal is None:
            send = _journal_send()
            self._send = send if send and under_journal else None
        elif journal is False or journal is True:
            self._send = _journal_send() if journal else None
        else:
            self._send = journal
        # Without systemd-python but with stderr going to the journal, a "<3>" prefix still
        # carries the priority (systemd.exec(5) SyslogLevelPrefix=, on by default).
        self._level_prefix = under_journal and self._send is None
        self.write_errors = 0

    @property
    def stream(self) -> TextIO:
        # Looked up at each write so a test's or a redirected sys.stderr is honoured.
        return self._stream if self._stream is not None else sys.stderr

    @property
    def to_journal(self) -> bool:
        return self._send is not None

    def event(self, message: str, **fields: object) -> None:
        self.log(PRIORITY_INFO, message, **fields)

    def warning(self, message: str, **fields: object) -> None:
        self.log(PRIORITY_WARNING, message, **fields)

    def error(self, message: str, **fields: object) -> None:
        self.log(PRIORITY_ERROR, message, **fields)

    def log(self, priority: int, message: str, **fields: object) -> None:
        """Emit one record; never raises."""
        message = message.replace("\n", " ")
        if self._send is not None:
            extra: dict[str, str] = {}
            if self.node is not None:
                extra["VOTER_NODE"] = str(self.node)
            for k, v in fields.items():
                extra[field_name(k)] = v if isinstance(v, str) else json.dumps(v, default=str)
            try:
                self._send(message, PRIORITY=str(priority), SYSLOG_IDENTIFIER=self.ident, **extra)
                return
            except Exception:
                # The journal socket can vanish (journald restart); fall through to stderr.
                self.write_errors += 1
        self.stream_line(priority, message, fields)

    def format_line(self, message: str, fields: Mapping[str, object]) -> str:
        who = f"{self.ident}[node {self.node}]" if self.node is not None else self.ident
        parts = [f"{who}: {message}"]
        parts += [f"{k}={_plain(v)}" for k, v in fields.items()]
        return " ".join(parts)

    def stream_line(self, priority: int, message: str, fields: Mapping[str, object]) -> None:
        line = self.format_line(message, fields)
        if self._level_prefix:
            line = f"<{priority}>{line}"
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            # ValueError: write to a closed file. Nothing sensible to do but count it.
            self.write_errors += 1
