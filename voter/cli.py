"""voter: cluster keys and configuration. Not built yet."""

from __future__ import annotations

import argparse

from voter._cli_util import not_implemented


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voter", description="Keys and cluster configuration.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("keygen", help="write an Ed25519 key (mode 0600)")
    cluster = sub.add_parser("cluster", help="cluster configuration")
    csub = cluster.add_subparsers(dest="cluster_cmd", required=True)
    init = csub.add_parser("init", help="write a cluster TOML and one key per node")
    init.add_argument("--nodes", type=int, required=True)
    init.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    not_implemented(f"voter {args.cmd}")
