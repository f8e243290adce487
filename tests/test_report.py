"""Campaign reports people act on: metadata, totals, an honest legend, reproduce commands
that leave the report alone, progress after the runs, and a plain install that runs it all."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.outcome import timeline
from tests.conftest import BIN, ROOT, run_cli
from tests.test_checks_published import READINGS, cluster, line

SMOKE = ROOT / "campaigns" / "smoke.toml"
IMPOSSIBLE = "om1-n3-impossible"  # sim, 200 ticks, a violation that shrinks to 1 tick


def run_smoke(out: Path, *args: str) -> dict:
    proc = run_cli("hil", "campaign", "run", str(SMOKE), "--out", str(out), *args, timeout=600)
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    return json.loads((out / "report.json").read_text())


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of a report directory, by its path inside it."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_timeline_tells_a_faulty_peers_error_from_a_wrong_board() -> None:
    """An ERROR entry for the traitor or for a board that is down is expected ("peer-error");
    one for a loyal board that decided is this board's fault ("error"); the traitor's own
    lines are "faulty", never "ok"."""
    logs = cluster(ticks=4)
    vector = [list(r) for r in READINGS]
    no_traitor = [*vector[:3], None]
    for t in range(4):
        for i in (0, 1, 2):
            logs[i].decisions[t] = line(t, i, vector=no_traitor)
    del logs[1].decisions[2]  # board 1 down at tick 2: board 0 has no value for it either
    logs[0].decisions[2] = line(2, 0, vector=[vector[0], None, vector[2], None])
    logs[2].decisions[3] = line(3, 2, vector=[None, vector[1], vector[2], None])
    rows = timeline(logs, 4, faulty=[3])
    assert ["peer-error"] * 4 == rows[0]
    assert ["peer-error", "peer-error", "down", "peer-error"] == rows[1]
    assert ["peer-error", "peer-error", "peer-error", "error"] == rows[2]
    assert ["faulty"] * 4 == rows[3]
    assert "error" == timeline(logs, 4)[0][0]  # without knowing the traitor: a wrong board


def test_report_has_metadata_totals_and_legend(tmp_path: Path) -> None:
    """report.json's meta names date, version, commit, host and command line; report.html
    shows them, "N of M shown" for violations, and the legend in words."""
    out = tmp_path / "r"
    report = run_smoke(out, "--only", IMPOSSIBLE)
    meta = report["meta"]
    assert {"date", "version", "commit", "host", "command"} <= set(meta)
    assert meta["date"].endswith("Z") and meta["version"] not in ("", "unknown")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if head:  # this checkout, installed editable by make: the commit is known
        assert meta["commit"].startswith(head)
    assert meta["command"] == shlex.join(
        ["hil", "campaign", "run", str(SMOKE), "--out", str(out), "--only", IMPOSSIBLE]
    )
    page = (out / "report.html").read_text()
    (s,) = report["scenarios"]
    total = sum(s["violation_counts"].values())
    assert total > 5
    assert f"Violations: 5 of {total} shown" in page
    assert meta["commit"] in page and meta["host"] in page
    assert "holds an ERROR entry for a faulty or silent peer" in page
    assert "this board is wrong" in page


def test_reproduce_commands_leave_the_report_untouched(tmp_path: Path) -> None:
    """The reproduce and shrunk commands in report.json write to their own directories under
    OUT/repro; the first report's files stay byte for byte as they were."""
    out = tmp_path / "r"
    report = run_smoke(out, "--only", IMPOSSIBLE)
    before = snapshot(out)
    (s,) = report["scenarios"]
    for command in (s["command"], s["shrunk"]["command"]):
        argv = shlex.split(command)
        assert "hil" == argv[0]
        proc = run_cli(*argv, timeout=600)
        assert 0 == proc.returncode, proc.stdout + proc.stderr
        again = Path(argv[argv.index("--out") + 1])
        assert again.parent == out / "repro" and (again / "report.json").exists()
    after = snapshot(out)
    assert before == {k: v for k, v in after.items() if k in before}
    assert {"report.json", "report.html", "junit.xml"} <= set(before)


def read_pty(argv: list[str], timeout_s: float) -> tuple[int, str]:
    """Run argv with stdout and stderr on a real pty (so the progress bar is on); its output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode(errors="replace")


def test_shrink_and_plot_phase_shows_progress_with_rate_and_eta(tmp_path: Path) -> None:
    """On a terminal, after the runs' bar, a second bar counts the shrink and plot phase
    with a rate and an ETA (it used to be silent)."""
    argv = [str(BIN / "hil"), "campaign", "run", str(SMOKE), "--out", str(tmp_path / "r")]
    code, text = read_pty([*argv, "--only", IMPOSSIBLE], timeout_s=300)
    assert 0 == code, text[-2000:]
    assert "shrinking" in text or "report" in text
    assert re.search(r"\d+\.\d\d/s", text) and "ETA" in text
    assert text.count("1/1") >= 2  # the runs' bar and the report's bar both finished


@pytest.mark.slow
def test_plain_install_runs_a_campaign_without_plots(tmp_path: Path) -> None:
    """`pip install .` with no extras (no matplotlib): hil campaign run and merge work, say in
    one line on stderr that plots need voter[report], and report.html says so too."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert 0 == pip.returncode, pip.stderr[-3000:]
    hil = str(venv / "bin" / "hil")
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import matplotlib"], capture_output=True, check=False
    )
    assert 0 != probe.returncode  # the point of the test: no matplotlib in a plain install
    out = tmp_path / "r"
    proc = subprocess.run(
        [hil, "campaign", "run", str(SMOKE), "--out", str(out), "--only", IMPOSSIBLE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert 0 == proc.returncode, proc.stderr
    assert "Traceback" not in proc.stderr
    notes = [x for x in proc.stderr.splitlines() if "voter[report]" in x]
    assert 1 == len(notes) and notes[0].startswith("hil: note: "), proc.stderr
    page = (out / "report.html").read_text()
    assert 'id="no-plots"' in page and "voter[report]" in page
    assert json.loads((out / "report.json").read_text())["meta"]["commit"] == "unknown"
    merged = subprocess.run(
        [hil, "campaign", "merge", "--out", str(tmp_path / "m"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 0 == merged.returncode and "Traceback" not in merged.stderr, merged.stderr
    assert (tmp_path / "m" / "report.html").exists()
