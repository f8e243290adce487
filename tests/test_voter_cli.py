"""The `voter` console script, run for real in a subprocess: keygen, cluster init, cluster show."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from voter.config import load_cluster
from voter.keys import load_signing_key

_BIN = Path(sys.executable).parent / "voter"
VOTER = str(_BIN) if _BIN.exists() else (shutil.which("voter") or "voter")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOTER, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one stderr line, no traceback; returns the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("voter: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "args",
    [[], ["keygen"], ["cluster"], ["cluster", "init"], ["cluster", "show"]],
    ids=["voter", "keygen", "cluster", "init", "show"],
)
def test_every_subcommand_has_help(args: list[str]) -> None:
    """--help works for every command and subcommand."""
    proc = run(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: voter")


def test_cluster_init_writes_keys_and_a_loadable_config(tmp_path: Path) -> None:
    """init writes 0600 keys in a 0700 folder and a config whose public keys match them."""
    out = tmp_path / "c"
    proc = run(
        "cluster", "init", "--nodes", "4", "--out", out, "--id", "demo", "--algorithm", "sm",
        "--m", "2", "--tick-hz", "100", "--channels", "a,b", "--baud", "115200",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cfg_path = out / "cluster.toml"
    assert str(cfg_path) in proc.stdout
    assert _mode(out / "keys") == 0o700
    cfg = load_cluster(cfg_path)
    assert (cfg.id, cfg.algorithm, cfg.m, cfg.tick_hz, cfg.baud) == ("demo", "sm", 2, 100.0, 115200)
    assert cfg.channels == ("a", "b") and cfg.n == 4
    assert cfg.log_dir == (out / "logs").resolve()
    for nd in cfg.nodes:
        key_file = out / "keys" / f"node{nd.id}.key"
        assert nd.key_file == key_file.resolve()
        assert _mode(key_file) == 0o600
        assert bytes(load_signing_key(key_file).verify_key) == nd.public_key
        assert str(key_file) in proc.stdout
        assert nd.links == {p: f"/dev/voter-link{p}" for p in range(4) if p != nd.id}
    assert len({nd.public_key for nd in cfg.nodes}) == 4
    text = cfg_path.read_text()
    assert 'key_file = "keys/node0.key"' in text and 'log_dir = "logs"' in text
    # No private key material is ever printed.
    for nd in cfg.nodes:
        seed = (out / "keys" / f"node{nd.id}.key").read_text().strip()
        assert seed not in proc.stdout + proc.stderr


def test_cluster_init_link_template_and_log_dir(tmp_path: Path) -> None:
    """{node} and {peer} are substituted in links; --log-dir and --output-socket are kept."""
    out = tmp_path / "c"
    proc = run(
        "cluster", "init", "--nodes", "3", "--out", out,
        "--link-template", "/dev/pts/link-{node}-{peer}", "--log-dir", "/var/lib/voter",
        "--output-socket", "/run/voter/out{node}.sock",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cfg = load_cluster(out / "cluster.toml")
    assert cfg.node(2).links == {0: "/dev/pts/link-2-0", 1: "/dev/pts/link-2-1"}
    assert cfg.log_dir == Path("/var/lib/voter")
    assert cfg.output_socket_for(1) == "/run/voter/out1.sock"


def test_cluster_init_relative_out_dir(tmp_path: Path) -> None:
    """A relative --out is relative to the working directory."""
    proc = run("cluster", "init", "--nodes", "2", "--m", "0", "--out", "rel", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert load_cluster(tmp_path / "rel" / "cluster.toml").n == 2


def test_cluster_init_refuses_existing_config(tmp_path: Path) -> None:
    """A non-empty existing cluster.toml is refused and left untouched, no key written."""
    out = tmp_path / "c"
    out.mkdir()
    (out / "cluster.toml").write_text("# mine\n")
    proc = run("cluster", "init", "--nodes", "4", "--out", out)
    assert_user_error(proc, "cluster.toml already exists")
    assert (out / "cluster.toml").read_text() == "# mine\n"
    assert not (out / "keys").exists()


def test_cluster_init_accepts_empty_existing_config(tmp_path: Path) -> None:
    """An empty cluster.toml (e.g. touched beforehand) is replaced."""
    out = tmp_path / "c"
    out.mkdir()
    (out / "cluster.toml").touch()
    assert run("cluster", "init", "--nodes", "4", "--out", out).returncode == 0
    assert load_cluster(out / "cluster.toml").n == 4


def test_cluster_init_refuses_existing_keys(tmp_path: Path) -> None:
    """An existing key file is never overwritten, and nothing else is written."""
    out = tmp_path / "c"
    (out / "keys").mkdir(parents=True)
    fd = os.open(out / "keys" / "node2.key", os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    proc = run("cluster", "init", "--nodes", "4", "--out", out)
    assert_user_error(proc, "node2.key already exists")
    assert sorted(p.name for p in (out / "keys").iterdir()) == ["node2.key"]
    assert not (out / "cluster.toml").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--nodes", "1"], "--nodes must be 2..16, got 1"),
        (["--nodes", "17"], "--nodes must be 2..16"),
        (["--nodes", "four"], "invalid int value"),
        (["--nodes", "4", "--m", "7"], "--m must be 0..6"),
        (["--nodes", "4", "--algorithm", "xm"], "invalid choice"),
        (["--nodes", "4", "--tick-hz", "0"], "--tick-hz"),
        (["--nodes", "4", "--tick-hz", "5000"], "--tick-hz"),
        (["--nodes", "4", "--baud", "0"], "--baud"),
        (["--nodes", "4", "--id", "my cluster"], "cluster.id"),
        (["--nodes", "4", "--channels", "a,,b"], "--channels"),
        (["--nodes", "4", "--channels", "a,a"], "duplicate channel"),
        (["--nodes", "4", "--channels", "a b"], "cluster.channels"),
        (["--nodes", "4", "--link-template", "/dev/x{port}"], "--link-template"),
        (["--nodes", "4", "--link-template", "/dev/ttyAMA0"], "--link-template"),
        (["--nodes", "4", "--output-socket", "/run/{id}"], "output_socket"),
        (["--nodes", "4", "--output-udp", "ground.local:14600"], "output.udp"),
        (["--nodes", "4", "--output-mavlink", "tcp:1.2.3.4:5"], "output.mavlink"),
        (["--nodes", "4", "--bogus"], "unrecognized arguments"),
        ([], "required: --nodes"),
    ],
)
def test_cluster_init_bad_options(tmp_path: Path, args: list[str], needle: str) -> None:
    """Bad options: exit 2, one stderr line naming the problem, nothing written."""
    out = tmp_path / "c"
    proc = run("cluster", "init", "--out", out, *args)
    assert_user_error(proc, needle)
    assert not out.exists()


def test_cluster_init_out_is_a_file(tmp_path: Path) -> None:
    """--out naming a file is a user error."""
    (tmp_path / "f").write_text("x")
    assert_user_error(run("cluster", "init", "--nodes", "4", "--out", tmp_path / "f"), "folder")


def test_keygen_prints_public_key_matching_the_file(tmp_path: Path) -> None:
    """keygen writes a 0600 key and prints exactly its public key hex on stdout."""
    key = tmp_path / "node9.key"
    proc = run("keygen", "--out", key)
    assert proc.returncode == 0, proc.stderr
    assert _mode(key) == 0o600
    assert proc.stdout == bytes(load_signing_key(key).verify_key).hex() + "\n"


def test_keygen_refuses_overwrite(tmp_path: Path) -> None:
    """keygen on an existing file fails with one line and keeps the old key."""
    key = tmp_path / "k"
    assert run("keygen", "--out", key).returncode == 0
    before = key.read_bytes()
    assert_user_error(run("keygen", "--out", key), "already exists")
    assert key.read_bytes() == before


def test_keygen_missing_folder(tmp_path: Path) -> None:
    """keygen into a folder that does not exist is a one-line error."""
    assert_user_error(run("keygen", "--out", tmp_path / "no" / "k"), "cannot create")


def test_cluster_show_summary(tmp_path: Path) -> None:
    """show lists nodes, algorithm, m, fault bound, tick rate and each node's links."""
    out = tmp_path / "c"
    assert run("cluster", "init", "--nodes", "4", "--out", out, "--id", "demo").returncode == 0
    proc = run("cluster", "show", out / "cluster.toml")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "cluster demo" in text and "nodes: 4" in text and "OM(1)" in text
    assert "f <= 1" in text and "50 Hz" in text and "20 ms" in text
    for i in range(4):
        assert f"node {i}:" in text
    assert "1=/dev/voter-link1" in text
    assert text.count("outputs: none (network outputs are opt-in") == 4
    cfg = out / "cluster.toml"
    cfg.write_text(
        cfg.read_text().replace("[[node]]", '[output]\nudp = "127.0.0.1:14600"\n\n[[node]]', 1)
    )
    shown = run("cluster", "show", cfg)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("outputs: UDP JSON to 127.0.0.1:14600") == 4


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (
            ["--nodes", "7", "--algorithm", "sm", "--m", "3"],
            "SM tolerates f <= N-2 and f <= m: f <= 3",
        ),
        (["--nodes", "3", "--algorithm", "om", "--m", "1"], "f <= 0 (OM(1) needs N >= 4"),
        (["--nodes", "7", "--algorithm", "om", "--m", "2"], "f < N/3 and f <= m: f <= 2"),
    ],
)
def test_cluster_show_fault_bound(tmp_path: Path, args: list[str], expect: str) -> None:
    """The fault bound follows OM (f < N/3, f <= m) and SM (f <= N-2, f <= m)."""
    out = tmp_path / "c"
    assert run("cluster", "init", "--out", out, *args).returncode == 0
    proc = run("cluster", "show", out / "cluster.toml")
    assert expect in proc.stdout, proc.stdout


