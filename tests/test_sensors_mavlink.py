"""MAVLink sensors: a real pymavlink writer on one end of a pty, voter's source on the other."""

from __future__ import annotations

import contextlib
import math
import os
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from tests.conftest import run_cli
from voter.sensor_mavlink import MavlinkSensor
from voter.sensors import SensorError

CHANNELS = ["VFR_HUD.alt", "VFR_HUD.airspeed", "ATTITUDE.pitch"]
DEG_PER_RAD = 180 / math.pi


class Pty:
    """A pty pair: the test writes MAVLink into `master`; the sensor opens `port` (the slave)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing before pyserial configures it
        self.port = os.ttyname(self.slave)

    def writer(self, sysid: int = 1) -> Any:
        out = os.fdopen(os.dup(self.master), "wb", buffering=0)
        return mavlink.MAVLink(out, srcSystem=sysid, srcComponent=1)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def send_flight(w: Any, alt: float = 100.5, airspeed: float = 60.0, pitch_deg: float = 2.0) -> None:
    """What a flight controller streams: VFR_HUD (SRn_EXTRA2) and ATTITUDE (SRn_EXTRA1)."""
    w.vfr_hud_send(airspeed, airspeed - 1, 90, 50, alt, 0.0)
    w.attitude_send(1000, 0.01, pitch_deg / DEG_PER_RAD, 1.5, 0.0, 0.0, 0.0)


def read_until(sensor: MavlinkSensor, tick: int, ok: Any, timeout_s: float = 5.0) -> Any:
    """Tick the sensor (as voterd does) until `ok(reading)`; the last reading."""
    deadline = time.monotonic() + timeout_s
    reading = sensor.read(tick)
    while not ok(reading) and time.monotonic() < deadline:
        time.sleep(0.01)
        reading = sensor.read(tick)
    return reading


def test_values_arrive_bad_bytes_are_counted_then_stale(pty: Pty) -> None:
    """The latest value per channel, scaled; line noise is counted; silence goes stale."""
    sensor = MavlinkSensor(
        pty.port, CHANNELS, baud=115200, scale=[1, 1, DEG_PER_RAD], stale_ticks=3
    )
    try:
        w = pty.writer()
        os.write(pty.master, b"\xfd\x09line noise\xfe\x05\x00garbage")
        send_flight(w)
        got = read_until(sensor, 10, lambda r: r is not None and None not in r)
        assert (100.5, 60.0, 2.0) == pytest.approx(got)
        assert sensor.bad >= 1 and sensor.messages == 2
        send_flight(w, alt=101.0)
        assert 101.0 == pytest.approx(read_until(sensor, 11, lambda r: r[0] == 101.0)[0])
        assert sensor.read(14) is not None
        assert sensor.read(15) is None  # nothing since tick 11, stale after 3 ticks
    finally:
        sensor.close()


def test_other_systems_are_ignored_when_sysid_is_set(pty: Pty) -> None:
    """A ground station's messages on the same link do not feed the vote."""
    sensor = MavlinkSensor(pty.port, ["VFR_HUD.alt"], baud=115200, sysid=1)
    try:
        send_flight(pty.writer(sysid=255), alt=5.0)
        send_flight(pty.writer(sysid=1), alt=7.0)
        assert (7.0,) == read_until(sensor, 0, lambda r: r == (7.0,))
        assert 4 == sensor.messages
    finally:
        sensor.close()


def test_a_port_that_dies_mid_run_is_counted_not_raised(pty: Pty) -> None:
    """The flight controller goes away (pty hung up): missing readings, never an exception."""
    sensor = MavlinkSensor(pty.port, CHANNELS, baud=115200, stale_ticks=2, reopen_ticks=5)
    try:
        send_flight(pty.writer())
        assert read_until(sensor, 0, lambda r: r is not None and None not in r) is not None
        pty.close()
        readings = [sensor.read(k) for k in range(1, 20)]
        assert readings[-1] is None
        assert sensor.errors >= 1
    finally:
        sensor.close()


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("ATTITUDE.pich", r"ATTITUDE has no field 'pich' \(fields: time_boot_ms, roll, pitch"),
        ("ATTITUD.pitch", r"no message 'ATTITUD' \(e.g. ATTITUDE.pitch\)"),
        ("STATUSTEXT.text", r"'STATUSTEXT.text': char field, not a number"),
        ("NAMED_VALUE_FLOAT.name", r"char field, not a number"),
    ],
)
def test_a_bad_channel_is_one_line_before_opening(pty: Pty, channel: str, expected: str) -> None:
    """Messages and fields are checked against the dialect when the source opens."""
    with pytest.raises(SensorError, match=expected):
        MavlinkSensor(pty.port, [channel])


def test_a_missing_port_is_one_line() -> None:
    """A flight controller that is not plugged in: the port is named."""
    with pytest.raises(SensorError, match=r"cannot open MAVLink port /dev/ttyACM77: "):
        MavlinkSensor("/dev/ttyACM77", CHANNELS)


def test_without_pymavlink_voterd_names_the_extra(tmp_path: Path) -> None:
    """A plain install with kind = "mavlink": one line naming pip install 'voter[mavlink]'."""
    out = tmp_path / "c"
    init = run_cli(
        "voter", "cluster", "init", "--nodes", "4", "--out", str(out), "--sensor", "mavlink",
        "--sensor-port", "/dev/ttyACM0", "--sensor-channels", ",".join(CHANNELS),
        "--sensor-scale", f"1,1,{DEG_PER_RAD}",
    )  # fmt: skip
    assert 0 == init.returncode, init.stderr
    # A pymavlink that cannot be imported, first on the path: what a plain install looks like.
    hidden = tmp_path / "hide" / "pymavlink"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named pymavlink')\n")
    env = {**os.environ, "PYTHONPATH": str(hidden.parent)}
    res = run_cli("voterd", "--config", str(out / "cluster.toml"), "--node", "0", env=env)
    assert 0 != res.returncode and "Traceback" not in res.stderr
    assert res.stderr.splitlines()[-1] == (
        "voterd: error: sensor kind \"mavlink\" needs pymavlink: pip install 'voter[mavlink]'"
    )
