"""The [output] table: parsed once, one-line errors for bad addresses, per-node keys, round-trip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_config import cluster_text
from voter.config import (
    ConfigFileError,
    OutputConfig,
    dump_cluster,
    loads_cluster,
    parse_host_port,
)

OUTPUT = '[output]\nudp = "127.0.0.1:14600"\nmavlink = "udp:[::1]:14550"\n'
NAMES = 'mavlink_names = ["alt", "spd", "pitch"]\n'


def load(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return loads_cluster(text, tmp_path / "cluster.toml")


def with_output(table: str, node_extra: str = "") -> str:
    """A cluster file with an [output] table after [cluster] (TOML puts it before [[node]])."""
    text = cluster_text(node_extra=node_extra)
    head, sep, rest = text.partition("\n[[node]]")
    return head + "\n" + table + sep + rest


def test_outputs_are_off_unless_configured(tmp_path: Path) -> None:
    """No [output] table: no network output, and dump writes none."""
    cfg = load(cluster_text(), tmp_path)
    assert OutputConfig() == cfg.output == cfg.output_for(2)
    assert "[output]" not in dump_cluster(cfg)


def test_cluster_wide_output_with_a_node_override_round_trips(tmp_path: Path) -> None:
    """[output] applies to every board; a node's `output` keys override it; load(dump) == cfg."""
    text = with_output(OUTPUT + NAMES, node_extra="output = { mavlink_component = 192 }")
    cfg = load(text, tmp_path)
    assert cfg.output_for(1) == OutputConfig(
        udp="127.0.0.1:14600", mavlink="udp:[::1]:14550", mavlink_names=("alt", "spd", "pitch")
    )
    assert 192 == cfg.output_for(0).mavlink_component
    assert cfg.output_for(0).udp == cfg.output_for(1).udp
    assert cfg == load(dump_cluster(cfg), tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:14600", ("127.0.0.1", 14600)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:65535", ("::1", 65535)),
    ],
)
def test_host_port_accepts_addresses(text: str, expected: tuple[str, int]) -> None:
    """IP addresses (IPv6 in brackets) and localhost."""
    assert expected == parse_host_port(text)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('udp = "gcs.local:14600"', "output.udp: host must be an IP address or localhost"),
        ('udp = "127.0.0.1"', "output.udp: must be HOST:PORT"),
        ('udp = "127.0.0.1:0"', "output.udp: port must be in 1..65535"),
        ('udp = "127.0.0.1:99999"', "output.udp: port must be in 1..65535"),
        ('udp = "::1:14600"', "output.udp: an IPv6 address goes in brackets"),
        ("udp = 14600", "output.udp: must be a string"),
        ('mavlink = "tcp:10.0.0.1:5760"', 'output.mavlink: must be "udp:HOST:PORT" or "serial'),
        ('mavlink = "serial:"', "output.mavlink: must be"),
        ('mavlink = "udp:10.0.0.256:14550"', "output.mavlink: host must be an IP address"),
        ('mavlink = "udp:10.0.0.1:14550"', "cluster.channels[1]: 'airspeed_mps' is longer"),
        ('mavlink_names = ["a", "b"]\nmavlink = "serial:/dev/ttyAMA1"', "has 2 names for 3"),
        ('mavlink_names = ["a", "a", "b"]', "output.mavlink_names: names must differ"),
        ('mavlink_names = ["altitude_m1", "b", "c"]', "mavlink_names[0]: 'altitude_m1' is longer"),
        ("mavlink_component = 0", "output.mavlink_component: must be in 1..255"),
        ("mavlink_hz = 0", "output.mavlink_hz: must be in (0, 1000]"),
        ("udp_port = 1", "output.udp_port: unknown key"),
    ],
)
def test_bad_output_is_one_line_naming_the_key(tmp_path: Path, table: str, expected: str) -> None:
    """Each bad [output] value is a ConfigFileError naming the file and the key."""
    with pytest.raises(ConfigFileError) as err:
        load(with_output(f"[output]\n{table}\n"), tmp_path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bad_node_output_names_the_node(tmp_path: Path) -> None:
    """A node's own output keys are checked the same way, named by node."""
    with pytest.raises(ConfigFileError, match=r"node\[0\]\.output\.udp: port must be"):
        load(cluster_text(node_extra='output = { udp = "127.0.0.1:70000" }'), tmp_path)


def test_voterd_says_a_bad_output_address_in_one_line(tmp_path: Path) -> None:
    """The real voterd with a DNS name as output address: one line, non-zero, no traceback."""
    init = run_cli("voter", "cluster", "init", "--nodes", "4", "--out", str(tmp_path / "c"))
    assert init.returncode == 0, init.stderr
    path = tmp_path / "c" / "cluster.toml"
    text = path.read_text()
    head, sep, rest = text.partition("\n[[node]]")
    path.write_text(head + '\n[output]\nudp = "ground-station:14600"\n' + sep + rest)
    proc = run_cli("voterd", "--config", str(path), "--node", "0", timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert 1 == len(proc.stderr.strip().splitlines()), proc.stderr
    assert "voterd: error:" in proc.stderr and "output.udp: host must be an IP" in proc.stderr


def test_busy_mavlink_serial_port_is_one_line_at_start(tmp_path: Path) -> None:
    """A MAVLink serial port another process holds: voterd says so in one line at start."""
    import serial

    init = run_cli("voter", "cluster", "init", "--nodes", "4", "--out", str(tmp_path / "c"))
    assert init.returncode == 0, init.stderr
    master, slave = os.openpty()
    tty = os.ttyname(slave)
    holder = serial.Serial(tty, exclusive=True)  # the other process (a second voterd, a GCS)
    try:
        path = tmp_path / "c" / "cluster.toml"
        head, sep, rest = path.read_text().partition("\n[[node]]")
        table = f'[output]\nmavlink = "serial:{tty}"\n{NAMES}'
        path.write_text(head + "\n" + table + sep + rest)
        proc = run_cli("voterd", "--config", str(path), "--node", "0", timeout=60)
    finally:
        holder.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode != 0
    assert 1 == len(proc.stderr.strip().splitlines()), proc.stderr
    assert f"output.mavlink: port {tty} is busy" in proc.stderr


def test_cluster_init_writes_the_output_table(tmp_path: Path) -> None:
    """`voter cluster init --output-udp --output-mavlink`: an [output] table voterd loads;
    channel names too long for MAVLink need --output-mavlink-names, said in one line."""
    out = tmp_path / "c"
    args = ["voter", "cluster", "init", "--nodes", "4", "--out", str(out)]
    args += ["--output-udp", "127.0.0.1:14600", "--output-mavlink", "udp:127.0.0.1:14550"]
    too_long = run_cli(*args)  # the default channels: altitude_m, airspeed_mps, pitch_deg
    assert 2 == too_long.returncode and not out.exists()
    assert 1 == len(too_long.stderr.strip().splitlines()) and "mavlink" in too_long.stderr
    proc = run_cli(*args, "--output-mavlink-names", "alt,aspd,pitch")
    assert 0 == proc.returncode, proc.stderr
    text = (out / "cluster.toml").read_text()
    assert "[output]" in text
    want = OutputConfig(
        udp="127.0.0.1:14600", mavlink="udp:127.0.0.1:14550", mavlink_names=("alt", "aspd", "pitch")
    )
    assert want == loads_cluster(text, out / "cluster.toml").output
