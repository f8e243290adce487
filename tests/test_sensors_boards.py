"""Real voterd processes on pty links, two reading IIO trees and two a pymavlink stream, decide."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from hil.cluster import ProcessCluster
from tests.conftest import run_cli
from tests.test_sensors_iio import iio_tree
from tests.test_sensors_mavlink import DEG_PER_RAD, Pty, send_flight
from voter.config import dump_cluster, load_cluster

ALTITUDE = {0: 100.5, 1: 100.6, 2: 100.4, 3: 100.7}


def iio_board(tmp: Path, node: int) -> dict[str, Any]:
    """A rangefinder, an ADC on a pitot and an inclinometer behind one IIO device."""
    raw = round(ALTITUDE[node] * 100)
    root = iio_tree(
        tmp / f"board{node}",
        {
            "i2c-1/1-0029/iio:device0": {
                "name": "airdata",
                "in_distance_raw": str(raw),
                "in_distance_scale": "0.01",
                "in_voltage0_raw": "600",
                "in_voltage_scale": "0.1",
                "in_incli_y_input": "2.0",
            }
        },
    )
    return {
        "kind": "iio",
        "root": str(root),
        "device": "airdata",
        "channels": ["distance", "voltage0", "incli_y"],
    }


def mavlink_board(pty: Pty) -> dict[str, Any]:
    return {
        "kind": "mavlink",
        "port": pty.port,
        "baud": 115200,
        "channels": ["VFR_HUD.alt", "VFR_HUD.airspeed", "ATTITUDE.pitch"],
        "scale": [1.0, 1.0, DEG_PER_RAD],
        "stale_ms": 200,
    }


def stream(ptys: dict[int, Pty], stop: threading.Event) -> None:
    """Two flight controllers streaming at 50 Hz until told to stop."""
    writers = {node: p.writer() for node, p in ptys.items()}
    while not stop.wait(0.02):
        for node, w in writers.items():
            # Before voterd opens its port the pty fills up; a flight controller drops too.
            with contextlib.suppress(BlockingIOError):
                send_flight(w, alt=ALTITUDE[node])


def test_iio_and_mavlink_boards_agree_on_their_readings(tmp_path: Path) -> None:
    """Each board's own entry is what its sensor said; every board publishes the same vote."""
    c = ProcessCluster(tmp_path / "run")
    c.setup()
    ptys = {2: Pty(), 3: Pty()}
    for p in ptys.values():
        os.set_blocking(p.master, False)
    cfg = load_cluster(c.config_path)
    sensors = {0: iio_board(tmp_path, 0), 1: iio_board(tmp_path, 1)}
    sensors |= {node: mavlink_board(p) for node, p in ptys.items()}
    nodes = tuple(dataclasses.replace(nd, sensor=sensors[nd.id]) for nd in cfg.nodes)
    c.config_path.write_text(dump_cluster(dataclasses.replace(cfg, nodes=nodes)))
    stop = threading.Event()
    writer = threading.Thread(target=stream, args=(ptys, stop), daemon=True)
    writer.start()
    try:
        c.start(until_tick=150)
        c.wait(60)
    finally:
        c.stop()
        stop.set()
        writer.join(5)
        for p in ptys.values():
            p.close()
    decided = {
        node: [
            json.loads(x)
            for x in c.log_path(node).read_text().splitlines()
            if '"output"' in x and json.loads(x).get("output") is not None
        ]
        for node in range(4)
    }
    # Agreement is a promise about published outputs: a board that stalled withholds its
    # decision of that tick (logged with "withheld"), and that one may differ (CI, loaded).
    published = {node: [d for d in lines if "withheld" not in d] for node, lines in decided.items()}
    # The last 50 ticks: every board has read its sensor by then.
    late = {
        node: {d["tick"]: d for d in lines if d["tick"] >= 100} for node, lines in decided.items()
    }
    assert all(len(v) >= 40 for v in late.values()), {n: len(v) for n, v in late.items()}
    for node, by_tick in late.items():
        for d in by_tick.values():
            own = d["vector"][node]
            assert [ALTITUDE[node], 60.0, 2.0] == pytest.approx(own, rel=1e-6), (node, d)
            assert 100.4 <= d["output"][0] <= 100.7 + 1e-6
            assert math.isclose(60.0, d["output"][1], rel_tol=1e-6)
    outputs = [
        {d["tick"]: d["output"] for d in published[node] if d["tick"] >= 100} for node in range(4)
    ]
    common = set.intersection(*(set(o) for o in outputs))
    assert common and all(o[t] == outputs[0][t] for o in outputs for t in common)


def _inline(table: dict[str, Any]) -> str:
    """A TOML inline table (strings, numbers and arrays of them: JSON spells them alike)."""
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "}"


def test_firmware_sim_run_with_iio_and_mavlink_boards(tmp_path: Path) -> None:
    """`firmware-sim run --sensor NODE=TABLE`: the same boards, from the command a user types."""
    ptys = {2: Pty(), 3: Pty()}
    for p in ptys.values():
        os.set_blocking(p.master, False)
    sensors = {0: iio_board(tmp_path, 0), 1: iio_board(tmp_path, 1)}
    sensors |= {node: mavlink_board(p) for node, p in ptys.items()}
    stop = threading.Event()
    writer = threading.Thread(target=stream, args=(ptys, stop), daemon=True)
    writer.start()
    out = tmp_path / "run"
    try:
        given = [a for node, t in sensors.items() for a in ("--sensor", f"{node}={_inline(t)}")]
        proc = run_cli(
            "firmware-sim",
            "run",
            "--ticks",
            "150",
            "--out",
            str(out),
            "--no-live",
            *given,
            timeout=120,
        )
    finally:
        stop.set()
        writer.join(5)
        for p in ptys.values():
            p.close()
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert "agreement: held   validity: held" in proc.stdout
    for node in range(4):
        lines = [json.loads(x) for x in (out / f"node{node}.jsonl").read_text().splitlines()]
        own = [d["vector"][node] for d in lines if "vector" in d and d["tick"] >= 100]
        assert len(own) >= 40
        assert all([ALTITUDE[node], 60.0, 2.0] == pytest.approx(v, rel=1e-6) for v in own)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ('9={kind="sim"}', "--sensor '9={kind=\"sim\"}': expected NODE=TABLE with NODE in 0..3"),
        ('0={kind="iio"}', "--sensor 0: sensor.device: missing"),
        ("0=kind", "--sensor 0: not a TOML inline table"),
        ('1={kind="iio", device="d", channels=["a"]}', "sensor.channels: has 1 entries"),
    ],
)
def test_a_bad_sensor_option_is_one_line(tmp_path: Path, given: str, why: str) -> None:
    proc = run_cli("firmware-sim", "run", "--out", str(tmp_path / "r"), "--sensor", given)
    assert 2 == proc.returncode
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and why in lines[0], proc.stderr
