"""systemd integration: sd_notify over real AF_UNIX datagram sockets, and the log sink."""

from __future__ import annotations

import io
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voter.logsink import PRIORITY_ERROR, PRIORITY_INFO, PRIORITY_WARNING, Log, field_name
from voter.sdnotify import Notifier, watchdog_interval_s


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder whose socket paths fit in sun_path (108 bytes), tmp_path if short enough."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="vsd") as d:
        yield Path(d)


def _receiver(address: str | bytes) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address)
    s.settimeout(2.0)
    return s


def test_messages_arrive_as_datagrams_on_a_path_socket(sock_dir: Path) -> None:
    """ready/watchdog/status/stopping/notify each send one datagram with the sd_notify text."""
    path = sock_dir / "notify"
    rx = _receiver(str(path))
    try:
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.enabled
        assert n.ready() and n.watchdog() and n.status("tick 42, 3 peers") and n.stopping()
        assert n.notify("READY=1\nSTATUS=joined")
        got = [rx.recv(4096) for _ in range(5)]
        n.close()
    finally:
        rx.close()
    assert got == [
        b"READY=1",
        b"WATCHDOG=1",
        b"STATUS=tick 42, 3 peers",
        b"STOPPING=1",
        b"READY=1\nSTATUS=joined",
    ]
    assert (n.sent, n.send_errors) == (5, 0)


def test_abstract_namespace_socket() -> None:
    """NOTIFY_SOCKET='@name' reaches a socket bound in the abstract namespace."""
    name = f"voter-test-{os.getpid()}-{os.urandom(4).hex()}"
    rx = _receiver(b"\0" + name.encode())
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert rx.recv(4096) == b"READY=1"
    finally:
        rx.close()


def test_status_newlines_do_not_inject_assignments(sock_dir: Path) -> None:
    """A newline in a status text cannot smuggle in a second assignment such as READY=1."""
    path = sock_dir / "n"
    rx = _receiver(str(path))
    try:
        Notifier({"NOTIFY_SOCKET": str(path)}).status("bad\nREADY=1")
        assert rx.recv(4096) == b"STATUS=bad READY=1"
    finally:
        rx.close()


def test_unset_notify_socket_is_a_no_op() -> None:
    """Without NOTIFY_SOCKET nothing is sent and nothing fails."""
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.status("x")
    assert (n.sent, n.send_errors) == (0, 0)


def test_default_env_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notifier() reads os.environ."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().enabled
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    assert Notifier().enabled


def test_send_failure_is_counted_not_raised(sock_dir: Path) -> None:
    """A socket that does not exist (or went away) never raises; failures are counted."""
    n = Notifier({"NOTIFY_SOCKET": str(sock_dir / "nobody-listens")})
    assert not n.ready()
    assert not n.watchdog()
    assert (n.sent, n.send_errors) == (0, 2)
    # The manager coming back later is picked up: the next send succeeds.
    rx = _receiver(str(sock_dir / "nobody-listens"))
    try:
        assert n.watchdog()
        assert rx.recv(4096) == b"WATCHDOG=1"
    finally:
        rx.close()


def test_full_receiver_does_not_block(sock_dir: Path) -> None:
    """Sends to a receiver that never reads fail fast (counted) instead of blocking."""
    path = sock_dir / "full"
    rx = _receiver(str(path))
    try:
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        for _ in range(2000):
            n.watchdog()
        assert n.sent > 0 and n.send_errors > 0
        assert n.sent + n.send_errors == 2000
    finally:
        rx.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "2000000"}, 2.0),
        ({"WATCHDOG_USEC": "500"}, 0.0005),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "self"}, 2.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    """WATCHDOG_USEC in seconds, only for the process named by WATCHDOG_PID when set."""
    if env.get("WATCHDOG_PID") == "self":
        env = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval_s(env) == expected


# --------------------------------------------------------------------------- log sink


def test_log_plain_line_format() -> None:
    """Without the journal, one stderr line: 'voterd[node 2]: message key=value ...'."""
    out = io.StringIO()
    log = Log(2, stream=out, journal=False)
    log.event("decided", tick=1234, late=0)
    log.warning("link quiet", peer=3, port="/dev/voter-link3")
    log.error("stopping", reason="ecc double-bit error")
    assert out.getvalue().splitlines() == [
        "voterd[node 2]: decided tick=1234 late=0",
        "voterd[node 2]: link quiet peer=3 port=/dev/voter-link3",
        'voterd[node 2]: stopping reason="ecc double-bit error"',
    ]


def test_log_message_is_one_line() -> None:
    """Newlines in a message cannot split it into several log lines."""
    out = io.StringIO()
    Log(0, stream=out, journal=False).event("a\nb", v=[1, None])
    assert out.getvalue() == "voterd[node 0]: a b v=[1, null]\n"


def test_log_to_injected_journal_with_structured_fields() -> None:
    """With a journal send function, MESSAGE, PRIORITY and VOTER_* fields are sent."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def send(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))

    out = io.StringIO()
    log = Log(2, stream=out, journal=send)
    assert log.to_journal
    log.event("decided", tick=7, output=[1.5, 2.0])
    log.warning("late frame", peer=1)
    log.error("stop", reason="com/mon mismatch")
    assert out.getvalue() == ""
    assert [c[0] for c in calls] == [("decided",), ("late frame",), ("stop",)]
    first = calls[0][1]
    assert first["PRIORITY"] == str(PRIORITY_INFO)
    assert first["VOTER_NODE"] == "2" and first["VOTER_TICK"] == "7"
    assert first["VOTER_OUTPUT"] == "[1.5, 2.0]"
    assert first["SYSLOG_IDENTIFIER"] == "voterd"
    assert calls[1][1]["PRIORITY"] == str(PRIORITY_WARNING)
    assert calls[2][1]["PRIORITY"] == str(PRIORITY_ERROR)
    assert calls[2][1]["VOTER_REASON"] == "com/mon mismatch"


def test_broken_journal_falls_back_to_stderr() -> None:
    """A journal send that raises is counted and the line goes to the stream."""

    def send(*args: Any, **kwargs: Any) -> None:
        raise OSError("journald gone")

    out = io.StringIO()
    log = Log(1, stream=out, journal=send)
    log.event("hello", tick=1)
    assert out.getvalue() == "voterd[node 1]: hello tick=1\n"
    assert log.write_errors == 1


def test_closed_stream_never_raises() -> None:
    """Writing to a closed stderr is counted, not raised."""
    out = io.StringIO()
    out.close()
    log = Log(1, stream=out, journal=False)
    log.error("x")
    assert log.write_errors == 1


def test_auto_mode_uses_stderr_unless_it_is_the_journal_stream(tmp_path: Path) -> None:
    """Auto mode: a pipe/file stderr gets plain lines; JOURNAL_STREAM naming it adds <prio>."""
    with open(tmp_path / "err", "w+") as f:
        plain = Log(3, stream=f, env={})
        assert not plain.to_journal
        plain.warning("w")
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        under = Log(3, stream=f, env=env)
        if not under.to_journal:  # systemd-python absent: sd-daemon level prefix instead
            under.error("e")
            f.seek(0)
            assert f.read().splitlines() == ["voterd[node 3]: w", "<3>voterd[node 3]: e"]
        other = Log(3, stream=f, env={"JOURNAL_STREAM": "1:2"})
        assert not other.to_journal


def test_field_names() -> None:
    """Keyword names become upper-case VOTER_ journald fields."""
    assert field_name("tick") == "VOTER_TICK"
    assert field_name("late-frames") == "VOTER_LATE_FRAMES"
