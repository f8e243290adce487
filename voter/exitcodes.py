"""The board daemon's exit codes, and the one error that ends start-up with exit 2.

systemd's Restart=on-failure brings the board back after 70 and 71: a board that
stopped itself re-joins from its peers.
"""

from __future__ import annotations

#: stopped cleanly (SIGTERM, --ticks, --until-tick)
EXIT_OK = 0
#: bad configuration or environment (one line on stderr)
EXIT_CONFIG = 2
#: crash-on-inconsistency: the board's own invariant broke
EXIT_INCONSISTENT = 70
#: the HIL `crash` command: a board that lost power
EXIT_HIL_CRASH = 71


class SetupError(Exception):
    """The environment refuses something the daemon needs (one line for the user, exit 2)."""
