"""packaging/systemd/voterd@.service: required settings, systemd-analyze verify and security."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "packaging" / "systemd" / "voterd@.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

# Settings `systemd-analyze security` still marks (✗), each kept on purpose. Anything else
# marked fails the test: a new exposure must be justified here or fixed in the unit.
ALLOWED_EXPOSURES = {
    "RestrictRealtime=": "the tick loop runs SCHED_FIFO; RestrictRealtime would refuse it",
    "SystemCallFilter=~@resources": "@resources holds sched_setscheduler/setrlimit for SCHED_FIFO",
    "PrivateDevices=": "PrivateDevices would hide the serial ports; DevicePolicy=closed instead",
    "DeviceAllow=": "the serial port drivers (ttyAMA, ttyUSB, ttyACM) are the links",
    "SupplementaryGroups=": "dialout owns the serial ports",
    "RestrictAddressFamilies=~AF_UNIX": "journald, sd_notify, HIL and output sockets",
    "PrivateUsers=": "a user namespace maps only the unit's own user/group, not dialout",
    "RootDirectory=/RootImage=": "the daemon runs from a venv on the host file system",
}
MAX_EXPOSURE = 1.5


def unit_settings() -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; keys may repeat (DeviceAllow)."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(section: str, key: str) -> list[str]:
    return [v for s, k, v in unit_settings() if s == section and k == key]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        (
            "Service",
            "ExecStart",
            "/usr/local/bin/voterd --config /etc/voter/cluster.toml --node %i",
        ),
        ("Service", "WatchdogSec", "2s"),
        ("Service", "Restart", "on-failure"),
        ("Service", "RestartSec", "1s"),
        ("Service", "RestartForceExitStatus", "70"),
        ("Service", "RestartPreventExitStatus", "78"),  # EX_CONFIG: a restart cannot fix it
        ("Service", "User", "voter"),
        ("Service", "Group", "voter"),
        ("Service", "SupplementaryGroups", "dialout"),
        ("Service", "StateDirectory", "voter"),
        ("Service", "CPUSchedulingPolicy", "fifo"),
        ("Service", "CPUSchedulingPriority", "50"),
        ("Service", "DevicePolicy", "closed"),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "CapabilityBoundingSet", ""),
        ("Service", "MemoryDenyWriteExecute", "yes"),
        ("Service", "RestrictAddressFamilies", "AF_UNIX"),
        ("Service", "UMask", "0077"),
        ("Unit", "StartLimitIntervalSec", "60s"),
        ("Unit", "StartLimitBurst", "10"),
    ],
)
def test_unit_has_required_setting(section: str, key: str, value: str) -> None:
    """The unit sets what the deployment relies on (notify, watchdog, restart, RT, sandbox)."""
    assert values(section, key) == [value]


def test_unit_keeps_serial_and_realtime_working() -> None:
    """Serial ports stay reachable and SCHED_FIFO allowed: no PrivateDevices/RestrictRealtime."""
    keys = {k for _, k, _ in unit_settings()}
    assert "PrivateDevices" not in keys
    assert "RestrictRealtime" not in keys
    assert {"char-ttyAMA rw", "char-ttyUSB rw"} <= set(values("Service", "DeviceAllow"))
    assert int(values("Service", "LimitRTPRIO")[0]) >= int(
        values("Service", "CPUSchedulingPriority")[0]
    )


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # verify checks that ExecStart's binary exists; voterd is not installed at
    # /usr/local/bin here, so point it at an executable that is, keeping the arguments.
    # The copy is named as an instance (voterd@0) so %i expands as on a board.
    text = unit_text.replace("ExecStart=/usr/local/bin/voterd", "ExecStart=/bin/true")
    copy = tmp_path / "voterd@0.service"
    copy.write_text(text)
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", "--recursive-errors=no", "--man=no", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing about the unit."""
    proc = _verify(UNIT.read_text(), tmp_path)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "voterd@" in line]
    assert proc.returncode == 0 and complaints == [], proc.stdout + proc.stderr


@needs_analyze
def test_verify_harness_catches_a_typo(tmp_path: Path) -> None:
    """The verify harness itself works: a misspelt directive is reported."""
    bad = UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    proc = _verify(bad, tmp_path)
    assert "NoNewPrivilege" in proc.stdout + proc.stderr


