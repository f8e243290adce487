"""Linux IIO sensors, read from a sysfs tree laid out as the kernel does (bus/iio/devices links)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from voter.sensor_iio import IioSensor, find_device, open_channels
from voter.sensors import SensorError, open_sensor

#: folder -> files, as drivers lay them out (values as sysfs prints them)
DEVICES: dict[str, dict[str, str]] = {
    # bmp280 (i2c): processed values only; pressure in kPa, temperature in milli-degrees C
    "i2c-1/1-0076/iio:device0": {
        "name": "bmp280",
        "in_pressure_input": "100.325000000",
        "in_temp_input": "21500",
        "in_pressure_oversampling_ratio": "16",
    },
    # mpu6050 (i2c): raw counts, scale shared per type, temperature with an offset
    "i2c-1/1-0068/iio:device1": {
        "name": "mpu6050",
        "in_accel_x_raw": "-120",
        "in_accel_z_raw": "16384",
        "in_accel_scale": "0.000598",
        "in_anglvel_x_raw": "10",
        "in_anglvel_scale": "0.001064724",
        "in_temp_raw": "-1000",
        "in_temp_offset": "12420.000000",
        "in_temp_scale": "2.941176",
    },
    # ads1015 (i2c) with a device-tree label; a channel's own scale beats its type's
    "i2c-1/1-0048/iio:device2": {
        "name": "ads1015",
        "label": "pitot",
        "in_voltage0_raw": "1234",
        "in_voltage0_scale": "3.0",
        "in_voltage_scale": "99",
    },
}


def iio_tree(tmp: Path, devices: dict[str, dict[str, str]] = DEVICES) -> Path:
    """sys/devices/platform/... folders, and sys/bus/iio/devices/iio:deviceN links to them."""
    root = tmp / "sys" / "bus" / "iio" / "devices"
    root.mkdir(parents=True)
    for where, files in devices.items():
        folder = tmp / "sys" / "devices" / "platform" / "soc" / "fe804000.i2c" / where
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text + "\n")
        (root / folder.name).symlink_to(folder)
    return root


def test_values_follow_the_kernel_abi(tmp_path: Path) -> None:
    """(raw + offset) * scale with the channel's or its type's scale; _input is taken as is."""
    root = iio_tree(tmp_path)
    imu = IioSensor(
        open_channels(find_device(root, "mpu6050"), ["accel_z", "in_anglvel_x", "temp"], [1] * 3),
        0.02,
        0.1,
    )
    expected = (16384 * 0.000598, 10 * 0.001064724, (-1000 + 12420) * 2.941176)
    assert expected == pytest.approx(imu.sample())
    baro = open_channels(find_device(root, "bmp280"), ["pressure", "temp"], [10.0, 0.001])
    assert (1003.25, 21.5) == pytest.approx(IioSensor(baro, 0.02, 0.1).sample())
    adc = open_channels(find_device(root, "pitot"), ["voltage0"], [1.0])
    assert (3702.0,) == pytest.approx(IioSensor(adc, 0.02, 0.1).sample())


def test_device_by_folder_path_name_or_label(tmp_path: Path) -> None:
    """iio:deviceN, an absolute folder, the driver's name or a label all find the device."""
    root = iio_tree(tmp_path)
    want = (root / "iio:device1").resolve()
    for device in ("iio:device1", str(root / "iio:device1"), "mpu6050"):
        assert want == find_device(root, device).resolve()
    assert (root / "iio:device2").resolve() == find_device(root, "pitot").resolve()


@pytest.mark.parametrize(
    ("device", "channel", "expected"),
    [
        ("bmp281", "pressure", r"no IIO device 'bmp281' under .* iio:device0 = bmp280, "),
        ("bmp280", "humidityrelative", r"no channel 'humidityrelative' .* pressure, temp\)"),
        ("/nonexistent/iio:device7", "x", r"IIO device /nonexistent/iio:device7 is not a folder"),
    ],
)
def test_missing_device_or_channel_is_one_line(
    tmp_path: Path, device: str, channel: str, expected: str
) -> None:
    """A wrong device or channel names what is there, before the board ticks."""
    root = iio_tree(tmp_path)
    with pytest.raises(SensorError, match=expected) as err:
        open_channels(find_device(root, device), [channel], [1.0])
    assert "\n" not in str(err.value)


