"""Small helpers shared by the console scripts: user errors are one line, never a traceback."""

from __future__ import annotations

import argparse
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


def add_version(parser: argparse.ArgumentParser) -> None:
    """Every command has --version (SPEC): `PROG X.Y.Z` on stdout, exit 0."""
    parser.add_argument("--version", action=_VersionAction)