def test_cluster_show_bad_config_is_one_line(tmp_path: Path) -> None:
    """A broken config names file and key in one stderr line, exit 2."""
    out = tmp_path / "c"
    assert run("cluster", "init", "--nodes", "4", "--out", out).returncode == 0
    cfg = out / "cluster.toml"
    cfg.write_text(cfg.read_text().replace("m = 1", "m = 9"))
    assert_user_error(run("cluster", "show", cfg), str(cfg), "cluster.m")
    cfg.write_text(cfg.read_text().replace("[cluster]", "[cluster"))
    assert_user_error(run("cluster", "show", cfg), "invalid TOML")


def test_cluster_show_missing_file(tmp_path: Path) -> None:
    """show of a missing file is a one-line error."""
    assert_user_error(run("cluster", "show", tmp_path / "nope.toml"), "nope.toml")


def test_unknown_subcommand_is_one_line() -> None:
    """An unknown command gets one error line, not argparse's usage block."""
    assert_user_error(run("frobnicate"), "invalid choice")


def test_cluster_show_names_the_validity_checks(tmp_path: Path) -> None:
    """show says whether the boards check their own readings, and with which thresholds."""
    out = tmp_path / "c"
    assert run("cluster", "init", "--nodes", "4", "--out", out).returncode == 0
    cfg = out / "cluster.toml"
    assert "sensor validity: off (no [validity] table)" in run("cluster", "show", cfg).stdout
    with cfg.open("a") as f:
        f.write("\n[validity]\nstale_samples = 5\n[validity.altitude_m]\nmax_rate = 300.0\n")
    shown = run("cluster", "show", cfg)
    assert shown.returncode == 0, shown.stderr
    assert "altitude_m (stale_samples=5, max_rate=300); airspeed_mps (stale_samples=5)" in (
        shown.stdout
    )
