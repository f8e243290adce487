"""Sensor sources (simulated, CSV replay, external process on a unix socket) and sensor faults."""

from __future__ import annotations

import json
import random
import socket
import tempfile
import time
from pathlib import Path

import pytest

from hil.cluster import ProcessCluster
from voter.core.values import ReadingDomain
from voter.faults import FaultState
from voter.sensors import CsvSensor, SensorError, SimSensor, SocketSensor


def test_sim_sensor_is_deterministic_and_boards_see_the_same_truth() -> None:
    """Same seed, node and tick -> same reading; two boards differ only by small noise."""
    a, b = SimSensor(3, 0, seed=1), SimSensor(3, 1, seed=1)
    assert a.read(10) == SimSensor(3, 0, seed=1).read(10)
    ra, rb = a.read(10), b.read(10)
    assert ra is not None and rb is not None and ra != rb
    assert abs(ra[0] - rb[0]) < 5.0  # altitude: same truth, independent noise


def test_csv_replay_by_tick_and_in_a_loop(tmp_path: Path) -> None:
    """With a tick column: that tick's row or ERROR; without: rows in a loop; empty = None."""
    by_tick = tmp_path / "t.csv"
    by_tick.write_text("tick,alt,spd\n5,100.5,20\n6,,21\n")
    s = CsvSensor(by_tick, 2)
    assert (100.5, 20.0) == s.read(5)
    assert (None, 21.0) == s.read(6)
    assert s.read(7) is None
    looped = tmp_path / "l.csv"
    looped.write_text("alt,spd\n1,2\n3,4\n")
    s2 = CsvSensor(looped, 2)
    assert [(1.0, 2.0), (3.0, 4.0), (1.0, 2.0)] == [s2.read(k) for k in range(3)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alt\n1\n", "has 1 channels, config has 2"),
        ("alt,spd\n", "no data rows"),
        ("alt,spd\n1,x\n", "line 2: not numbers"),
    ],
)
def test_bad_csv_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    """A malformed CSV is a SensorError naming the problem."""
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SensorError, match=expected):
        CsvSensor(path, 2)


def test_socket_feed_latest_reading_stale_and_malformed() -> None:
    """An external process sends JSON datagrams; the latest is used, bad ones are counted,
    and a reading older than stale_ticks becomes ERROR."""
    path = Path(tempfile.mkdtemp(prefix="voter-")) / "sensor.sock"
    s = SocketSensor(path, 2, stale_ticks=2)
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        tx.sendto(json.dumps({"values": [1.5, None]}).encode(), str(path))
        tx.sendto(b"not json", str(path))
        tx.sendto(json.dumps({"values": [1.0, "x"]}).encode(), str(path))
        time.sleep(0.05)
        assert (1.5, None) == s.read(10)
        assert 2 == s.bad
        assert (1.5, None) == s.read(12)
        assert s.read(13) is None
    finally:
        tx.close()
        s.close()
    assert not path.exists()


def faults() -> FaultState:
    return FaultState(ReadingDomain(2), random.Random(1), 0.02)


