"""Shared fixtures: paths of the installed console scripts and example files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"


def run_cli(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (e.g. 'hil', 'generals', ...) as a user would."""
    cmd = [str(BIN / args[0]), *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload,no-any-return]


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    return run_cli
