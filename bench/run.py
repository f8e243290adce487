"""`make bench`: wire, CPU, real-time, simulator and scaling benchmarks -> bench/results.json.

Every figure is a median (or a rate over a whole run) measured here, next to the
limit it should be compared with, measured or computed in the same run: the
payload floor for wire bytes, the Ed25519 cost for CPU, the wire-limited rate
for real time, O(N^(m+1)) for scaling. `--quick` runs a reduced version (same
keys) in about a minute. The markdown table goes into docs/performance.md
between the BENCH markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.signing import SigningKey

from voter.budget import measure as measure_frames
from voter.budget import one_tick_frames
from voter.core.board import Board
from voter.core.frame import DIGEST_BYTES, Frame, FrameSplitter, SyncBlock, encode_frame
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm
from voter.core.record import parse_line
from voter.simkeys import board_keys

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = 3
BAUDS = (115200, 921600, 3_000_000)
VALUE_BYTES = 8 * CHANNELS  # float64 per channel
#: a rate is sustained when every board publishes this share of its ticks (issue 10's target)
SUSTAINED = 0.99
SIG_BYTES = 64
CRC_BYTES = 4
ALGS: tuple[Algorithm, Algorithm] = (Algorithm.OM, Algorithm.SM)


def case_name(alg: str, m: int, n: int) -> str:
    return f"{alg}{m}_n{n}"


class CryptoClock:
    """Times Ed25519 sign and verify on 80-byte messages, a few at a time, on demand.

    Through the libsodium bindings, exactly as `KeyRing` calls them: the floor is
    the signature arithmetic, not PyNaCl's SigningKey/VerifyKey object wrappers.
    `cpu_case` takes its samples between the ticks it compares them with: this VM's
    speed drifts by up to ~1.7x between two runs a few seconds apart (sign 66 us,
    then 40 us), so a floor measured once, before the ticks, can be off by as much.
    """

    def __init__(self) -> None:
        key = SigningKey(b"\x01" * 32)
        self._pk, self._sk = crypto_sign_seed_keypair(bytes(key))
        self._i = 0
        self.sign_ns: list[int] = []
        self.verify_ns: list[int] = []

    def sample(self, count: int = 1) -> None:
        for _ in range(count):
            self._i += 1
            msg = self._i.to_bytes(8, "big") * 10
            t0 = time.perf_counter_ns()
            sig = crypto_sign(msg, self._sk)[:64]
            t1 = time.perf_counter_ns()
            crypto_sign_open(sig + msg, self._pk)
            t2 = time.perf_counter_ns()
            self.sign_ns.append(t1 - t0)
            self.verify_ns.append(t2 - t1)

    def medians_us(self) -> tuple[float, float]:
        return statistics.median(self.sign_ns) / 1e3, statistics.median(self.verify_ns) / 1e3


def crypto_costs_us(samples: int = 2000) -> tuple[float, float]:
    """Median Ed25519 sign and verify cost in microseconds, `samples` of each in a row."""
    clock = CryptoClock()
    clock.sample(samples)
    return clock.medians_us()


# -- 1. wire ---------------------------------------------------------------------------
#: the two-way clock echo and send lag, as 16-bit microsecond fields would carry them
ECHO_FLOOR_BYTES = 2 + 2


def _with_timing(f: Frame, n: int) -> Frame:
    """A round-1 frame as the tick driver sends it: digest, heard bitmap, clock echo."""
    if f.round != 1:
        return f
    heard = sum(1 << j for j in range(n) if j != f.src)
    block = SyncBlock(bytes((f.src + 1, f.dst + 1, 0xA5, 0x5A)), heard, 1850, 320)
    return Frame(f.version, f.cluster, f.src, f.dst, f.tick, f.round, f.entries, block)


def wire_case(alg: Algorithm, m: int, n: int) -> dict[str, Any]:
    frames = [
        _with_timing(f, n) for sent in one_tick_frames(n, m, alg, CHANNELS, "bench") for f in sent
    ]
    per_link: dict[tuple[int, int], int] = {}
    floor: dict[tuple[int, int], int] = {}
    for f in frames:
        link = (f.src, f.dst)
        per_link[link] = per_link.get(link, 0) + len(encode_frame(f))
        payload = sum(VALUE_BYTES + len(e.path) + SIG_BYTES * len(e.sigs) for e in f.entries)
        if f.sync is not None:
            # The timing block is payload too: digest, heard bitmap, echo and lag.
            payload += DIGEST_BYTES + (n + 7) // 8 + ECHO_FLOOR_BYTES
        floor[link] = floor.get(link, 0) + payload + CRC_BYTES
    worst = max(per_link, key=lambda k: per_link[k])
    budget = measure_frames(n, m, alg, CHANNELS)
    out: dict[str, Any] = {
        "bytes_per_link_tick": per_link[worst],
        "floor_bytes": floor[worst],
        "ratio": round(per_link[worst] / floor[worst], 3),
        "round_bytes": list(budget.round_bytes),
    }
    for baud in BAUDS:
        out[f"wire_limited_hz_{baud}"] = round(budget.max_tick_hz(baud), 1)
    return out


# -- 2. CPU ----------------------------------------------------------------------------
def cpu_case(alg: Algorithm, m: int, n: int, ticks: int) -> dict[str, Any]:
    """One node's full tick: decode, verify, decide (COM/MON, ECC), vote, sign, encode.

    The cluster runs in one process with real encoded frames; each board has its
    own key ring and caches. Per-node time = cluster time / N. Between ticks, four
    signs and four verifies are timed (`CryptoClock`): the crypto floor's costs,
    measured at the same moments as the ticks they are compared with.
    """
    params = ic_params(n, m, alg, "bench")
    keys = board_keys(n, "bench")
    boards = [Board(params, i, CHANNELS, keys[i]) for i in range(n)]
    splitters = {(i, j): FrameSplitter(params.cluster) for i in range(n) for j in range(n)}
    clock = CryptoClock()
    times, cpu_times = [], []
    for tick in range(ticks):
        clock.sample(FLOOR_SAMPLES_PER_TICK)
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        out = [
            b.begin_tick(tick, (1000.0 + i + tick * 1e-3, 60.0, 2.0)) for i, b in enumerate(boards)
        ]
        for _ in range(params.rounds):
            for fs in out:
                for f in fs:
                    for item in splitters[(f.src, f.dst)].feed(encode_frame(f)):
                        boards[f.dst].on_frame(f.src, item)
            out = [b.next_round() for b in boards]
        for b in boards:
            b.finish_tick()
        cpu_times.append(time.thread_time_ns() - c0)
        times.append(time.perf_counter_ns() - t0)
    signs = sum(k.signs for k in keys.values()) / ticks / n
    verifies = sum(k.verifies for k in keys.values()) / ticks / n
    sign_us, verify_us = clock.medians_us()
    return {
        "tick_us": round(statistics.median(times) / 1e3 / n, 1),
        # The same ticks on the thread's CPU clock: a cluster-tick of several ms is often
        # preempted on a loaded machine, a 20-100 us sign or verify of the floor rarely is.
        "tick_cpu_us": round(statistics.median(cpu_times) / 1e3 / n, 1),
        "signs": signs,
        "verifies": verifies,
        "sign_us": round(sign_us, 2),
        "verify_us": round(verify_us, 2),
    }


#: Ed25519 signs and verifies timed before each tick of `cpu_case` (its floor's samples).
FLOOR_SAMPLES_PER_TICK = 4


# -- 3. real time ----------------------------------------------------------------------
#: The lowest rate the real-time search steps down to when the first rate tried misses.
MIN_REALTIME_HZ = 5.0


def realtime(
    alg: Algorithm, baud: int, rates: Sequence[float], ticks: int, out: Path
) -> dict[str, Any]:
    """Highest tick rate at which 4 pty boards publish >= 99 % of their ticks, safely.

    A board-tick counts when the board published it (did not withhold it), decided it
    within the period and held every entry; the last tick is left out (no next tick
    can confirm it). A rate where a published disagreement appears does not count,
    whatever its availability.
    """
    best: float | None = None
    detail: dict[str, Any] = {}
    for hz in rates:
        frac = _on_time_at(alg, baud, hz, ticks, out, detail)
        if frac is None or frac < SUSTAINED:
            break
        best = hz
    # A slow machine can miss even the first rate tried (25 % of a wire limit that the
    # compact frames raised): step down by halves rather than report nothing.
    hz = rates[0] / 2 if rates else 0.0
    while best is None and hz >= MIN_REALTIME_HZ:
        frac = _on_time_at(alg, baud, round(hz, 1), ticks, out, detail)
        if frac is not None and frac >= SUSTAINED:
            best = round(hz, 1)
        hz /= 2
    detail["max_hz_on_time"] = best
    return detail


def _on_time_at(
    alg: Algorithm, baud: int, hz: float, ticks: int, out: Path, detail: dict[str, Any]
) -> float | None:
    """Fraction of board-ticks on time at `hz`, noted in `detail`; None when the links cannot
    carry it."""
    from hil.pty_run import FeasibilityError, run
    from hil.scenario import Scenario

    n_ticks = max(300, min(ticks, int(hz * 15)))  # at most ~15 s per rate tried
    run_dir = out / f"{alg}-{baud}-{hz:g}"
    spec = Scenario(algorithm=alg, tick_hz=hz, ticks=n_ticks, baud=baud)
    try:
        res = run(spec, run_dir)
    except FeasibilityError:
        return None
    on_time, total, lat, dec = _board_ticks(run_dir, n_ticks, hz)
    expected = 4 * (n_ticks - 1)
    frac = on_time / expected if expected and res.check.safe else 0.0
    detail[f"{hz:g}"] = {"on_time": round(frac, 5), "decided": total, "holds": res.check.holds}
    if frac >= SUSTAINED:
        detail["latency_us_median"] = statistics.median(dec)
        detail["latency_us_p99"] = sorted(dec)[int(0.99 * len(dec))]
        detail["lateness_us_median"] = statistics.median(lat)
        detail["lateness_us_p99"] = sorted(lat)[int(0.99 * len(lat))]
    return frac


def _board_ticks(
    run_dir: Path, n_ticks: int, hz: float
) -> tuple[int, int, list[float], list[float]]:
    """From the 4 boards' logs: board-ticks on time, board-ticks decided, and each decided
    tick's lateness and decision time (us), leaving out the last tick."""
    on_time, total = 0, 0
    lat: list[float] = []
    dec: list[float] = []
    for i in range(4):
        path = run_dir / f"node{i}.jsonl"
        for text in path.read_text().splitlines():
            x = parse_line(text)
            if x is None or x.tick >= n_ticks - 1:
                continue
            total += 1
            decided = x.timing["decided_us"] or 0.0
            ok = x.published and all(v is not None for v in x.vector) and decided <= 1e6 / hz
            on_time += ok
            lat.append(x.timing["lateness_us"] or 0.0)
            dec.append(decided)
    return on_time, total, lat, dec


