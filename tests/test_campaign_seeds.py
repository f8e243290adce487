"""`--seeds FIRST..LAST`: one scenario run once per seed (the unit a soak farms out), and
every row's reproduce command runs that very run again, overrides included."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.conftest import ROOT, run_cli

SMOKE = ROOT / "campaigns" / "smoke.toml"
LIAR = "om1-n4-lying-lieutenant"


def test_seed_range_runs_each_seed_and_each_row_reproduces(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--only", LIAR, "--seeds", "3..5", "--ticks", "150", "--no-shrink"]
    proc = run_cli("hil", "campaign", "run", str(SMOKE), "--out", str(out), *args, timeout=600)
    assert 0 == proc.returncode, proc.stderr
    rows = json.loads((out / "report.json").read_text())["scenarios"]
    assert [f"{LIAR}-seed{k}" for k in (3, 4, 5)] == [r["name"] for r in rows]
    assert [3, 4, 5] == [r["seed"] for r in rows] and {150} == {r["ticks"] for r in rows}
    assert 3 == len({r["history_hash"] for r in rows})  # three different runs
    row = rows[1]
    argv = shlex.split(row["command"])
    # the file's scenario with this row's seed and length: without them it would rerun seed 7
    assert ["--only", LIAR, "--seed", "4", "--ticks", "150"] == argv[argv.index("--only") :]
    again = run_cli(*argv, timeout=600)
    assert 0 == again.returncode, again.stderr
    repro = Path(argv[argv.index("--out") + 1]) / "report.json"
    (rerun,) = json.loads(repro.read_text())["scenarios"]
    assert row["history_hash"] == rerun["history_hash"]


def test_seed_range_is_split_by_shards(tmp_path: Path) -> None:
    """--shard takes every Nth run of the expanded list: a Slurm array over a seed range."""
    out = tmp_path / "s"
    args = ["--only", LIAR, "--seeds", "0..4", "--shard", "1/2", "--ticks", "20", "--no-shrink"]
    proc = run_cli("hil", "campaign", "run", str(SMOKE), "--out", str(out), *args, timeout=600)
    assert 0 == proc.returncode, proc.stderr
    rows = json.loads((out / "report.json").read_text())["scenarios"]
    assert [1, 3] == [r["seed"] for r in rows]


def test_bad_seed_ranges_are_one_line(tmp_path: Path) -> None:
    for bad, message in (
        (["--seeds", "5"], "expected FIRST..LAST"),
        (["--seeds", "5..2"], "need 0 <= FIRST <= LAST"),
        (["--seeds", "1..2", "--seed", "3"], "give one"),
    ):
        proc = run_cli("hil", "campaign", "run", str(SMOKE), "--out", str(tmp_path), *bad)
        assert 2 == proc.returncode, proc.stderr
        assert message in proc.stderr and 1 == len(proc.stderr.strip().splitlines())


def test_a_large_seed_range_draws_only_its_failed_runs(tmp_path: Path) -> None:
    """Above PLOT_EVERY_RUN_UP_TO runs, report.html and plots/ hold the failed runs only (a
    10^4-seed soak would otherwise spend longer drawing than running); every run stays in
    the summary table and report.json. One scenario passes on every seed, the other is
    expected to violate and does not, so it fails on every seed."""
    from hil.report import PLOT_EVERY_RUN_UP_TO

    camp = tmp_path / "c.toml"
    one = '[[scenario]]\nname = "{}"\nnodes = 4\nalgorithm = "om"\nm = 1\nexpect = "{}"\n'
    camp.write_text(
        '[campaign]\nname = "many"\nticks = 10\nseed = 1\n'
        + one.format("clean", "safe")
        + one.format("wrongly-expected", "violation")
    )
    runs = PLOT_EVERY_RUN_UP_TO // 2 + 1  # per scenario: both together are over the limit
    out = tmp_path / "r"
    args = ["--seeds", f"1..{runs}", "--no-shrink", "--no-progress"]
    proc = run_cli("hil", "campaign", "run", str(camp), "--out", str(out), *args, timeout=600)
    assert 1 == proc.returncode, proc.stderr
    rows = json.loads((out / "report.json").read_text())["scenarios"]
    failed = {r["name"] for r in rows if not r["passed"]}
    assert 2 * runs == len(rows) and runs == len(failed)
    assert all(n.startswith("wrongly-expected") for n in failed)
    page = (out / "report.html").read_text()
    assert f"{2 * runs} runs: only the {runs} failed" in page
    assert runs == page.count("<section id=")
    plotted = {p.stem for p in (out / "plots").glob("*.png")} - {"coverage"}
    if plotted:  # matplotlib installed: the failed runs' timelines, nothing else
        assert failed == plotted
