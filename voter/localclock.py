"""The board's local clock: monotonic, with the HIL rig's drift and step faults on top.

The tick driver only ever sees this clock's `now()`; real waits (select(2),
sleep) are converted back with `to_real_delay`.
"""

from __future__ import annotations

import time


class Clock:
    """The board's local clock: monotonic, optionally drifting or stepped (HIL faults)."""

    def __init__(self) -> None:
        self._base = time.monotonic()
        self.drift_ppm = 0.0
        self._offset = 0.0  # keeps the clock continuous when the drift changes; holds steps

    def now(self) -> float:
        real = time.monotonic() - self._base
        return real * (1.0 + self.drift_ppm * 1e-6) + self._offset

    def set_drift(self, ppm: float) -> None:
        before = self.now()
        self.drift_ppm = ppm
        after = self.now()
        self._offset += before - after

    def step(self, seconds: float) -> None:
        """The HIL clock-step fault: the clock jumps (a crystal glitch, a bad RTC write)."""
        self._offset += seconds

    def to_real_delay(self, local_delay: float) -> float:
        return local_delay / (1.0 + self.drift_ppm * 1e-6)
