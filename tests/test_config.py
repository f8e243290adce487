"""cluster.toml: strict loading (every bad case names its key), dataclasses, dump round-trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from voter.config import (
    ClusterConfig,
    ConfigFileError,
    NodeConfig,
    dump_cluster,
    load_cluster,
    loads_cluster,
)


def pk(i: int) -> str:
    return SigningKey(bytes([i + 1]) * 32).verify_key.encode().hex()


def cluster_text(
    n: int = 4, *, algorithm: str = "om", m: int = 1, header_extra: str = "", node_extra: str = ""
) -> str:
    """A valid cluster file in the documented layout, with optional extra lines."""
    lines = [
        "[cluster]",
        'id = "demo"',
        f'algorithm = "{algorithm}"',
        f"m = {m}",
        "tick_hz = 50.0",
        'channels = ["altitude_m", "airspeed_mps", "pitch_deg"]',
        "baud = 921600",
        'log_dir = "logs"',
        'output_socket = ""',
        header_extra,
    ]
    for i in range(n):
        lines += [
            "",
            "[[node]]",
            f"id = {i}",
            f'public_key = "{pk(i)}"',
            f'key_file = "keys/node{i}.key"',
            'control = ""',
            f'sensor = {{ kind = "sim", seed = {i} }}',
            node_extra if i == 0 else "",
            "[node.links]",
        ]
        lines += [f'{p} = "/dev/voter-link{p}"' for p in range(n) if p != i]
    return "\n".join(lines) + "\n"


BASE = cluster_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_documented_example_loads(tmp_path: Path) -> None:
    """The schema's example loads into the documented dataclasses and values."""
    cfg = load_cluster(write(tmp_path, BASE))
    assert (cfg.id, cfg.algorithm, cfg.m, cfg.baud) == ("demo", "om", 1, 921600)
    assert cfg.tick_hz == 50.0 and cfg.period_s == pytest.approx(0.02)
    assert cfg.channels == ("altitude_m", "airspeed_mps", "pitch_deg")
    assert cfg.n == 4 and [nd.id for nd in cfg.nodes] == [0, 1, 2, 3]
    assert cfg.output_socket == ""
    n2 = cfg.node(2)
    assert isinstance(n2, NodeConfig)
    assert n2.public_key == bytes.fromhex(pk(2)) and len(n2.public_key) == 32
    assert n2.links == {0: "/dev/voter-link0", 1: "/dev/voter-link1", 3: "/dev/voter-link3"}
    assert n2.sensor == {"kind": "sim", "seed": 2}
    assert n2.control == ""
    assert cfg.path == (tmp_path / "cluster.toml").resolve()


def test_relative_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """key_file and log_dir resolve against the file's folder, not the working directory."""
    conf = tmp_path / "etc"
    conf.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    write(conf, BASE)
    cfg = load_cluster(Path("../etc/cluster.toml"))
    assert cfg.node(0).key_file == (conf / "keys" / "node0.key").resolve()
    assert cfg.log_dir == (conf / "logs").resolve()
    assert cfg.log_path(3) == (conf / "logs" / "node3.jsonl").resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    """Absolute key_file and log_dir are used as written."""
    text = BASE.replace('log_dir = "logs"', 'log_dir = "/var/lib/voter"').replace(
        'key_file = "keys/node0.key"', 'key_file = "/etc/voter/keys/node0.key"'
    )
    cfg = load_cluster(write(tmp_path, text))
    assert cfg.log_dir == Path("/var/lib/voter")
    assert cfg.node(0).key_file == Path("/etc/voter/keys/node0.key")


def test_unknown_node_id_message(tmp_path: Path) -> None:
    """cfg.node() of an unknown id names the cluster and its id range."""
    cfg = load_cluster(write(tmp_path, BASE))
    with pytest.raises(ConfigFileError) as exc:
        cfg.node(7)
    assert str(exc.value) == "node 7 is not in cluster demo (nodes 0-3)"
    with pytest.raises(ConfigFileError):
        cfg.node(-1)


