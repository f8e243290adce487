"""`voter cluster init --sensor ...` writes each board's sensor table; `cluster show` shows it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli
from voter.config import ConfigFileError, load_cluster, loads_cluster

MAVLINK = ["VFR_HUD.alt", "VFR_HUD.airspeed", "ATTITUDE.pitch"]


def test_init_writes_a_mavlink_table_per_board_and_show_prints_it(tmp_path: Path) -> None:
    """{node} in the port is each board's id; show prints the table and does not warn."""
    out = tmp_path / "c"
    init = run_cli(
        "voter", "cluster", "init", "--nodes", "4", "--out", str(out), "--sensor", "mavlink",
        "--sensor-port", "/dev/voter-fc{node}", "--sensor-baud", "115200",
        "--sensor-channels", ",".join(MAVLINK), "--sensor-scale", "1,1,57.3",
        "--sensor-stale-ms", "250",
    )  # fmt: skip
    assert 0 == init.returncode, init.stderr
    cfg = load_cluster(out / "cluster.toml")
    assert {
        "kind": "mavlink",
        "port": "/dev/voter-fc3",
        "baud": 115200,
        "channels": MAVLINK,
        "scale": [1.0, 1.0, 57.3],
        "stale_ms": 250.0,
    } == cfg.node(3).sensor
    show = run_cli("voter", "cluster", "show", str(out / "cluster.toml"))
    assert 0 == show.returncode and "" == show.stderr
    assert (
        "    sensor: mavlink  port=/dev/voter-fc1  baud=115200  "
        "channels=VFR_HUD.alt,VFR_HUD.airspeed,ATTITUDE.pitch  scale=1.0,1.0,57.3  stale_ms=250.0"
    ) in show.stdout.splitlines()


def test_show_warns_once_when_boards_still_read_sim(tmp_path: Path) -> None:
    """The default config is simulated readings: show says so in one line (and exits 0)."""
    out = tmp_path / "c"
    assert 0 == run_cli("voter", "cluster", "init", "--nodes", "4", "--out", str(out)).returncode
    show = run_cli("voter", "cluster", "show", str(out / "cluster.toml"))
    assert 0 == show.returncode
    assert [
        'voter: warning: nodes 0, 1, 2, 3 read simulated sensors (kind = "sim"); a board in '
        "service needs iio, mavlink, csv or socket (docs/deploy.md, Sensors)"
    ] == show.stderr.splitlines()
    assert "    sensor: sim  seed=2" in show.stdout.splitlines()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sensor", "iio", "--sensor-port", "/dev/x"], "--sensor-port is for --sensor mavlink"),
        (["--sensor", "mavlink", "--sensor-channels", "A.b,C.d,E.f"], "needs --sensor-port"),
        (["--sensor", "csv"], "--sensor csv needs --sensor-path"),
        (["--sensor", "gps"], "argument --sensor: invalid choice: 'gps'"),
        (
            ["--sensor", "iio", "--sensor-device", "bmp280", "--sensor-channels", "pressure"],
            "--sensor-channels has 1 entries, one per cluster channel (3) needed",
        ),
        (
            ["--sensor", "iio", "--sensor-device", "d", "--sensor-channels", "a,b,c",
             "--sensor-scale", "1,x,3"],
            "--sensor-scale must be comma-separated numbers, got '1,x,3'",
        ),
        (
            ["--sensor", "iio", "--sensor-device", "d", "--sensor-channels", "a,b,c",
             "--sensor-stale-ms", "0"],
            "invalid option: node[0].sensor.stale_ms: must be in (0, 60000], got 0",
        ),
    ],
)  # fmt: skip
def test_bad_sensor_options_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """A sensor option that does not fit is refused before any file is written."""
    out = tmp_path / "c"
    res = run_cli("voter", "cluster", "init", "--nodes", "4", "--out", str(out), *args)
    assert 0 != res.returncode
    assert 1 == len(res.stderr.splitlines()) and expected in res.stderr
    assert not out.exists()


NODE = """
[[node]]
id = {i}
public_key = "{key}"
key_file = "k{i}"
sensor = {sensor}
[node.links]
{peer} = "/dev/x"
"""


def cluster_text(sensor: str) -> str:
    nodes = "".join(
        NODE.format(i=i, key=bytes([i + 1] * 32).hex(), sensor=sensor, peer=1 - i) for i in range(2)
    )
    return '[cluster]\nid = "t"\nalgorithm = "om"\nm = 0\ntick_hz = 50\nchannels = ["a", "b"]\n' + (
        nodes
    )


@pytest.mark.parametrize(
    ("sensor", "expected"),
    [
        ('{ kind = "iio", device = "x", channels = ["p", "t"], stale = 5 }',
         "node[0].sensor.stale: unknown key (allowed: kind, device, channels, root, scale"),
        ('{ kind = "iio", channels = ["p", "t"] }', "node[0].sensor.device: missing"),
        ('{ kind = "iio", device = "", channels = ["p", "t"] }',
         "sensor.device: must not be empty"),
        ('{ kind = "iio", device = "x", channels = ["p"] }',
         "node[0].sensor.channels: has 1 entries, the cluster has 2 channels"),
        ('{ kind = "mavlink", port = "p", channels = "A.b" }', "must be an array of names"),
        ('{ kind = "mavlink", port = "p", channels = ["A.b", "C.d"], scale = [1, nan] }',
         "node[0].sensor.scale[1]: must be finite, got nan"),
        ('{ kind = "mavlink", port = "p", channels = ["A.b", "C.d"], scale = [1] }',
         "node[0].sensor.scale: has 1 entries, the cluster has 2 channels"),
        ('{ kind = "mavlink", port = "p", channels = ["A.b", "C.d"], sysid = 256 }',
         "node[0].sensor.sysid: must be in 0..255, got 256"),
        ('{ kind = "mavlink", port = "p", channels = ["A.b", "C.d"], baud = "fast" }',
         "node[0].sensor.baud: must be an integer, got a string"),
    ],
)  # fmt: skip
def test_real_sensor_tables_are_checked_strictly(sensor: str, expected: str) -> None:
    """A typo in an iio or mavlink table is a config error naming the key, not a default."""
    with pytest.raises(ConfigFileError, match=None) as err:
        loads_cluster(cluster_text(sensor), Path("/x/cluster.toml"))
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "sensor",
    [
        '{ kind = "mavlink", port = "/dev/ttyACM0", channels = ["VFR_HUD.alt", "ATTITUDE.pitch"],'
        " scale = [1, 57.3], baud = 115200, stale_ms = 500, sysid = 1 }",
        '{ kind = "iio", device = "bmp280", channels = ["pressure", "temp"], scale = [10, 0.001],'
        ' root = "sys/bus/iio/devices", stale_ms = 100 }',
    ],
)
def test_real_sensor_tables_load(sensor: str) -> None:
    """Both new kinds load with every optional key, as written."""
    cfg = loads_cluster(cluster_text(sensor), Path("/x/cluster.toml"))
    assert tomllib.loads(f"s = {sensor}")["s"] == cfg.node(1).sensor
