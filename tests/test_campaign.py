"""HIL campaigns: the seed's theorems in the simulator and on ptys, determinism, reports."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hil.campaign import load_campaign, run_scenario
from hil.sim import SimConfig, simulate
from tests.conftest import ROOT, run_cli
from voter.faultmodel import parse_fault

CAMPAIGNS = ROOT / "campaigns"
#: how many scenarios the shipped smoke campaign has (counted, not written down twice)
SMOKE_SCENARIOS = len(tomllib.loads((CAMPAIGNS / "smoke.toml").read_text())["scenario"])


def campaign(
    tmp_path: Path, name: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / name
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(CAMPAIGNS / f"{name}.toml"),
        "--out",
        str(out),
        *args,
        timeout=600,
    )
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return proc, report


def test_seed_theorems_pass_in_the_simulator(tmp_path: Path) -> None:
    """Every claim of the seed holds, and both impossibility scenarios find their violation."""
    proc, report = campaign(tmp_path, "seed-theorems")
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    by_name = {s["name"]: s for s in report["scenarios"]}
    assert 10 == len(by_name) and all(s["passed"] for s in by_name.values())
    n3 = by_name["om1-n3-one-liar-impossible"]
    assert "violation" == n3["outcome"] and n3["inside_bound"] is False
    # The shipped boards (fail-silent) publish nothing wrong there, and nothing at all.
    withheld = by_name["om1-n3-one-liar-withheld"]
    assert "safe" == withheld["outcome"] and max(withheld["availability"].values()) < 0.05
    assert n3["shrunk"]["ticks"] == 1
    assert by_name["om1-n4-equivocating-liar"]["inside_bound"] is True
    assert {
        "name",
        "expect",
        "outcome",
        "passed",
        "ticks",
        "violations",
        "counters",
        "seed",
        "command",
    } <= set(n3)


@pytest.mark.parametrize("name", ["smoke", "timing", "bitflips", "hybrid"])
def test_every_shipped_campaign_meets_its_expectations_in_the_simulator(
    tmp_path: Path, name: str
) -> None:
    """A shipped campaign whose scenario no longer gets its expected outcome is a broken example.

    timing.toml once expected a violation from two delayed links, one of which led into
    the traitor (so it was one more fault on the liar, still inside the bound): found
    only because nothing ran it.
    """
    proc, report = campaign(tmp_path, name, "--ticks", "300")
    failed = [s["name"] for s in report.get("scenarios", []) if not s["passed"]]
    assert 0 == proc.returncode and not failed, failed or proc.stdout + proc.stderr


def test_shrunk_violation_reproduces_from_its_command(tmp_path: Path) -> None:
    """The one-scenario file written for a shrunk violation reproduces it."""
    _, report = campaign(tmp_path, "seed-theorems", "--only", "om1-n3-one-liar-impossible")
    repro = report["scenarios"][0]["shrunk"]["file"]
    proc = run_cli("hil", "campaign", "run", repro, "--out", str(tmp_path / "again"))
    assert 0 == proc.returncode  # it expects the violation, and finds it again
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert "violation" == again["scenarios"][0]["outcome"]


def test_seed_theorems_pass_on_real_processes(tmp_path: Path) -> None:
    """The same file in --mode pty (60 ticks per scenario, at most 25 Hz) passes every scenario."""
    proc, report = campaign(
        tmp_path,
        "seed-theorems",
        "--mode",
        "pty",
        "--ticks",
        "60",
        "--max-tick-hz",
        "25",
        "--no-shrink",
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert all(s["passed"] for s in report["scenarios"])
    assert {"pty"} == {s["mode"] for s in report["scenarios"]}


def test_broken_core_is_caught_by_the_seed_theorems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Mutation: OM's majority replaced by 'take the commander's value'; the campaign fails."""
    from voter.core import om

    monkeypatch.setattr(om, "majority", lambda values, default: values[0])
    c = load_campaign(CAMPAIGNS / "seed-theorems.toml")
    failed = [s.name for s in c.scenarios if not run_scenario(s, "sim", tmp_path).passed]
    assert failed, "the mutated core passed every seed theorem"
    assert any(name.startswith("om1-n4") for name in failed)


def test_same_seed_same_history_other_seed_other_history() -> None:
    """Replaying a seed gives an identical history hash; another seed differs."""
    faults = [
        parse_fault("traitor:3:random", 4),
        parse_fault("link-bitflip:0-1:1e-3", 4),
        parse_fault("memory-bitflip:2:5/s", 4),
    ]
    runs = [simulate(SimConfig(ticks=300, seed=s, faults=faults)).history_hash for s in (4, 4, 5)]
    assert runs[0] == runs[1] != runs[2]


