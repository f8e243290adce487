"""`hil campaign run --mode serial` end to end, with null-modem ptys standing in for the wiring.

Four real `voterd --hil` processes (each in a restart loop standing in for
systemd's Restart=on-failure) whose links and control port are tty paths; the
rig's ends of the same cables go into a rig file, and the campaign runs through
them exactly as it would through USB-serial adapters. Plus the rig file's
validation and the scenario/cluster mismatch message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.campaign import run_scenario
from hil.checks import check, read_run
from hil.rig import RigError, load_rig, mismatch
from hil.scenario import Scenario
from tests.conftest import ROOT, run_cli
from tests.nullmodem_rig import N, nullmodem_rig, write_cluster


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Path]:
    with nullmodem_rig(tmp_path) as rig_file:
        yield rig_file


CAMPAIGN = """
[campaign]
name = "rig-smoke"
ticks = 250
seed = 3

[[scenario]]
name = "om1-traitor-noisy-link-crash"
nodes = 4
algorithm = "om"
m = 1
expect = "safe"
  [[scenario.fault]]
  kind = "traitor"
  node = 3
  strategy = "equivocate"
  [[scenario.fault]]
  kind = "link-bitflip"
  link = "3-0"
  ber = 1e-3
  [[scenario.fault]]
  kind = "crash"
  node = 3
  at_tick = 90

[[scenario]]
name = "om1-traitor-and-dead-loyal-link"
nodes = 4
algorithm = "om"
m = 1
expect = "safe"
ticks = 150
  [[scenario.fault]]
  kind = "traitor"
  node = 3
  strategy = "equivocate"
  [[scenario.fault]]
  kind = "link-drop"
  link = "0-1"
  p = 1.0