def test_optional_keys_have_defaults(tmp_path: Path) -> None:
    """baud, log_dir, output_socket, control and sensor may be left out."""
    text = "\n".join(
        line
        for line in BASE.splitlines()
        if not line.startswith(("baud", "log_dir", "output_socket", "control", "sensor"))
    )
    cfg = load_cluster(write(tmp_path, text))
    assert cfg.baud == 921600 and cfg.output_socket == ""
    assert cfg.log_dir == (tmp_path / "logs").resolve()
    assert cfg.node(1).control == "" and cfg.node(1).sensor == {"kind": "sim"}


def test_nodes_in_any_order_are_sorted_by_id(tmp_path: Path) -> None:
    """[[node]] tables may come in any order; nodes[i].id == i afterwards."""
    head, *blocks = BASE.split("\n[[node]]")
    text = head + "".join("\n[[node]]" + b for b in reversed(blocks))
    cfg = load_cluster(write(tmp_path, text))
    assert [nd.id for nd in cfg.nodes] == [0, 1, 2, 3]
    assert cfg.node(3).public_key == bytes.fromhex(pk(3))


def test_output_socket_node_placeholder(tmp_path: Path) -> None:
    """output_socket may contain {node}, substituted per node."""
    text = BASE.replace('output_socket = ""', 'output_socket = "/run/voter/out{node}.sock"')
    cfg = load_cluster(write(tmp_path, text))
    assert cfg.output_socket_for(2) == "/run/voter/out2.sock"


@pytest.mark.parametrize(
    ("algorithm", "n", "m", "bound"),
    [
        ("om", 4, 1, 1),
        ("om", 3, 1, 0),  # N <= 3m: allowed, it demonstrates impossibility
        ("om", 7, 2, 2),
        ("om", 7, 1, 1),
        ("om", 4, 2, 1),
        ("sm", 3, 1, 1),
        ("sm", 4, 3, 2),
        ("sm", 2, 1, 0),
        ("om", 2, 0, 0),
    ],
)
def test_fault_bound_and_impossible_om_configs_accepted(
    tmp_path: Path, algorithm: str, n: int, m: int, bound: int
) -> None:
    """OM with N <= 3m loads without complaint; fault_bound follows OM/SM's conditions."""
    cfg = load_cluster(write(tmp_path, cluster_text(n, algorithm=algorithm, m=m)))
    assert cfg.n == n and cfg.fault_bound == bound


def test_sixteen_nodes_accepted_seventeen_refused(tmp_path: Path) -> None:
    """N = 16 is the largest cluster; 17 names the node key."""
    assert load_cluster(write(tmp_path, cluster_text(16))).n == 16
    with pytest.raises(ConfigFileError, match=r"node: cluster must have 2\.\.16 nodes, got 17"):
        load_cluster(write(tmp_path, cluster_text(17)))


def test_one_node_refused(tmp_path: Path) -> None:
    """A single-node cluster is refused."""
    with pytest.raises(ConfigFileError, match="got 1"):
        load_cluster(write(tmp_path, cluster_text(1)))


CH33 = "[" + ", ".join(f'"c{i}"' for i in range(33)) + "]"
MESH = "node[0].links: not a full mesh: no link to node(s) [2]"
LINKS0 = '[node.links]\n1 = "/dev/voter-link1"\n2 = "/dev/voter-link2"\n3 = "/dev/voter-link3"'

