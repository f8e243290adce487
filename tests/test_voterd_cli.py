"""voterd's command line, run as a user would (no board started): --help, --version, misuse."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli
from voter.exitcodes import VOTERD_STATUSES


@pytest.mark.parametrize("command", ["voterd", "voter", "hil", "firmware-sim"])
def test_every_command_has_help_and_version(command: str) -> None:
    """SPEC: every command has --help and --version (`PROG X.Y.Z` on stdout, exit 0)."""
    helped = run_cli(command, "--help")
    assert 0 == helped.returncode, helped.stderr
    assert "--version" in helped.stdout
    versioned = run_cli(command, "--version")
    assert 0 == versioned.returncode, versioned.stderr
    assert re.fullmatch(rf"{command} \d+\.\d+\.\d+\S*\n", versioned.stdout), versioned.stdout


def test_start_when_told_misuse_is_one_line_and_exit_2() -> None:
    """--start-when-told is HIL only, and one way to start: both refused before any file is read."""
    proc = run_cli("voterd", "--config", "missing.toml", "--node", "0", "--start-when-told")
    assert ["voterd: error: --start-when-told is a HIL option (add --hil)"] == (
        proc.stderr.splitlines()
    )
    both = ("--hil", "--start-when-told", "--start-at", "1.0")
    proc = run_cli("voterd", "--config", "missing.toml", "--node", "0", *both)
    assert 2 == proc.returncode
    assert ["voterd: error: --start-at and --start-when-told are two ways to start: give one"] == (
        proc.stderr.splitlines()
    )


def test_start_at_without_hil_is_one_line_and_exit_2() -> None:
    """--start-at is refused before any file is read: one line, no traceback."""
    proc = run_cli("voterd", "--config", "missing.toml", "--node", "0", "--start-at", "1.0")
    assert 2 == proc.returncode
    assert ["voterd: error: --start-at is a HIL option (add --hil)"] == proc.stderr.splitlines()


def test_help_has_defaults_examples_and_exit_status() -> None:
    """voterd --help: defaults, an example as the unit runs it, and every exit status."""
    proc = run_cli("voterd", "--help")
    assert 0 == proc.returncode
    assert "(default: 0.0)" in " ".join(proc.stdout.split())  # --link-latency-us
    assert "voterd --config /etc/voter/cluster.toml --node 2" in proc.stdout
    for code, _ in VOTERD_STATUSES:
        assert re.search(rf"^\s+{code}\s+\S", proc.stdout, re.M), code
