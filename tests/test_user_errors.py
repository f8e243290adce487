"""User mistakes given to the real commands: one line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from voter.exitcodes import EXIT_CONFIG, EXIT_UNAVAILABLE

NOT_UTF8 = b"[campaign]\nname = '\xe9t\xe9'\n"  # Latin-1, as an old editor saves it
SMOKE = ROOT / "campaigns" / "smoke.toml"


def one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """The process failed with `code` and said exactly one line holding every needle."""
    lines = proc.stderr.strip().splitlines()
    assert code == proc.returncode, proc.stderr
    assert 1 == len(lines) and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0]


def latin1(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(NOT_UTF8)
    return path


def test_generals_scenario_not_utf8(tmp_path: Path) -> None:
    path = latin1(tmp_path, "g.toml")
    one_line(run_cli("hil", "generals", str(path)), 2, "hil: error:", str(path), "not UTF-8 text")


def test_campaign_not_utf8(tmp_path: Path) -> None:
    path = latin1(tmp_path, "c.toml")
    proc = run_cli("hil", "campaign", "run", str(path), "--out", str(tmp_path / "o"))
    one_line(proc, 2, str(path), "not UTF-8 text")


def test_rig_file_not_utf8(tmp_path: Path) -> None:
    rig = latin1(tmp_path, "rig.toml")
    proc = run_cli(
        "hil", "campaign", "run", str(SMOKE), "--out", str(tmp_path / "o"), "--mode", "serial",
        "--rig", str(rig),
    )  # fmt: skip
    one_line(proc, 2, str(rig), "not UTF-8 text")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (NOT_UTF8, "not UTF-8 text"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a campaign report"),
        (b'{"campaign": "x", "scenarios": [{"name": "a"}]}', "not a campaign report"),
        (None, "No such file"),
    ],
)
def test_merge_input_that_is_not_a_report(
    tmp_path: Path, content: bytes | None, needle: str
) -> None:
    """`hil campaign merge` of a directory whose report.json is not one: one line naming it."""
    part = tmp_path / "shard0"
    part.mkdir()
    if content is not None:
        (part / "report.json").write_bytes(content)
    proc = run_cli("hil", "campaign", "merge", "--out", str(tmp_path / "m"), str(part))
    one_line(proc, 2, str(part / "report.json"), needle)


FAULT_TABLES = {
    "ber above 1": ("kind = 'link-bitflip'\nlink = '0-1'\nber = 2.0", "must be in [0, 1], got 2"),
    "ber below 0": ("kind = 'link-bitflip'\nlink = '0-1'\nber = -1", "must be in [0, 1], got -1"),
    "p above 1": ("kind = 'link-drop'\nlink = '0-1'\np = 1.5", "must be in [0, 1], got 1.5"),
    "zero rate": ("kind = 'memory-bitflip'\nnode = 1\nrate_hz = 0", "> 0 and <= 10000"),
    "huge rate": ("kind = 'memory-bitflip'\nnode = 1\nrate_hz = 1e12", "> 0 and <= 10000"),
    "negative stall rate": ("kind = 'stall'\nnode = 1\nms = 5\nrate_hz = -1", "> 0 and <= 1000"),
    "clock stands still": (
        "kind = 'clock-drift'\nnode = 1\nppm = -1e6",
        "ppm must be in (-1000000, 1000000)",
    ),
    "node id": ("kind = 'traitor'\nnode = 4", "node 4 is not in 0..3"),
    "link end": ("kind = 'link-delay'\nlink = '0-7'\ndelay_ms = 3", "node 7 is not in 0..3"),
}


@pytest.mark.parametrize("case", sorted(FAULT_TABLES))
def test_campaign_value_outside_its_domain(tmp_path: Path, case: str) -> None:
    """`ber = 2.0` used to be accepted and the scenario "passed": now one line with the range."""
    fault, needle = FAULT_TABLES[case]
    path = tmp_path / "c.toml"
    path.write_text(f"[[scenario]]\nname = 'a'\nnodes = 4\n[[scenario.fault]]\n{fault}\n")
    proc = run_cli("hil", "campaign", "run", str(path), "--out", str(tmp_path / "o"))
    one_line(proc, 2, "scenario 'a'", needle)
    assert not (tmp_path / "o" / "report.json").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("link-bitflip:0-1:2", "must be in [0, 1], got 2"),
        ("link-drop:0-1:-0.5", "must be in [0, 1], got -0.5"),
        ("memory-bitflip:1:0/s", "> 0 and <= 10000"),
        ("clock-drift:1:-2000000ppm", "ppm must be in (-1000000, 1000000)"),
        ("stall:1:60ms/0.1ms", "> 0 and <= 1000"),
        ("traitor:9:lie", "node 9 is not in 0..3"),
    ],
)
def test_fault_text_outside_its_domain(tmp_path: Path, text: str, needle: str) -> None:
    """The same model reads `--fault` text: the same range in the same words."""
    proc = run_cli("firmware-sim", "run", "--out", str(tmp_path / "r"), "--fault", text)
    one_line(proc, 2, "--fault", needle)


def test_generals_commander_outside_the_cluster(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("nodes = 4\nvalue = 'attack'\ncommander = 5\n")
    one_line(run_cli("hil", "generals", str(path)), 2, "commander: node 5 is not in 0..3")


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    """A fresh `voter cluster init` (its links name /dev/voter-link*, absent here)."""
    out = tmp_path / "c"
    assert 0 == run_cli("voter", "cluster", "init", "--nodes", "4", "--out", str(out)).returncode
    return out


def test_voterd_checks_its_key_before_its_ports(cluster: Path) -> None:
    """A world-readable key and a missing port: the key is the complaint (78, not restarted)."""
    (cluster / "keys" / "node0.key").chmod(0o644)
    proc = run_cli("voterd", "--config", str(cluster / "cluster.toml"), "--node", "0")
    one_line(proc, EXIT_CONFIG, "node0.key", "chmod 600")
    assert "voter-link" not in proc.stderr


def test_voterd_missing_port_is_unavailable_not_config(cluster: Path) -> None:
    """A port that is not there (yet): 69, which systemd retries; the line names the port."""
    proc = run_cli("voterd", "--config", str(cluster / "cluster.toml"), "--node", "0")
    one_line(proc, EXIT_UNAVAILABLE, "/dev/voter-link1")


def test_voterd_config_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = latin1(tmp_path, "cluster.toml")
    proc = run_cli("voterd", "--config", str(path), "--node", "0")
    one_line(proc, EXIT_CONFIG, "voterd: error:", "not UTF-8 text")


def test_voterd_usage_error_stays_2() -> None:
    """The command line itself (argparse's own errors and option conflicts): exit 2."""
    assert 2 == run_cli("voterd", "--node", "0").returncode  # --config missing
    proc = run_cli("voterd", "--config", "x.toml", "--node", "0", "--start-at", "1")
    one_line(proc, 2, "--start-at is a HIL option")
