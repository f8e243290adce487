"""Reading a user's text file (TOML, JSON) so that every failure is one line, never a traceback.

Every command that reads a file named on its command line (a cluster, a rig, a campaign,
a generals scenario, a shard's report) reads it here, so they all say the same thing about
a file that is missing, unreadable or not UTF-8 (e.g. a binary file or a Latin-1 export).
"""

from __future__ import annotations

from pathlib import Path


class TextFileError(ValueError):
    """The file cannot be read as UTF-8 text; the message is one line naming it."""


def read_text(path: Path) -> str:
    """The file's text; TextFileError ("cannot read P: why" or "P: not UTF-8 text") otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TextFileError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
