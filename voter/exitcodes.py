"""Exit codes of the console scripts: which failures a supervisor should retry, which not.

sysexits(3) names for the daemon, so systemd's unit can tell them apart:
Restart=on-failure brings a board back after 70 and 71 (a board that stopped
itself re-joins from its peers) and after 69 (a port or sensor not there yet,
e.g. a USB adapter still enumerating), but RestartPreventExitStatus=78 keeps a
bad configuration from being restarted ten times: restarting cannot fix it.
"""

from __future__ import annotations

#: stopped cleanly (SIGTERM, Ctrl-C, --ticks, --until-tick); for hil verify: the property holds
EXIT_OK = 0
#: hil verify found a counterexample; hil campaign run / firmware-sim: a property or
#: scenario failed (an answer, not a crash)
EXIT_FAILED = 1
#: the command line itself is wrong (argparse's own code; voter._cli_util.fail's default)
EXIT_USAGE = 2
#: EX_UNAVAILABLE: something outside the config is not there (a serial port missing or
#: held by another process, a sensor that does not open, the HIL control socket)
EXIT_UNAVAILABLE = 69
#: EX_SOFTWARE, crash-on-inconsistency: the board's own invariant broke
EXIT_INCONSISTENT = 70
#: the HIL `crash` command: a board that lost power
EXIT_HIL_CRASH = 71
#: EX_CONFIG: the cluster file, this board's entry in it, or its key file is wrong
EXIT_CONFIG = 78
#: Ctrl-C (128 + SIGINT, as a shell reports it): the command was stopped and cleaned up
EXIT_INTERRUPTED = 130

#: voterd's statuses as its --help lists them (docs/deploy.md explains the unit's use of them)
VOTERD_STATUSES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "stopped cleanly (SIGTERM, Ctrl-C, --ticks, --until-tick)"),
    (EXIT_USAGE, "the command line is wrong (one line on stderr)"),
    (EXIT_UNAVAILABLE, "a serial port or sensor is missing or busy (systemd retries)"),
    (EXIT_INCONSISTENT, "crash-on-inconsistency: the board stopped itself (restarted)"),
    (EXIT_HIL_CRASH, "--hil only: the rig's crash command"),
    (EXIT_CONFIG, "the cluster file, this node's entry or its key is wrong (not restarted)"),
)


class SetupError(Exception):
    """The environment refuses something the daemon needs (one line for the user, exit 69)."""