BAD_CASES: list[tuple[str, str, str, str]] = [
    # (name, old, new, expected text in the message: always the offending key)
    ("unknown cluster key", "baud = 921600", "baud = 921600\ntick_hx = 5", "cluster.tick_hx"),
    ("unknown top-level", "[cluster]", "verbose = true\n[cluster]", "verbose: unknown key"),
    ("unknown node key", 'control = ""', 'control = ""\ncontorl = "x"', "node[0].contorl"),
    ("missing m", "m = 1\n", "", "cluster.m: missing"),
    ("missing channels", 'channels = ["altitude_m", "airspeed_mps", "pitch_deg"]', "", "channels"),
    ("missing cluster", "[cluster]", "[clusterx]", "clusterx"),
    ("m is bool", "m = 1", "m = true", "cluster.m: must be an integer, got a boolean"),
    ("m is string", "m = 1", 'm = "1"', "cluster.m: must be an integer, got a string"),
    ("m too big", "m = 1", "m = 7", "cluster.m: must be in 0..6, got 7"),
    ("m negative", "m = 1", "m = -1", "cluster.m"),
    ("algorithm", 'algorithm = "om"', 'algorithm = "xm"', "cluster.algorithm"),
    ("algorithm case", 'algorithm = "om"', 'algorithm = "OM"', "cluster.algorithm"),
    ("tick zero", "tick_hz = 50.0", "tick_hz = 0", "cluster.tick_hz"),
    ("tick too fast", "tick_hz = 50.0", "tick_hz = 1000.5", "cluster.tick_hz"),
    ("tick bool", "tick_hz = 50.0", "tick_hz = true", "cluster.tick_hz"),
    ("tick inf", "tick_hz = 50.0", "tick_hz = inf", "cluster.tick_hz"),
    ("tick nan", "tick_hz = 50.0", "tick_hz = nan", "cluster.tick_hz"),
    ("cluster id space", 'id = "demo"', 'id = "my demo"', "cluster.id"),
    ("cluster id empty", 'id = "demo"', 'id = ""', "cluster.id"),
    ("cluster id long", 'id = "demo"', f'id = "{"x" * 65}"', "cluster.id"),
    ("channels empty", '["altitude_m", "airspeed_mps", "pitch_deg"]', "[]", "cluster.channels"),
    ("channels dup", '"airspeed_mps", "pitch_deg"]', '"altitude_m"]', "duplicate channel"),
    ("channels str", '["altitude_m", "airspeed_mps", "pitch_deg"]', '"a"', "cluster.channels"),
    ("channel int", '"pitch_deg"]', "3]", "cluster.channels[2]"),
    ("channels 33", '["altitude_m", "airspeed_mps", "pitch_deg"]', CH33, "must have 1..32 names"),
    ("baud zero", "baud = 921600", "baud = 0", "cluster.baud"),
    ("baud float", "baud = 921600", "baud = 9600.0", "cluster.baud"),
    ("log_dir int", 'log_dir = "logs"', "log_dir = 3", "cluster.log_dir"),
    ("output placeholder", 'output_socket = ""', 'output_socket = "/x{id}"', "output_socket"),
    ("node id bool", "id = 1\n", "id = true\n", "node[1].id: must be an integer, got a boolean"),
    ("node id gap", "id = 3\n", "id = 5\n", "node.id: node ids must be exactly 0..3"),
    ("duplicate id", "id = 3\n", "id = 2\n", "duplicate node id 2"),
    ("missing key_file", 'key_file = "keys/node1.key"\n', "", "node[1].key_file: missing"),
    ("missing links", LINKS0, "", "node[0].links: missing"),
    ("empty key_file", 'key_file = "keys/node1.key"', 'key_file = ""', "node[1].key_file"),
    ("pk short", f'public_key = "{pk(1)}"', f'public_key = "{pk(1)[:-2]}"', "node[1].public_key"),
    ("pk not hex", f'public_key = "{pk(1)}"', f'public_key = "{"x" * 64}"', "node[1].public_key"),
    ("pk bytes", f'public_key = "{pk(1)}"', "public_key = 5", "node[1].public_key"),
    ("pk dup", f'public_key = "{pk(1)}"', f'public_key = "{pk(0)}"', "same key as node 0"),
    (
        "link to self",
        LINKS0,
        LINKS0 + '\n0 = "/x"',
        "node[0].links.0: a node has no link to itself",
    ),
    ("link missing", LINKS0, LINKS0.replace('2 = "/dev/voter-link2"\n', ""), MESH),
    ("link unknown", LINKS0, LINKS0 + '\n9 = "/dev/x"', "node[0].links.9"),
    ("link key", LINKS0, LINKS0 + '\nfoo = "/dev/x"', "node[0].links.foo"),
    ("link empty", '1 = "/dev/voter-link1"', '1 = ""', "node[0].links.1"),
    ("link not str", '1 = "/dev/voter-link1"', "1 = 1", "node[0].links.1"),
    ("control int", 'control = ""', "control = 0", "node[0].control"),
    ("sensor kind", 'kind = "sim", seed = 0', 'kind = "gps"', "node[0].sensor.kind"),
    ("sensor no kind", 'kind = "sim", seed = 0', "seed = 0", "node[0].sensor.kind: missing"),
    ("csv no path", 'kind = "sim", seed = 0', 'kind = "csv"', "node[0].sensor.path"),
    ("sensor nested", 'kind = "sim", seed = 0', 'kind = "sim", x = { y = 1 }', "node[0].sensor.x"),
    ("sensor str", '{ kind = "sim", seed = 0 }', '"sim"', "node[0].sensor: must be a table"),
    ("publish mode", "baud = 921600", 'baud = 921600\npublish = "eager"', "cluster.publish"),
    ("precision", "baud = 921600", "baud = 921600\nprecision_ms = -1", "cluster.precision_ms"),
    ("fail_silent", "baud = 921600", 'baud = 921600\nfail_silent = "no"', "cluster.fail_silent"),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [c[1:] for c in BAD_CASES],
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_config_names_file_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """Each invalid config gives one-line ConfigFileError naming the file and the key."""
    assert old in BASE, old
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigFileError) as exc:
        load_cluster(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_node_must_be_array_of_tables(tmp_path: Path) -> None:
    """`node` that is not [[node]] tables, or absent, is named."""
    head = BASE.split("\n[[node]]")[0]
    with pytest.raises(ConfigFileError, match="node: must be an array of tables"):
        load_cluster(write(tmp_path, 'node = "all"\n' + head))
    with pytest.raises(ConfigFileError, match="node: missing"):
        load_cluster(write(tmp_path, head))


def test_bad_toml_syntax(tmp_path: Path) -> None:
    """A TOML syntax error is one line naming the file and the position."""
    path = write(tmp_path, BASE.replace("m = 1", "m = "))
    with pytest.raises(ConfigFileError, match=r"cluster\.toml: invalid TOML: .*line 4") as exc:
        load_cluster(path)
    assert "\n" not in str(exc.value)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    """A missing file, a folder and non-UTF-8 bytes all give ConfigFileError."""
    with pytest.raises(ConfigFileError, match=r"cannot read .*absent\.toml"):
        load_cluster(tmp_path / "absent.toml")
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_cluster(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[cluster]")
    with pytest.raises(ConfigFileError, match="not UTF-8"):
        load_cluster(bad)


def test_dump_round_trips_the_example(tmp_path: Path) -> None:
    """load(dump(cfg)) == cfg, and dump keeps paths under the folder relative."""
    path = write(tmp_path, BASE)
    cfg = load_cluster(path)
    text = dump_cluster(cfg)
    assert 'key_file = "keys/node0.key"' in text and 'log_dir = "logs"' in text
    path.write_text(text)
    assert load_cluster(path) == cfg


def test_configs_are_frozen_and_hashable(tmp_path: Path) -> None:
    """Config values cannot be mutated by accident and nodes can be hashed."""
    cfg = load_cluster(write(tmp_path, BASE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.m = 2  # type: ignore[misc]
    assert len({cfg.node(0), cfg.node(1)}) == 2


_names = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
_scalar = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    _text,
)

_sensor_keys = st.from_regex(r"[a-z][a-z_ .\"]{0,8}", fullmatch=True).filter(
    lambda k: k not in ("kind", "path")
)
_sensor_values = _scalar | st.lists(_scalar, max_size=3)


@st.composite
def clusters(draw: st.DrawFn, base: Path) -> ClusterConfig:
    n = draw(st.integers(2, 6))
    keys = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=n, max_size=n, unique=True))
    nodes = []
    for i in range(n):
        extra = draw(st.dictionaries(_sensor_keys, _sensor_values, max_size=3))
        sensor: dict[str, Any] = {
            "kind": draw(st.sampled_from(["sim", "csv", "socket"])),
            "path": draw(_text),
        }
        sensor.update(extra)
        nodes.append(
            NodeConfig(
                id=i,
                public_key=keys[i],
                key_file=draw(st.sampled_from([base / "keys" / f"n{i}.key", Path(f"/etc/k{i}")])),
                control=draw(st.one_of(st.just(""), _text)),
                sensor=sensor,
                links={p: draw(_text) for p in range(n) if p != i},
            )
        )
    return ClusterConfig(
        id=draw(_names),
        algorithm=draw(st.sampled_from(["om", "sm"])),
        m=draw(st.integers(0, 6)),
        tick_hz=draw(st.floats(min_value=1e-3, max_value=1000.0)),
        channels=tuple(draw(st.lists(_names, min_size=1, max_size=32, unique=True))),
        baud=draw(st.integers(1, 16_000_000)),
        log_dir=draw(st.sampled_from([base / "logs", base, Path("/var/lib/voter")])),
        output_socket=draw(st.sampled_from(["", "/run/voter/out{node}.sock", 'x y "q"\\'])),
        nodes=tuple(nodes),
        path=base / "cluster.toml",
    )


_BASE_DIR = Path("/nonexistent/voter-test")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(_BASE_DIR))
def test_dump_load_round_trip_property(cfg: ClusterConfig) -> None:
    """For generated configs with awkward strings and floats, loads(dump(x)) == x."""
    assert loads_cluster(dump_cluster(cfg), cfg.path) == cfg


