"""voterd: the board daemon (serial links, tick loop, systemd). Not built yet."""

from __future__ import annotations

import argparse

from voter._cli_util import not_implemented


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="voterd", description="Board daemon: Byzantine agreement on serial links."
    )
    parser.add_argument("--config", required=True, help="cluster TOML")
    parser.add_argument("--node", required=True, type=int, help="this board's node id")
    parser.parse_args(argv)
    not_implemented("voterd")