# -- 4. simulator ----------------------------------------------------------------------
def sim_rate(alg: Algorithm, n: int, m: int, ticks: int, faults: list[str]) -> float:
    from hil.sim import SimConfig, simulate
    from voter.faultmodel import parse_fault

    cfg = SimConfig(
        nodes=n,
        algorithm=alg,
        m=m,
        ticks=ticks,
        seed=1,
        tick_hz=20.0,
        faults=[parse_fault(f, n) for f in faults],
    )
    t0 = time.perf_counter()
    simulate(cfg)
    return round(ticks / (time.perf_counter() - t0), 1)


# -- driver ----------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} vCPU, Python {platform.python_version()}, {platform.system()}"


WIRE_CASES: list[tuple[Algorithm, int, int]] = [
    ("om", 1, 4),
    ("om", 2, 4),
    ("sm", 1, 4),
    ("sm", 2, 4),
    ("om", 2, 7),
]
#: Real-time rates tried. Without a baud limit: fixed steps. At an emulated baud: fractions
#: of the wire limit.
REALTIME_STEPS = {"om": [50, 100, 150, 200, 250, 300, 400], "sm": [25, 50, 75, 100, 125, 150, 200]}
REALTIME_FRACTIONS = [0.25, 0.5, 0.7, 0.8, 0.9]
QUICK_REALTIME_STEPS = {"om": [100, 250], "sm": [50, 100]}
QUICK_REALTIME_FRACTIONS = [0.5, 0.8]