def test_reports_junit_and_html(tmp_path: Path) -> None:
    """junit.xml has a testcase per scenario; report.html parses and shows every scenario."""
    proc, report = campaign(tmp_path, "smoke")
    assert 0 == proc.returncode, proc.stdout
    out = tmp_path / "smoke"
    suite = ET.parse(out / "junit.xml").getroot()
    assert len(report["scenarios"]) == len(suite.findall("testcase")) == SMOKE_SCENARIOS
    assert "0" == suite.get("failures")

    class Page(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows = 0
            self.images = 0
            self.ids: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "tr":
                self.rows += 1
            if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
                self.images += 1
            if a.get("id"):
                self.ids.add(a["id"] or "")

    page = Page()
    page.feed((out / "report.html").read_text())
    assert {"summary", "verdict", "coverage"} <= page.ids
    assert {s["name"] for s in report["scenarios"]} <= page.ids
    assert page.images >= 7  # one timeline per scenario plus coverage


# As the machine notes say: headless, no sandbox as root, and no background network traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Chromium not installed (.ci/run installs it)",
)
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium loads report.html and its DOM holds the verdict, every timeline image, the
    run's metadata, "N of M shown" for violations and the legend in words; the reproduce
    command it shows runs and leaves that report as it was."""
    proc0, report = campaign(tmp_path, "smoke", "--only", "om1-n3-impossible")
    assert 0 == proc0.returncode
    page = tmp_path / "smoke" / "report.html"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    proc = subprocess.run(
        [
            str(browser),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr[-2000:]
    assert "1 of\n1 scenarios passed" in proc.stdout or "1 of 1 scenarios passed" in proc.stdout
    assert proc.stdout.count("data:image/png;base64,") >= 1
    dom = proc.stdout
    meta = report["meta"]
    for label, key in (
        ("date (UTC)", "date"),
        ("voter version", "version"),
        ("git commit", "commit"),
    ):
        assert label in dom and html.escape(meta[key]) in dom
    assert "host" in dom and html.escape(meta["host"]) in dom and "hil campaign run" in dom
    total = sum(report["scenarios"][0]["violation_counts"].values())
    assert f"Violations: 5 of {total} shown" in dom
    assert "holds an ERROR entry for a faulty or silent peer (expected" in dom
    assert "holds an ERROR entry for a loyal peer that decided: this board is wrong" in dom
    reproduce = re.search(r"<p>Reproduce: <code>(.*?)</code></p>", dom)
    assert reproduce is not None
    before = {p.name: p.read_bytes() for p in page.parent.glob("report.*")}
    again = run_cli(*shlex.split(html.unescape(reproduce.group(1))), timeout=600)
    assert 0 == again.returncode, again.stderr
    assert before == {p.name: p.read_bytes() for p in page.parent.glob("report.*")}
    assert (page.parent / "repro" / "om1-n3-impossible" / "report.html").exists()
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(browser),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shards_merge_into_the_full_report(tmp_path: Path) -> None:
    """--shard 0/2 and 1/2, then merge: every scenario once, same verdicts as one run."""
    for i in (0, 1):
        proc = run_cli(
            "hil",
            "campaign",
            "run",
            str(CAMPAIGNS / "smoke.toml"),
            "--out",
            str(tmp_path / f"s{i}"),
            "--shard",
            f"{i}/2",
            "--no-shrink",
        )
        assert 0 == proc.returncode
    proc = run_cli(
        "hil",
        "campaign",
        "merge",
        "--out",
        str(tmp_path / "all"),
        str(tmp_path / "s0"),
        str(tmp_path / "s1"),
    )
    assert 0 == proc.returncode, proc.stderr
    merged = json.loads((tmp_path / "all" / "report.json").read_text())
    names = {s["name"] for s in merged["scenarios"]}
    assert SMOKE_SCENARIOS == len(merged["scenarios"]) == len(names)
    assert (tmp_path / "all" / "report.html").exists()


def test_parallel_jobs_give_the_same_results(tmp_path: Path) -> None:
    """--jobs 2 runs scenarios in processes; outcomes and history hashes match --jobs 1."""
    _, one = campaign(tmp_path / "a", "smoke", "--no-shrink")
    _, two = campaign(tmp_path / "b", "smoke", "--no-shrink", "--jobs", "2")
    key = [(s["name"], s["outcome"], s["history_hash"]) for s in one["scenarios"]]
    assert key == [(s["name"], s["outcome"], s["history_hash"]) for s in two["scenarios"]]


BAD = {
    "no scenarios": ("[campaign]\nname = 'x'\n", "no [[scenario]]"),
    "typo": ("[[scenario]]\nname = 'a'\nnodse = 4\n", "unknown key(s): nodse"),
    "bad fault": (
        "[[scenario]]\nname = 'a'\n[[scenario.fault]]\nkind = 'meteor'\n",
        "fault kind must be one of",
    ),
    "bad node": (
        "[[scenario]]\nname = 'a'\n[[scenario.fault]]\nkind = 'crash'\nnode = 9\nat_tick = 3\n",
        "node 9 is not in 0..3",
    ),
    "bad expect": ("[[scenario]]\nname = 'a'\nexpect = 'fine'\n", "expect must be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_campaign_file_is_one_line(tmp_path: Path, case: str) -> None:
    """A malformed campaign: one clear line, exit 2, no traceback."""
    text, expected = BAD[case]
    path = tmp_path / "c.toml"
    path.write_text(text)
    proc = run_cli("hil", "campaign", "run", str(path), "--out", str(tmp_path / "o"))
    assert 2 == proc.returncode and expected in proc.stderr
    assert "Traceback" not in proc.stderr and 1 == len(proc.stderr.strip().splitlines())


def test_serial_mode_says_what_it_needs(tmp_path: Path) -> None:
    """--mode serial without a rig file: one clear line, not a pretend run."""
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(CAMPAIGNS / "smoke.toml"),
        "--out",
        str(tmp_path / "o"),
        "--mode",
        "serial",
    )
    assert 2 == proc.returncode and "needs --rig RIG.toml" in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())


def test_ticks_override_that_cuts_off_a_fault_is_one_line(tmp_path: Path) -> None:
    """--ticks 50 on stall.toml would drop stalls at ticks 100-200 silently: refused instead."""
    proc, _ = campaign(tmp_path, "stall", "--ticks", "50")
    assert 2 == proc.returncode and "Traceback" not in proc.stderr
    assert "beyond the run" in proc.stderr and 1 == len(proc.stderr.strip().splitlines())