def test_two_devices_with_one_name_must_be_named_by_folder(tmp_path: Path) -> None:
    """Two barometers of the same make: the name is ambiguous, the message says what to write."""
    twins = {"a/iio:device0": {"name": "bmp280"}, "b/iio:device1": {"name": "bmp280"}}
    with pytest.raises(SensorError, match=r'2 IIO devices .* device = "iio:device0"'):
        find_device(iio_tree(tmp_path, twins), "bmp280")


def test_a_failed_read_is_a_missing_channel_counted(tmp_path: Path) -> None:
    """A file that vanishes or holds garbage mid-run is None for that channel, never a crash."""
    root = iio_tree(tmp_path)
    folder = find_device(root, "mpu6050")
    imu = IioSensor(open_channels(folder, ["accel_x", "anglvel_x", "temp"], [1] * 3), 0.02, 0.1)
    (folder / "in_accel_x_raw").write_text("garbage\n")
    (folder / "in_anglvel_x_raw").unlink()
    got = imu.sample()
    assert (None, None) == got[:2] and got[2] is not None
    assert 2 == imu.errors
    (folder / "in_accel_x_raw").write_text("100\n")
    assert 100 * 0.000598 == pytest.approx(imu.sample()[0])


def test_latest_sample_from_the_thread_then_stale(tmp_path: Path) -> None:
    """The thread keeps sampling; read() hands over its latest, or None once it is stale."""
    folder = find_device(iio_tree(tmp_path), "bmp280")
    baro = IioSensor(open_channels(folder, ["pressure"], [1.0]), 0.01, 0.5).start()
    try:
        assert (100.325,) == baro.read(0)
        (folder / "in_pressure_input").write_text("99.5\n")
        deadline = time.monotonic() + 5
        while baro.read(1) != (99.5,) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (99.5,) == baro.read(1)
    finally:
        baro.close()
    now = [0.0]
    held = IioSensor(open_channels(folder, ["pressure"], [1.0]), 60.0, 0.1, lambda: now[0])
    held.start()
    try:
        assert (99.5,) == held.read(0)
        now[0] = 0.2
        assert held.read(10) is None
    finally:
        held.close()


def test_open_sensor_reads_the_config_table(tmp_path: Path) -> None:
    """`sensor = {kind = "iio", ...}` with a root relative to the config's folder."""
    iio_tree(tmp_path)
    spec = {
        "kind": "iio",
        "root": "sys/bus/iio/devices",
        "device": "bmp280",
        "channels": ["pressure", "temp"],
        "scale": [10.0, 0.001],
    }
    src = open_sensor(spec, 2, 0, 0.02, tmp_path)
    try:
        reading = src.read(0)
        assert reading is not None and math.isclose(1003.25, reading[0] or 0)
    finally:
        src.close()


def test_voterd_names_a_missing_iio_device_in_one_line(tmp_path: Path) -> None:
    """`cluster init --sensor iio` for a device that is not there: voterd says so and stops."""
    root = iio_tree(tmp_path)
    out = tmp_path / "c"
    init = run_cli(
        "voter", "cluster", "init", "--nodes", "4", "--out", str(out), "--sensor", "iio",
        "--sensor-device", "baro{node}", "--sensor-root", str(root),
        "--sensor-channels", "pressure,temp,humidityrelative",
    )  # fmt: skip
    assert 0 == init.returncode, init.stderr
    show = run_cli("voter", "cluster", "show", str(out / "cluster.toml"))
    assert "sensor: iio  device=baro2  root=" in show.stdout and "simulated" not in show.stderr
    res = run_cli("voterd", "--config", str(out / "cluster.toml"), "--node", "2")
    assert 0 != res.returncode
    assert "Traceback" not in res.stderr
    assert res.stderr.splitlines()[-1].startswith(
        f"voterd: error: no IIO device 'baro2' under {root}"
    )


def test_no_iio_tree_at_all_says_no_driver(tmp_path: Path) -> None:
    """A board without any IIO driver loaded has no /sys/bus/iio: say that, not ENOENT."""
    with pytest.raises(SensorError, match=r"no IIO device 'bmp280': .* does not exist \(no IIO"):
        find_device(tmp_path / "sys" / "bus" / "iio" / "devices", "bmp280")