def test_sensor_faults_stuck_spike_dropout() -> None:
    """stuck repeats the last good reading, spike adds 5 km to channel 0, dropout is ERROR."""
    f = faults()
    for cmd in (
        {"cmd": "sensor", "mode": "stuck", "from_tick": 2, "to_tick": 3},
        {"cmd": "sensor", "mode": "spike", "from_tick": 4, "to_tick": 4},
        {"cmd": "sensor", "mode": "dropout", "from_tick": 5, "to_tick": 5},
    ):
        f.apply(json.dumps(cmd).encode())
    got = [f.corrupt_reading(k, (float(k), 1.0)) for k in range(7)]
    assert [(0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (5004.0, 1.0), None, (6.0, 1.0)] == got


def test_spiking_sensor_is_masked_by_the_vote(tmp_path: Path) -> None:
    """firmware-sim with board 0's altimeter spiking: the output never follows the spike."""
    from hil.pty_run import run
    from hil.scenario import Scenario
    from voter.faultmodel import parse_fault

    res = run(Scenario(ticks=120, faults=(parse_fault("sensor:0:spike:20-90", 4),)), tmp_path / "r")
    assert res.ok
    lines = [
        json.loads(x)
        for x in (tmp_path / "r" / "node1.jsonl").read_text().splitlines()
        if '"vector"' in x
    ]
    spiked = [x for x in lines if 20 <= x["tick"] <= 90]
    assert spiked and all(x["vector"][0][0] > 5000 for x in spiked)
    assert all(x["output"][0] < 2000 for x in lines)


def test_voted_output_is_published_on_the_output_socket(tmp_path: Path) -> None:
    """Each decided tick is sent as a JSON datagram to the consumer's unix socket."""
    sock_dir = Path(tempfile.mkdtemp(prefix="voter-"))
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(sock_dir / "out0.sock"))
    rx.settimeout(5)
    c = ProcessCluster(tmp_path / "run", output_socket=str(sock_dir / "out{node}.sock"))
    c.setup()
    try:
        c.start(until_tick=60)
        got = [json.loads(rx.recv(4096)) for _ in range(20)]
        c.wait(10)
    finally:
        c.stop()
        rx.close()
    assert {"tick", "node", "output", "entries"} <= set(got[0])
    assert {0} == {g["node"] for g in got}
    assert [g["tick"] for g in got] == sorted(g["tick"] for g in got)
    assert all(len(g["output"]) == 3 and g["entries"] == 4 for g in got)


def test_sensor_fault_modes_frozen_step_drift_noise_dropout() -> None:
    """Each mode on one channel (the others untouched), or on all, in its window."""
    f = faults()
    for cmd in (
        {"cmd": "sensor", "mode": "frozen", "channel": 1, "from_tick": 2, "to_tick": 3},
        {"cmd": "sensor", "mode": "step", "amount": 10.0, "from_tick": 4, "to_tick": 4},
        {"cmd": "sensor", "mode": "drift", "amount": 50.0, "channel": 0, "from_tick": 5,
         "to_tick": 6},
        {"cmd": "sensor", "mode": "dropout", "channel": 1, "from_tick": 7, "to_tick": 7},
        {"cmd": "sensor", "mode": "noise", "amount": 3.0, "from_tick": 8, "to_tick": 8},
    ):  # fmt: skip
        f.apply(json.dumps(cmd).encode())
    got = [f.corrupt_reading(k, (float(k), 100.0 + k)) for k in range(10)]
    assert (0.0, 100.0) == got[0] and (1.0, 101.0) == got[1]
    assert [(2.0, 101.0), (3.0, 101.0)] == got[2:4], "channel 1 frozen at tick 1's value"
    assert (14.0, 114.0) == got[4], "a step on every channel"
    assert [(5.0, 105.0), (7.0, 106.0)] == got[5:7], "50/s for one 20 ms tick on channel 0"
    assert (7.0, None) == got[7]
    noisy = got[8]
    assert isinstance(noisy, tuple) and noisy != (8.0, 108.0), "seeded Gaussian noise"
    assert (9.0, 109.0) == got[9]


def test_a_sensor_fault_on_a_channel_the_board_lacks_is_refused() -> None:
    from voter.faults import FaultCommandError

    with pytest.raises(FaultCommandError, match=r"channel 2 is not in 0\.\.1"):
        faults().apply(b'{"cmd": "sensor", "mode": "step", "channel": 2}')


def test_sim_sensor_noise_is_random_gauss_exactly() -> None:
    """`SimSensor.read` spells `random.gauss` out (speed, issue 12): every reading must be
    the float the library call gives, or every simulated history would change."""

    for channels in (3, 4, 7):
        for node in range(4):
            s = SimSensor(channels, node, 7, 0.05)
            for tick in range(0, 3000, 7):
                rng = random.Random(f"7/{node}/{tick}")
                t = tick * 0.05
                parts = zip(s.truth(tick), s.bias, s.drift, s.noise, strict=True)
                ref = tuple(round(x + b + d * t + rng.gauss(0.0, n), 4) for x, b, d, n in parts)
                assert ref == s.read(tick), (channels, node, tick)
