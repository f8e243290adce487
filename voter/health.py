"""What the board tells systemd: READY, the watchdog ping, a one-line STATUS=, STOPPING.

The watchdog is fed from the decisions (a board that stops deciding is hung and
gets restarted), at a quarter of WatchdogSec; STATUS= at most once a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from voter.core.driver import TickDriver
from voter.sdnotify import Notifier, watchdog_interval_s


class Health:
    """The board's sd_notify side: readiness, the watchdog, and the status line."""

    def __init__(
        self,
        driver: TickDriver,
        notifier: Notifier,
        *,
        common_start: bool,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.driver = driver
        self.notifier = notifier
        wd = watchdog_interval_s(env)
        self.watchdog_every = wd / 4 if wd else 1.0
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        # After a HIL restart the watchdog was stretched over the start-up; undo it once ticking.
        self._restore_watchdog = common_start and bool(self._watchdog_usec)
        self._last_wd = 0.0
        self._last_status = 0.0

    def ready(self, tick: int) -> None:
        self.notifier.ready()
        self.notifier.status(f"joined at tick {tick}")

    def waiting(self) -> None:
        """Still alive while waiting for a common start (no decisions yet)."""
        self.notifier.watchdog()

    def stretch_watchdog(self, seconds: float) -> None:
        """Give a re-executing board `seconds` to start again before systemd calls it hung."""
        self.notifier.notify(f"WATCHDOG_USEC={int(seconds * 1e6)}")
        self.notifier.watchdog()

    def stopping(self) -> None:
        self.notifier.stopping()

    def decided(self, tick: int) -> None:
        """Feed the watchdog and refresh STATUS= after a decision, each at its own rate."""
        now = time.monotonic()
        if now - self._last_wd >= self.watchdog_every:
            self.notifier.watchdog()
            self._last_wd = now
            if self._restore_watchdog:
                self.notifier.notify(f"WATCHDOG_USEC={self._watchdog_usec}")
                self._restore_watchdog = False
        if now - self._last_status >= 1.0:
            t = self.driver.board.totals
            self.notifier.status(
                f"tick {tick}, {self.driver.status()}, frames in {t.frames_in} "
                f"out {t.frames_out}, dropped {t.dropped}, late {t.late}, "
                f"corrected {t.corrected}"
            )
            self._last_status = now
