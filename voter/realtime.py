"""SCHED_FIFO for the board while it votes, and back to normal before it exits.

Asked for, never required: a unit (or a laptop) that does not grant it leaves
the board a normal process, quietly.
"""

from __future__ import annotations

import contextlib
import os

from voter.logsink import Log

#: the boards' priority: below the rig's pty workers (25) and link fabric (30), see hil.fabric
FIFO_PRIORITY = 20


def enter_fifo(log: Log) -> None:
    try:
        if os.sched_getscheduler(0) != os.SCHED_FIFO:  # the unit may have set it
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
        log.event("real-time scheduling on", policy="SCHED_FIFO")
    except (PermissionError, OSError, AttributeError):
        pass  # not granted by the unit (or not Linux): run as a normal process


def leave_fifo() -> None:
    """Interpreter teardown at SCHED_FIFO would hold a core for milliseconds and delay
    the boards that are still voting."""
    with contextlib.suppress(PermissionError, OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