def run(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "quick": quick,
    }
    sign_us, verify_us = crypto_costs_us(500 if quick else 3000)
    results["crypto"] = {"sign_us": sign_us, "verify_us": verify_us}
    print(f"crypto: sign {sign_us:.1f} us, verify {verify_us:.1f} us", flush=True)

    results["wire"] = {case_name(a, m, n): wire_case(a, m, n) for a, m, n in WIRE_CASES}
    print("wire:", {k: v["bytes_per_link_tick"] for k, v in results["wire"].items()}, flush=True)

    results["cpu"] = _cpu_results(60 if quick else 400)
    print("cpu:", results["cpu"], flush=True)
    compiled = compiled_cpu(60 if quick else 400)
    if compiled is not None:
        results["cpu_mypyc"] = compiled
        print("cpu (mypyc):", compiled, flush=True)

    sim_ticks = 300 if quick else 3000
    results["sim"] = {}
    faults = ["traitor:3:random", "link-bitflip:0-1:1e-3", "memory-bitflip:2:5/s"]
    for a in ALGS:
        results["sim"][case_name(a, 1, 4)] = {
            "cluster_ticks_per_s": sim_rate(a, 4, 1, sim_ticks, []),
            "with_faults": sim_rate(a, 4, 1, sim_ticks, faults),
        }
    print("sim:", results["sim"], flush=True)

    results["realtime"] = {}
    for a in ALGS:
        results["realtime"][a] = _realtime_results(a, quick, results["wire"][case_name(a, 1, 4)])

    results["scaling"] = scaling(quick)
    return results


