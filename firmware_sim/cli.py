"""firmware-sim: N real voterd processes on pty links. Not built yet."""

from __future__ import annotations

import argparse

from voter._cli_util import not_implemented


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="firmware-sim", description="Simulated boards on ptys.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run N boards for K ticks")
    parser.parse_args(argv)
    not_implemented("firmware-sim run")
