"""CPU cost of one node's interactive-consistency tick, next to the crypto it needed.

Run: `python -m bench.cpu [--ticks K]`. Each tick is a whole N=4 cluster in one
process (all nodes' work), with a new tick number so no signature is reused.
The crypto floor is (signs x median sign cost + verifies x median verify cost),
both measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from nacl.signing import SigningKey

from voter.core.protocol import Algorithm
from voter.testing import board_keys, run_ic


def crypto_costs_us(samples: int = 2000) -> tuple[float, float]:
    """Median Ed25519 sign and verify cost in microseconds (PyNaCl), on 80-byte messages."""
    key = SigningKey(b"\x01" * 32)
    vk = key.verify_key
    sign_t, verify_t = [], []
    for i in range(samples):
        msg = i.to_bytes(8, "big") * 10
        t0 = time.perf_counter_ns()
        sig = key.sign(msg).signature
        t1 = time.perf_counter_ns()
        vk.verify(msg, sig)
        t2 = time.perf_counter_ns()
        sign_t.append(t1 - t0)
        verify_t.append(t2 - t1)
    return statistics.median(sign_t) / 1e3, statistics.median(verify_t) / 1e3


def cluster_tick(algorithm: Algorithm, nodes: int, m: int, ticks: int) -> dict[str, Any]:
    readings = {i: (100.0 + i, 50.0 - i, 0.1 * i) for i in range(nodes)}
    boards = board_keys(nodes)
    times = []
    for k in range(ticks):
        t0 = time.perf_counter_ns()
        run_ic(nodes, m, algorithm, readings, tick=k, boards=boards)
        times.append(time.perf_counter_ns() - t0)
    # A cluster tick in one process is every node's work; a board does 1/N of it.
    return {
        "cluster_tick_us": statistics.median(times) / 1e3,
        "tick_us": statistics.median(times) / 1e3 / nodes,
        "signs_per_tick": sum(b.signs for b in boards.values()) / ticks / nodes,
        "verifies_per_tick": sum(b.verifies for b in boards.values()) / ticks / nodes,
    }


def measure(ticks: int) -> dict[str, Any]:
    sign_us, verify_us = crypto_costs_us()
    out: dict[str, Any] = {"crypto": {"sign_us": sign_us, "verify_us": verify_us}}
    for alg, m in (("om", 1), ("sm", 1)):
        r = cluster_tick(alg, 4, m, ticks)  # type: ignore[arg-type]
        floor = r["signs_per_tick"] * sign_us + r["verifies_per_tick"] * verify_us
        r["crypto_floor_us"] = floor
        r["ratio"] = r["tick_us"] / floor if floor else None
        out[f"cluster_{alg}{m}_n4"] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ticks", type=int, default=300)
    args = ap.parse_args()
    print(json.dumps(measure(args.ticks), indent=2))


if __name__ == "__main__":
    main()
