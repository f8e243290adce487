"""A tiny sd_notify(3) client: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1 over AF_UNIX datagrams.

No dependency on libsystemd. A Notifier built without NOTIFY_SOCKET is a no-op, so the daemon
calls it unconditionally whether or not it runs under systemd. It must never raise from a send:
a notification that cannot be delivered must not take down a board that is otherwise voting
correctly (systemd's watchdog will notice a real hang on its own); failures are only counted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends state strings to the service manager's notification socket, if there is one."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None
        if not raw:
            self.address = None
        elif raw.startswith("@"):
            # Abstract namespace: the leading '@' stands for a NUL byte (Linux only).
            self.address = b"\0" + raw[1:].encode()
        else:
            self.address = raw
        self.sent = 0
        self.send_errors = 0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when NOTIFY_SOCKET was set."""
        return self.address is not None

    def notify(self, text: str) -> bool:
        """Send one datagram (e.g. "READY=1\\nSTATUS=..."); True if it was handed to the kernel."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A full or stuck receiver must not block the tick loop.
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(text.encode("utf-8", "replace"), self.address)
        except OSError:
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        # One datagram is one assignment list; a newline would start a new (bogus) assignment.
        return self.notify("STATUS=" + text.replace("\n", " "))

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects pings within (WatchdogSec), or None if there is none.

    Callers should ping at about half of this. WATCHDOG_PID, when set, names the process the
    watchdog is meant for; any other process (e.g. a child) must not ping on its behalf.
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 1_000_000