[[scenario]]
name = "three-boards"
nodes = 3
algorithm = "om"
m = 1
"""


def test_campaign_runs_on_the_rig_and_is_judged_by_the_same_checker(
    rig: Path, tmp_path: Path
) -> None:
    camp = tmp_path / "rig-smoke.toml"
    camp.write_text(CAMPAIGN)
    out = tmp_path / "report"
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(camp),
        "--out",
        str(out),
        "--mode",
        "serial",
        "--rig",
        str(rig),
        "--no-progress",
        timeout=300,
    )
    assert (out / "report.json").exists(), proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    by = {s["name"]: s for s in report["scenarios"]}
    first = by["om1-traitor-noisy-link-crash"]
    assert first["passed"], (first, proc.stdout, proc.stderr)
    assert "serial" == first["mode"] and first["inside_bound"] is True
    assert first["counters"]["flipped_bits"] > 0 and first["counters"]["link_corrupted"] > 0
    assert 1 == first["counters"]["restarts"]  # board 3 crashed itself and came back
    assert 0 == first["stream"]["stream_lines_lost"]
    assert 0 == first["stream"]["commands_unacknowledged"]
    run_dir = Path(first["run_dir"])
    logs = read_run(run_dir, N)
    assert all(len(logs[i].decisions) == 250 for i in range(3))  # every loyal board, every tick
    joins = [e for e in logs[3].events if e["event"] == "joined"]
    assert ["common-start", "peers"] == [e["how"] for e in joins]
    assert max(logs[3].decisions) == 249  # re-joined and decided to the end
    # The rig's copy is the boards' own log, line for line.
    board_log = (tmp_path / "board-logs" / "node0.jsonl").read_text().splitlines()
    rig_log = (run_dir / "node0.jsonl").read_text().splitlines()
    assert rig_log and all(line in board_log for line in rig_log)

    beyond = by["om1-traitor-and-dead-loyal-link"]
    assert beyond["inside_bound"] is False
    assert "between loyal boards" in " ".join(beyond["fault_budget"]["reasons"])
    again = check(read_run(Path(beyond["run_dir"]), N), [3], window=(0, 149), period_us=4e4)
    assert beyond["outcome"] == ("safe" if again.holds else "violation")
    assert beyond["passed"] == (beyond["outcome"] == "safe")
    assert beyond["violation_counts"] == again.counts

    skipped = by["three-boards"]
    assert "skipped" == skipped["outcome"] and not skipped["passed"]
    assert "needs 3 nodes, OM(1); the boards run 4 nodes, OM(1)" in skipped["skipped"]
    assert 1 == proc.returncode  # a skipped scenario is not a pass
    assert "Traceback" not in proc.stderr


# -- without boards --------------------------------------------------------------------
def _cluster(tmp_path: Path) -> Path:
    ends = {(a, b): f"/dev/b{a}{b}" for a in range(N) for b in range(N) if a != b}
    return write_cluster(tmp_path, ends, [f"/dev/ctl{i}" for i in range(N)])


def _links(skip: str = "") -> str:
    out = ""
    for a in range(N):
        for b in range(a + 1, N):
            if f"{a}-{b}" != skip:
                out += f"[[link]]\na = {a}\nb = {b}\n"
                out += f'a_port = "/dev/r{a}{b}"\nb_port = "/dev/r{b}{a}"\n'
    return out


CONTROL = '[control]\n0 = "/dev/c0"\n1 = "/dev/c1"\n2 = "/dev/c2"\n3 = "/dev/c3"\n'
BAD_RIGS = {
    "unknown key": (
        '[rig]\ncluster = "cluster.toml"\nbaud = 9600\n' + CONTROL + _links(),
        "rig.baud: unknown key",
    ),
    "missing control": (
        '[rig]\ncluster = "cluster.toml"\n[control]\n0 = "/dev/c0"\n' + _links(),
        "no control port for node(s) [1, 2, 3]",
    ),
    "missing link": (
        '[rig]\ncluster = "cluster.toml"\n' + CONTROL + _links(skip="1-3"),
        "not a full mesh: no [[link]] for 1-3",
    ),
    "port twice": (
        '[rig]\ncluster = "cluster.toml"\n' + CONTROL.replace("/dev/c3", "/dev/c0") + _links(),
        "port /dev/c0 is already used by control.0",
    ),
    "wrong baud": (
        '[rig]\ncluster = "cluster.toml"\n'
        + CONTROL
        + _links().replace("b = 1\n", "b = 1\nbaud = 115200\n", 1),
        "link[0].baud: 115200 differs from the cluster's 921600",
    ),
    "bad node": (
        '[rig]\ncluster = "cluster.toml"\n'
        + CONTROL
        + _links()
        + '[[link]]\na = 9\nb = 0\na_port = "/dev/x"\nb_port = "/dev/y"\n',
        "link[6].a: must be in 0..3",
    ),
    "no cluster": (
        '[rig]\ncluster = "nope.toml"\n' + CONTROL + _links(),
        "rig.cluster: cannot read",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RIGS))
def test_bad_rig_file_is_one_line(tmp_path: Path, case: str) -> None:
    _cluster(tmp_path)
    text, expected = BAD_RIGS[case]
    path = tmp_path / "rig.toml"
    path.write_text(text)
    with pytest.raises(RigError) as err:
        load_rig(path)
    assert expected in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)
    camp = ROOT / "campaigns" / "smoke.toml"
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(camp),
        "--out",
        str(tmp_path / "o"),
        "--mode",
        "serial",
        "--rig",
        str(path),
    )
    assert 2 == proc.returncode and expected in proc.stderr and "Traceback" not in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())


def test_good_rig_file_and_mismatch_message(tmp_path: Path) -> None:
    _cluster(tmp_path)
    path = tmp_path / "rig.toml"
    path.write_text('[rig]\ncluster = "cluster.toml"\n' + CONTROL + _links())
    rig = load_rig(path)
    assert "/dev/r01" == rig.links[(0, 1)] and "/dev/r10" == rig.links[(1, 0)]
    assert "/dev/c2" == rig.control[2] and 921600 == rig.control_baud
    assert mismatch(4, "om", 1, rig) is None
    assert "needs 4 nodes, SM(2); the boards run 4 nodes, OM(1)" in (
        mismatch(4, "sm", 2, rig) or ""
    )
    sc = Scenario("x", 7, "om", 2, "safe", (), 10, 1)
    res = run_scenario(sc, "serial", tmp_path / "o", rig=rig)  # never touches a port
    assert "skipped" == res.outcome and not res.passed
    assert "needs 7 nodes, OM(2)" in (res.skipped or "")


def test_a_scenario_with_validity_checks_the_boards_lack_is_skipped(tmp_path: Path) -> None:
    """The rig's boards run their own cluster.toml: checks they do not have are not tested."""
    from voter.core.validity import ChannelLimits

    _cluster(tmp_path)
    path = tmp_path / "rig.toml"
    path.write_text('[rig]\ncluster = "cluster.toml"\n' + CONTROL + _links())
    rig = load_rig(path)
    checks = (ChannelLimits(stale_samples=5),) * 3
    assert "boards' [validity]" in (mismatch(4, "om", 1, rig, checks) or "")
    assert mismatch(4, "om", 1, rig, ()) is None


def test_a_degrade_scenario_needs_boards_with_degrade(tmp_path: Path) -> None:
    """Planned degradation changes what the boards run: it is tested only where it is set."""
    from voter.core.mode import DegradeConfig

    _cluster(tmp_path)
    path = tmp_path / "rig.toml"
    path.write_text('[rig]\ncluster = "cluster.toml"\n' + CONTROL + _links())
    rig = load_rig(path)
    assert "needs [degrade] on" in (mismatch(4, "om", 1, rig, (), DegradeConfig()) or "")
    assert mismatch(4, "om", 1, rig, (), None) is None