def _cpu_results(ticks: int) -> dict[str, Any]:
    """Each algorithm's node tick at N=4, m=1, next to its Ed25519 floor (sampled between
    the ticks, see `cpu_case`)."""
    cpu: dict[str, Any] = {}
    for a in ALGS:
        m, n = 1, 4
        r = cpu_case(a, m, n, ticks)
        floor = r["signs"] * r["sign_us"] + r["verifies"] * r["verify_us"]
        floor = r["crypto_floor_us"] = round(floor, 1)
        r["ratio"] = round(r["tick_us"] / floor, 2) if floor else None
        r["ratio_cpu"] = round(r["tick_cpu_us"] / floor, 2) if floor else None
        cpu[case_name(a, m, n)] = r
    return cpu


#: The compiled build `make mypyc` leaves here (a copy of the tree, extensions in place).
MYPYC_TREE = ROOT / "build" / "mypyc"

_COMPILED_CPU = """
import json, sys
from bench.run import _cpu_results
import voter.core.board as b
assert b.__file__.endswith(".so"), b.__file__
print(json.dumps({"cpu": _cpu_results(int(sys.argv[1]))}))
"""


def compiled_cpu(ticks: int) -> dict[str, Any] | None:
    """The CPU cases on the compiled build, if `make mypyc` built it from this very source.

    A build older than the source (any .py of the tree differs from its copy) would
    measure other code, so it is left out rather than reported under this tree's name.
    Run in its own interpreter, its own floor measured in it, right after the pure cases.
    """
    import subprocess
    import sys

    if not (MYPYC_TREE / "voter" / "core").is_dir():
        return None
    for src in [*ROOT.glob("voter/**/*.py"), *ROOT.glob("hil/*.py"), ROOT / "bench" / "run.py"]:
        copy = MYPYC_TREE / src.relative_to(ROOT)
        if not copy.is_file() or copy.read_bytes() != src.read_bytes():
            print(f"cpu (mypyc): skipped, build/mypyc is older than {src.relative_to(ROOT)}")
            return None
    out = subprocess.run(
        [sys.executable, "-c", _COMPILED_CPU, str(ticks)],
        env={**os.environ, "PYTHONPATH": str(MYPYC_TREE)},
        cwd=MYPYC_TREE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return got


def _realtime_results(a: Algorithm, quick: bool, wire: dict[str, Any]) -> dict[str, Any]:
    """One algorithm's real-time search at each baud, with the wire limits to compare it to."""
    out = ROOT / "runs" / "bench"
    rt_ticks = 300 if quick else 2000
    steps = QUICK_REALTIME_STEPS if quick else REALTIME_STEPS
    fractions = QUICK_REALTIME_FRACTIONS if quick else REALTIME_FRACTIONS
    entry: dict[str, Any] = {}
    for baud in (0, 921600, 115200):
        if quick and baud == 115200:
            continue
        limit = wire[f"wire_limited_hz_{baud}"] if baud else 0.0
        rates = steps[a] if baud == 0 else [round(f * limit, 1) for f in fractions]
        r = realtime(a, baud, rates, rt_ticks, out)
        key = "nolimit" if baud == 0 else str(baud)
        entry[key] = r
        if baud == 0:
            entry["max_hz_on_time"] = r["max_hz_on_time"]
        print(f"realtime {a} baud {baud}: {r['max_hz_on_time']}", flush=True)
    for baud in BAUDS:
        entry[f"wire_limited_hz_{baud}"] = wire[f"wire_limited_hz_{baud}"]
    return entry


def scaling(quick: bool) -> list[dict[str, Any]]:
    rows = []
    combos = [
        ("om", 4, 1),
        ("om", 7, 1),
        ("om", 7, 2),
        ("om", 10, 1),
        ("om", 10, 2),
        ("om", 10, 3),
        ("sm", 4, 1),
        ("sm", 4, 2),
        ("sm", 7, 1),
        ("sm", 7, 2),
        ("sm", 10, 1),
        ("sm", 10, 3),
    ]
    if quick:
        combos = [("om", 4, 1), ("om", 7, 2), ("sm", 4, 1), ("sm", 7, 2)]
    for alg, n, m in combos:
        a = Algorithm(alg)
        try:
            w = wire_case(a, m, n)
        except ValueError as e:  # frames beyond FRAME_BYTES_MAX: voterd refuses this cluster
            rows.append(
                {
                    "case": case_name(a, m, n),
                    "n": n,
                    "m": m,
                    "refused": str(e),
                    "n_pow_m_plus_1": n ** (m + 1),
                }
            )
            continue
        c = cpu_case(a, m, n, 10 if quick else 40)
        sim = sim_rate(a, n, m, 20 if quick else 100, [])
        rows.append(
            {
                "case": case_name(a, m, n),
                "n": n,
                "m": m,
                "bytes_per_link_tick": w["bytes_per_link_tick"],
                "tick_us": c["tick_us"],
                "sim_cluster_ticks_per_s": sim,
                "n_pow_m_plus_1": n ** (m + 1),
            }
        )
        print("scaling", rows[-1], flush=True)
    return rows


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Measured by `make bench` on {r['machine']}, {r['date']}"
        + (" (QUICK=1: reduced)" if r.get("quick") else "")
        + ".",
        "",
        f"Ed25519 in the same run: sign {r['crypto']['sign_us']:.1f} µs, verify "
        f"{r['crypto']['verify_us']:.1f} µs (median).",
    ]
    for table in (_md_wire, _md_cpu, _md_realtime, _md_sim, _md_scaling):
        lines += ["", *table(r)]
    return "\n".join(lines)