VALIDITY = """
[validity]
stale_samples = 5
timeout_ticks = 3
[validity.altitude_m]
min = -500.0
max = 20000
max_rate = 300.0
error_window = 50
errors_max = 10
"""


def test_validity_table_per_channel_over_common_keys(tmp_path: Path) -> None:
    """[validity] keys reach every channel; [validity.CHANNEL] adds to or overrides them."""
    from voter.core.validity import ChannelLimits

    cfg = loads_cluster(BASE + VALIDITY, tmp_path / "c.toml")
    common = ChannelLimits(stale_samples=5, timeout_ticks=3)
    alt = dataclasses.replace(
        common, min=-500.0, max=20000.0, max_rate=300.0, error_window=50, errors_max=10
    )
    assert (alt, common, common) == cfg.validity
    assert cfg == loads_cluster(dump_cluster(cfg), tmp_path / "c.toml")


def test_no_validity_table_means_no_checks(tmp_path: Path) -> None:
    assert () == loads_cluster(BASE, tmp_path / "c.toml").validity
    assert "validity" not in dump_cluster(loads_cluster(BASE, tmp_path / "c.toml"))


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[validity]\nstale_samples = 1", "validity.stale_samples: must be in 2..100000, got 1"),
        ("[validity]\nstale = 3", "validity.stale: unknown key"),
        ("[validity.speed]\nmin = 0", "validity.speed: not a channel"),
        ("[validity.pitch_deg]\nmin = 5\nmax = 1", "validity.pitch_deg.min: 5 is above max 1"),
        ("[validity]\nmax_rate = -1.0", "validity.max_rate: must be > 0"),
        ("[validity]\nmin = nan", "validity.min: must be finite"),
        ("[validity]\nerror_window = 5", "error_window and errors_max go together"),
        ("[validity]\nerror_window = 5\nerrors_max = 5", "errors_max: must be below error_window"),
        ('[validity]\ntimeout_ticks = "3"', "validity.timeout_ticks: must be an integer"),
    ],
)
def test_bad_validity_is_one_line_naming_the_key(tmp_path: Path, table: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as e:
        loads_cluster(BASE + table + "\n", tmp_path / "c.toml")
    assert expected in str(e.value) and "\n" not in str(e.value)