@needs_analyze
def test_systemd_analyze_security_offline(tmp_path: Path) -> None:
    """Offline security review: overall SAFE/OK, and every ✗ line is in the allow-list."""
    copy = tmp_path / "voterd@0.service"
    copy.write_text(
        UNIT.read_text().replace("ExecStart=/usr/local/bin/voterd", "ExecStart=/bin/true")
    )
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    if "Unknown command verb" in out or "unrecognized option" in out:
        pytest.skip(f"this systemd-analyze has no offline security review: {out.strip()[:200]}")
    overall = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", out)
    assert overall, out
    exposure, label = float(overall.group(1)), overall.group(2)
    # A marked line starts with "✗" (UTF-8 locale) or "-" (ASCII), then the setting's name.
    marked = [m.group(1) for m in re.finditer(r"^(?:✗|-) (\S+)", out, re.MULTILINE)]
    assert marked, out
    unexpected = [m for m in marked if m not in ALLOWED_EXPOSURES]
    assert unexpected == [], out
    assert "UNSAFE" not in out and label in ("SAFE", "OK"), out
    assert exposure <= MAX_EXPOSURE, out


MDWE_PROBE = r"""
import ctypes, mmap, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print("no-mdwe", ctypes.get_errno()); sys.exit(0)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx-allowed"); sys.exit(1)
except OSError:
    pass
import importlib, pkgutil
import msgpack, crc32c, serial, nacl.signing
import voter, voter.core
for info in pkgutil.walk_packages(voter.core.__path__, "voter.core."):
    importlib.import_module(info.name)
for name in ("voter.config", "voter.keys", "voter.sdnotify", "voter.logsink", "voter.cli",
             "voter.voterd"):
    importlib.import_module(name)
sk = nacl.signing.SigningKey(bytes(32))
sk.verify_key.verify(sk.sign(b"tick"))
msgpack.unpackb(msgpack.packb([1, 2.5, "x"]))
crc32c.crc32c(b"frame")
port = serial.serial_for_url("loop://", baudrate=921600, timeout=0)
port.write(b"\x00abc\x00")
assert port.read(5) == b"\x00abc\x00"
print("ok")
"""


def test_cpython_and_extensions_work_without_wx_memory() -> None:
    """MemoryDenyWriteExecute=yes is safe: the daemon's imports and crypto run under PR_SET_MDWE."""
    proc = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE], check=False, capture_output=True, text=True, timeout=120
    )
    if proc.stdout.startswith("no-mdwe"):
        pytest.skip("kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


DROPIN = UNIT.parent / "voterd-network.conf"


def test_network_dropin_lifts_only_the_network() -> None:
    """The drop-in for network outputs opens IP sockets to local networks and nothing else;
    the shipped unit itself stays without a network."""
    assert ["yes"] == values("Service", "PrivateNetwork")
    assert ["any"] == values("Service", "IPAddressDeny")
    settings: dict[str, str] = {}
    for raw in DROPIN.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings[key] = value
    assert {"PrivateNetwork", "RestrictAddressFamilies", "IPAddressAllow"} == set(settings)
    assert "no" == settings["PrivateNetwork"]
    assert {"AF_INET", "AF_INET6"} == set(settings["RestrictAddressFamilies"].split())
    assert "any" not in settings["IPAddressAllow"]


@needs_analyze
def test_systemd_analyze_verify_with_the_network_dropin(tmp_path: Path) -> None:
    """The unit with the drop-in installed as voterd@.service.d/network.conf verifies clean,
    and systemd reads the drop-in (a misspelt setting in it is reported)."""
    dropins = tmp_path / "voterd@.service.d"
    dropins.mkdir()
    (dropins / "network.conf").write_text(DROPIN.read_text())
    proc = _verify(UNIT.read_text(), tmp_path)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "voterd" in line]
    assert proc.returncode == 0 and complaints == [], proc.stdout + proc.stderr
    (dropins / "network.conf").write_text(
        DROPIN.read_text().replace("PrivateNetwork=no", "PrivateNetwrk=no")
    )
    bad = _verify(UNIT.read_text(), tmp_path)
    assert "PrivateNetwrk" in bad.stdout + bad.stderr
