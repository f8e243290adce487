"""voterd's command line, run as a user would (no board started): --help, --version, misuse."""

from __future__ import annotations

import re

from tests.conftest import run_cli


def test_voterd_has_help_and_version() -> None:
    """SPEC: every command has --help and --version (`voterd X.Y.Z` on stdout, exit 0)."""
    helped = run_cli("voterd", "--help")
    assert 0 == helped.returncode, helped.stderr
    assert "--version" in helped.stdout
    versioned = run_cli("voterd", "--version")
    assert 0 == versioned.returncode, versioned.stderr
    assert re.fullmatch(r"voterd \d+\.\d+\.\d+\S*\n", versioned.stdout), versioned.stdout


def test_start_at_without_hil_is_one_line_and_exit_2() -> None:
    """--start-at is refused before any file is read: one line, no traceback."""
    proc = run_cli("voterd", "--config", "missing.toml", "--node", "0", "--start-at", "1.0")
    assert 2 == proc.returncode
    assert ["voterd: error: --start-at is a HIL option (add --hil)"] == proc.stderr.splitlines()