def _md_wire(r: dict[str, Any]) -> list[str]:
    lines = [
        "### Wire (3 float channels; bytes per link direction per tick, worst link)",
        "",
        "| case | bytes | payload floor | ratio | rounds' largest frames | "
        "wire-limited Hz @115200 / 921600 / 3M |",
        "|---|---|---|---|---|---|",
    ]
    for k, w in r["wire"].items():
        lines.append(
            f"| {k} | {w['bytes_per_link_tick']} | {w['floor_bytes']} | {w['ratio']} | "
            f"{w['round_bytes']} | {w['wire_limited_hz_115200']} / "
            f"{w['wire_limited_hz_921600']} / {w['wire_limited_hz_3000000']} |"
        )
    return lines


def _md_cpu(r: dict[str, Any]) -> list[str]:
    lines = [
        "### CPU: one node's full tick (decode, verify, decide with COM/MON and ECC, "
        "vote, sign, encode)",
        "",
        "Tick: median wall time (thread CPU time); ratios to the Ed25519 floor: signs and "
        "verifies the tick made, each at the median cost of 4 signs and 4 verifies timed "
        "before every tick of the same loop (the machine's speed drifts). Rows marked mypyc: "
        "the compiled build (`make mypyc`), measured right after the pure rows with its own "
        "floor, when it was built from this source.",
        "",
        "| case | tick (CPU) | signs + verifies | sign, verify | crypto floor | ratio (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    rows = [(k, c) for k, c in r["cpu"].items()]
    rows += [(f"{k} mypyc", c) for k, c in r.get("cpu_mypyc", {}).get("cpu", {}).items()]
    for k, c in rows:
        cpu_t = f" ({c['tick_cpu_us']} µs)" if "tick_cpu_us" in c else ""
        cpu_r = f" ({c['ratio_cpu']})" if "ratio_cpu" in c else ""
        lines.append(
            f"| {k} | {c['tick_us']} µs{cpu_t} | {c['signs']:.0f} + {c['verifies']:.0f} | "
            f"{c.get('sign_us', '?')}, {c.get('verify_us', '?')} µs | "
            f"{c['crypto_floor_us']} µs | {c['ratio']}{cpu_r} |"
        )
    return lines


def _md_realtime(r: dict[str, Any]) -> list[str]:
    lines = [
        "### Real time: 4 voterd processes on ptys through the link fabric",
        "",
        "| algorithm | link | max Hz with ≥ 99 % published on time | wire-limited Hz | "
        "decided after t0 (median / p99) | tick lateness (median / p99) | on time at each rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for a, e in r["realtime"].items():
        for key, label, wl in [
            ("nolimit", "no baud limit", "—"),
            ("921600", "921,600 baud", e.get("wire_limited_hz_921600")),
            ("115200", "115,200 baud", e.get("wire_limited_hz_115200")),
        ]:
            d = e.get(key)
            if d:
                lines.append(_md_realtime_row(a, label, wl, d))
    return lines


def _pct_down(fraction: float) -> str:
    """A fraction as a percentage cut (not rounded) to 2 decimals: 98.997 % on time missed the
    99 % mark, and must not read as "99.00 %" next to a rate that was not counted."""
    return f"{math.floor(round(fraction * 10000, 6)) / 100:.2f}"


def _md_realtime_row(a: str, label: str, wl: Any, d: dict[str, Any]) -> str:
    lat = (
        f"{d.get('latency_us_median', 0):.0f} / {d.get('latency_us_p99', 0):.0f} µs"
        if "latency_us_median" in d
        else "—"
    )
    late = (
        f"{d.get('lateness_us_median', 0):.0f} / {d.get('lateness_us_p99', 0):.0f} µs"
        if "lateness_us_median" in d
        else "—"
    )
    tried = ", ".join(
        f"{hz} Hz: {_pct_down(v['on_time'])} %"
        for hz, v in d.items()
        if isinstance(v, dict) and "on_time" in v
    )
    return f"| {a.upper()}(1) | {label} | {d['max_hz_on_time']} | {wl} | {lat} | {late} | {tried} |"


def _md_sim(r: dict[str, Any]) -> list[str]:
    lines = [
        "### Simulator (`hil campaign --mode sim`), N=4",
        "",
        "| case | cluster-ticks/s | with faults |",
        "|---|---|---|",
    ]
    for k, s in r["sim"].items():
        lines.append(f"| {k} | {s['cluster_ticks_per_s']} | {s['with_faults']} |")
    return lines


def _md_scaling(r: dict[str, Any]) -> list[str]:
    lines = [
        "### Scaling",
        "",
        "| case | N^(m+1) | bytes/link/tick | node tick | sim cluster-ticks/s |",
        "|---|---|---|---|---|",
    ]
    for row in r["scaling"]:
        if "refused" in row:
            lines.append(
                f"| {row['case']} | {row['n_pow_m_plus_1']} | refused: frames over "
                f"the 4096-byte limit | — | — |"
            )
            continue
        lines.append(
            f"| {row['case']} | {row['n_pow_m_plus_1']} | {row['bytes_per_link_tick']} | "
            f"{row['tick_us']} µs | {row['sim_cluster_ticks_per_s']} |"
        )
    return lines


def update_doc(md: str) -> None:
    doc = ROOT / "docs" / "performance.md"
    text = doc.read_text()
    start, end = "<!-- BENCH:START -->", "<!-- BENCH:END -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{md}\n{end}{tail}"
    else:
        text += f"\n{start}\n{md}\n{end}\n"
    doc.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    ap.add_argument(
        "--from-results",
        action="store_true",
        help="only rewrite the tables from bench/results.json",
    )
    args = ap.parse_args()
    _ = SigningKey  # PyNaCl must be importable before any timing starts
    if args.from_results:
        r = json.loads((ROOT / "bench" / "results.json").read_text())
    else:
        r = run(args.quick)
        (ROOT / "bench" / "results.json").write_text(json.dumps(r, indent=1))
    md = markdown(r)
    if not args.no_doc:
        update_doc(md)
    print(md)


if __name__ == "__main__":
    main()
