"""`python -m bench.command_log`: what the command log costs a board, next to its agreement tick.

Three figures per run, medians of `--runs` runs (only the ratios are stable on a shared
machine): the codec (`voter.core.smr_wire`: encode + decode of a signed pre-prepare
carrying a request, and its wire bytes), the command-log slot of one board per committed
command (four `SmrPort`s wired in memory with real Ed25519, a window of commands in
flight: all the CPU of `step` and of the splitters, divided by commands and boards), and
an OM(1) node tick at N=4 (`bench.run.cpu_case`, the same code as the other benches).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

from bench.run import cpu_case
from voter.core.crypto import deterministic_seeds, keyring_from_seeds
from voter.core.pbft import PbftConfig, PbftReplica, PrePrepare
from voter.core.protocol import Algorithm
from voter.core.smr import Request, digest, sign
from voter.core.smr_port import SmrPort
from voter.core.smr_wire import LinkSplitter, decode_message, encode_message, seal_batch

CLUSTER = "bench"
N = 4


def codec_us(samples: int) -> tuple[float, int]:
    """Median µs of encode + decode of a signed pre-prepare with its request; its wire bytes."""
    keys = keyring_from_seeds(deterministic_seeds(N), range(N))
    req = Request(1, 7, "arm")
    req = replace(req, sig=sign(keys, 1, req, CLUSTER))
    pp = PrePrepare(0, 1, digest(req), req)
    pp = replace(pp, sig=sign(keys, 0, pp, CLUSTER))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        decode_message(encode_message(pp))
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3, len(seal_batch(0, 1, [encode_message(pp)], CLUSTER))


def slot_us_per_command(commands: int) -> float:
    """CPU µs per committed command per board: four ports, in-memory links, real signatures."""
    seeds = deterministic_seeds(N)
    cfg = PbftConfig(N, tuple(range(N)), cluster=CLUSTER)
    ports = [
        SmrPort(
            i,
            PbftReplica(i, cfg, keyring_from_seeds(seeds, [i])),
            CLUSTER,
            tuple(j for j in range(N) if j != i),
            4096,
        )
        for i in range(N)
    ]
    splitters = {(i, j): LinkSplitter(CLUSTER) for i in range(N) for j in range(N) if i != j}
    sent, tick = 0, 0
    t0 = time.process_time()
    while min(p.replica.last_exec for p in ports) < commands:
        tick += 1
        while sent < commands and len(ports[1].answers) < 8:
            ports[1].submit(f"cmd-{sent}", tick)
            sent += 1
        for p in ports:
            sends, _ = p.step(tick)
            for dst, data in sends:
                for item in splitters[(p.me, dst)].feed(data):
                    ports[dst].on_item(p.me, item)  # type: ignore[arg-type]
        ports[1].answered()
    return (time.process_time() - t0) / commands / N * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.command_log")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"codec_us": [], "slot_us_per_command": [], "om1_tick_us": []}
    wire = 0
    for _ in range(args.runs):
        us, wire = codec_us(2000)
        rows["codec_us"].append(us)
        rows["slot_us_per_command"].append(slot_us_per_command(args.commands))
        rows["om1_tick_us"].append(cpu_case(Algorithm.OM, 1, 4, 300)["tick_us"])
    med = {k: statistics.median(v) for k, v in rows.items()}
    med["pre_prepare_wire_bytes"] = wire
    med["command_over_om1_tick"] = med["slot_us_per_command"] / med["om1_tick_us"]
    print(json.dumps({k: round(v, 3) for k, v in med.items()}, indent=1))


if __name__ == "__main__":
    main()
