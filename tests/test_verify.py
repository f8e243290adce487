"""`hil verify`: the adversary search proves the bounds and finds the impossibilities."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess

import pytest

from hil.verify import search
from tests.conftest import BIN, run_cli


def verify(*args: str) -> dict[str, object]:
    """The --json result; the exit status says the same (SPEC: 0 iff it holds, here 1 if not)."""
    proc = run_cli("hil", "verify", *args, "--json", timeout=600)
    out: dict[str, object] = json.loads(proc.stdout)
    assert (0 if out["holds"] else 1) == proc.returncode, proc.stderr
    assert "" == proc.stderr  # no terminal: no progress bar
    return out


def test_n3_om1_one_traitor_counterexample() -> None:
    """N=3, OM(1), 1 traitor: the exhaustive search prints a counterexample (impossibility)."""
    out = verify("--nodes", "3", "--m", "1", "--algorithm", "om", "--traitors", "1")
    assert out["holds"] is False and out["exhaustive"] is True
    ce = out["counterexample"]
    assert isinstance(ce, dict)
    assert ce["agreement"] is False or ce["validity"] is False
    assert 1 == len(ce["messages"])  # minimal: one lie is enough


def test_n4_om1_two_traitors_counterexample() -> None:
    """N=4, OM(1), 2 traitors: beyond N > 3f, a violation is found."""
    out = verify("--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "2")
    assert out["holds"] is False


def test_n4_om1_one_traitor_holds_exhaustively() -> None:
    """N=4, OM(1), 1 traitor: every placement and every message choice keeps IC1 and IC2."""
    out = verify("--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "1")
    assert out["holds"] is True and out["exhaustive"] is True
    assert out["checked"] == out["space"] == 81


def test_n3_sm1_one_traitor_holds_exhaustively() -> None:
    """N=3, SM(1), 1 traitor: signatures make three generals enough."""
    out = verify("--nodes", "3", "--m", "1", "--algorithm", "sm", "--traitors", "1")
    assert out["holds"] is True and out["exhaustive"] is True
    assert out["checked"] == out["space"]


def test_n4_sm2_two_traitors_holds_sampled() -> None:
    """N=4, SM(2), 2 colluding traitors: 4,000 sampled cases (of 442,368) keep agreement."""
    out = verify(
        "--nodes",
        "4",
        "--m",
        "2",
        "--algorithm",
        "sm",
        "--traitors",
        "2",
        "--max-runs",
        "0",
        "--samples",
        "4000",
    )
    assert out["holds"] is True and out["exhaustive"] is False
    assert 4000 == out["checked"]


def test_n7_om2_two_traitors_holds_sampled() -> None:
    """N=7, OM(2), 2 traitors: 1,500 sampled cases of a 2e25 space keep agreement and validity."""
    out = verify(
        "--nodes", "7", "--m", "2", "--algorithm", "om", "--traitors", "2", "--samples", "1500"
    )
    assert out["holds"] is True and out["exhaustive"] is False
    assert 1500 == out["checked"]


def test_n4_sm1_two_traitors_violates() -> None:
    """N=4, SM(1), 2 traitors: f > m, so a colluding pair splits the lieutenants."""
    r = search(4, 1, "sm", 2)
    assert r.holds is False


def test_sampled_violation_is_shrunk() -> None:
    """A sampled search shrinks its counterexample to a few deviating messages."""
    r = search(4, 1, "om", 2, max_runs=0, samples=200, seed=3)
    assert r.holds is False and r.counterexample is not None
    assert r.counterexample.deviations() <= 3


def test_human_output_states_the_count() -> None:
    """The human output says how many cases were checked and how."""
    proc = run_cli(
        "hil", "verify", "--nodes", "4", "--m", "1", "--algorithm", "om", "--traitors", "1"
    )
    assert 0 == proc.returncode
    assert "exhaustive: all 81 cases" in proc.stdout and "holds" in proc.stdout


@pytest.mark.parametrize("args", [["--nodes", "1"], ["--nodes", "4", "--traitors", "9"]])
def test_bad_arguments_are_one_line(args: list[str]) -> None:
    """Impossible parameters: one line on stderr, exit 2."""
    base = {"--nodes": "4", "--m": "1", "--algorithm": "om", "--traitors": "1"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    proc = run_cli("hil", "verify", *flat)
    assert 2 == proc.returncode and "Traceback" not in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())


def test_a_counterexample_exits_1_in_the_human_form_too() -> None:
    """A script can tell without --json: the impossibility exits 1 and prints the violation."""
    proc = run_cli(
        "hil", "verify", "--nodes", "3", "--m", "1", "--algorithm", "om", "--traitors", "1"
    )
    assert 1 == proc.returncode and "VIOLATION" in proc.stdout
    assert "" == proc.stderr


def test_progress_shows_rate_and_time_left_on_a_terminal() -> None:
    """stderr on a (pseudo-)terminal: a bar with cases/s and the time left; stdout stays JSON."""
    main, sub = pty.openpty()
    cmd = ["verify", "--nodes", "4", "--m", "2", "--algorithm", "sm", "--traitors", "2"]
    proc = subprocess.Popen(
        [str(BIN / "hil"), *cmd, "--max-runs", "0", "--samples", "5000", "--json"],
        stdout=subprocess.PIPE,
        stderr=sub,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(sub)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)  # EIO once the child closed the terminal
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert 0 == proc.returncode
    assert 5000 == json.loads(out)["checked"]
    screen = seen.decode(errors="replace")
    assert re.search(r"\d[\d,]* cases/s", screen) and "left" in screen, screen[-400:]
    assert re.search(r"\d+/5000", screen)


def test_help_has_defaults_examples_and_exit_status() -> None:
    proc = run_cli("hil", "verify", "--help")
    assert 0 == proc.returncode
    flat = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    for needle in ("(default: 20000)", "examples:", "hil verify --nodes 3", "exit status:"):
        assert needle in flat
    assert re.search(r"^\s+1\s+a counterexample was found", proc.stdout, re.M)
