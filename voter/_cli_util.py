"""Small helpers shared by the console scripts: user errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `prog: message` on stderr and exit with `code`."""
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "voter"
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


class _VersionAction(argparse.Action):
    """`--version`: looked up only when asked, so start-up does not read package metadata."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version"
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("voter")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown"
        print(f"{parser.prog} {number}")
        parser.exit()


def broken_pipe_exit() -> int:
    """`... | head`: the reader of stdout left, which is not our error. Quiet the final
    flush (it would raise again at exit) and exit as a shell reports a writer killed by
    SIGPIPE."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def add_version(parser: argparse.ArgumentParser) -> None:
    """Every command has --version (SPEC): `PROG X.Y.Z` on stdout, exit 0."""
    parser.add_argument("--version", action=_VersionAction)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help with each option's default (where it has a real one) and the epilog as written
    (examples and exit codes are laid out by hand)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        d = action.default
        if (
            d is None
            or d is False
            or d is argparse.SUPPRESS
            or (isinstance(d, str | list) and not d)
        ):
            return action.help  # "(default: None)" says nothing
        return super()._get_help_string(action)


def epilog(examples: Sequence[str], codes: Sequence[tuple[int, str]]) -> str:
    """The end of a --help: example command lines, then what each exit status means."""
    lines = ["examples:", *(f"  {e}" for e in examples), "", "exit status:"]
    lines += [f"  {code:<4}{meaning}" for code, meaning in codes]
    return "\n".join(lines)
