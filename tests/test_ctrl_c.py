"""Ctrl-C in hil's long commands: one line, exit 130, no traceback, nothing left running.

A terminal's Ctrl-C goes to the whole foreground process group (pool workers and
boards included); the tests send SIGINT that way, except where sending it to hil
alone proves more (pty mode: hil itself must stop the boards it started).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "hil"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the test plays the terminal
    )


def _interrupted(proc: subprocess.Popen[str], *, group: bool) -> tuple[str, str]:
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # leave nothing behind a failing test
        proc.communicate()
        raise
    assert 130 == proc.returncode, err
    assert "Traceback" not in err and 1 == len(err.strip().splitlines()), err
    assert err.strip().startswith("hil: interrupted:")
    return out, err


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _all_children(pid: int) -> list[int]:
    """Children started by any of `pid`'s threads (Dask's nannies spawn from its loop thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _ignores_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ign = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(ign, 16) & (1 << (signal.SIGINT - 1)))


def _naming(path: Path) -> list[str]:
    """Processes whose command line names `path` (every board, fabric and worker of a run)."""
    found = []
    for p in Path("/proc").iterdir():
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if p.name.isdigit() and str(path) in cmdline:
            found.append(cmdline)
    return found


def _wait_for(ok: object, timeout_s: float = 60, what: str = "the run to get going") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout_s} s for {what}")


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_in_a_sim_campaign(tmp_path: Path, jobs: int) -> None:
    """In-process, and --jobs 2 where the pool's workers stop too (they used to finish every
    queued scenario first, each printing a KeyboardInterrupt traceback)."""
    out = tmp_path / "o"
    proc = _start(
        "campaign", "run", str(ROOT / "campaigns" / "smoke.toml"), "--out", str(out),
        "--jobs", str(jobs), "--ticks", "20000", "--no-progress",
        "--only", "om1-n4-lying-lieutenant", "--only", "om1-n4-memory-flips",
        "--only", "sm1-n4-forger-and-noisy-link",
    )  # fmt: skip
    if jobs > 1:
        _wait_for(lambda: len(_children(proc.pid)) >= jobs)
    time.sleep(3.0)  # imports done, scenarios under way (each takes far longer)
    started = time.monotonic()
    _interrupted(proc, group=True)
    assert time.monotonic() - started < 10  # not after the queued scenarios
    assert not (out / "report.json").exists()
    time.sleep(0.3)
    assert [] == _naming(out)


def test_ctrl_c_in_a_pty_campaign_stops_every_board(tmp_path: Path) -> None:
    """SIGINT to hil alone, mid-run: it stops every voterd and the fabric it started."""
    out = tmp_path / "o"
    name = "om1-n4-lying-lieutenant"
    proc = _start(
        "campaign", "run", str(ROOT / "campaigns" / "smoke.toml"), "--out", str(out),
        "--mode", "pty", "--ticks", "5000", "--only", name, "--no-progress",
    )  # fmt: skip
    log = out / "runs" / name / "node0.jsonl"
    _wait_for(lambda: log.exists() and log.read_text().count('"vector"') > 20)
    _interrupted(proc, group=False)
    time.sleep(0.3)
    assert [] == _naming(out)
    for i in range(4):
        lines = (out / "runs" / name / f"node{i}.jsonl").read_text().splitlines()
        assert "stop" == json.loads(lines[-1]).get("event")  # each board stopped cleanly


def test_ctrl_c_in_verify(tmp_path: Path) -> None:
    """A long search interrupted: one line on stderr, nothing on stdout (a script sees 130)."""
    proc = _start(
        "verify", "--nodes", "7", "--m", "2", "--algorithm", "om", "--traitors", "2",
        "--max-runs", "0", "--samples", "10000000", "--json",
    )  # fmt: skip
    time.sleep(3.0)
    out, _ = _interrupted(proc, group=True)
    assert "" == out


def test_ctrl_c_in_a_dask_campaign(tmp_path: Path) -> None:
    """--engine dask: the local cluster's worker processes get the terminal's SIGINT too;
    one line (no worker's or nanny's log traceback), 130, no report, no worker left."""
    out = tmp_path / "o"
    proc = _start(
        "campaign", "run", str(ROOT / "campaigns" / "smoke.toml"), "--out", str(out),
        "--engine", "dask", "--workers", "2", "--ticks", "20000", "--no-progress",
        "--only", "om1-n4-lying-lieutenant", "--only", "om1-n4-memory-flips",
        "--only", "sm1-n4-forger-and-noisy-link",
    )  # fmt: skip
    # started: every worker ignores SIGINT from birth, and hil has its handler back
    try:
        _wait_for(
            lambda: (
                len([w for w in _all_children(proc.pid) if _ignores_sigint(w)]) >= 2
                and not _ignores_sigint(proc.pid)
            )
        )
    except AssertionError:
        os.killpg(proc.pid, signal.SIGKILL)  # leave nothing behind a failing test
        proc.communicate()
        raise
    workers = _all_children(proc.pid)
    _interrupted(proc, group=True)
    assert not (out / "report.json").exists()
    # each worker exits when it sees its parent gone (Dask's parent-alive pipe)
    _wait_for(lambda: not [w for w in workers if _running(w)], what="the workers to exit")


def test_a_hung_exit_after_ctrl_c_dumps_its_threads_and_ends() -> None:
    """Nothing left after "interrupted" holds hil's exit: a thread that would never end (as a
    Dask client's finalizer once waited in CI) is not waited for; 130 at once."""
    code = (
        "import argparse, sys, threading, time\n"
        "from hil import cli\n"
        "threading.Thread(target=time.sleep, args=(600,), name='stuck').start()\n"
        "sys.exit(cli._interrupted(argparse.Namespace(cmd='cost-table')))\n"
    )
    proc = subprocess.run(
        [str(BIN / "python"), "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.stderr.startswith("hil: interrupted: stopped"), proc.stderr
    assert 130 == proc.returncode
    assert 0 != proc.returncode
