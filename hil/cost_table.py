"""The seed's crash-vs-Byzantine cost table, measured here (`hil cost-table`, SPEC.md's JSON).

Every figure comes from a run, beside the seed's own: messages, rounds,
signatures and verifies per decision are the engines' counters (voter.core's
OM/SM round runner; the command-log replicas' `Counts` and the KeyRings),
throughput and latency the process CPU time of the in-process simulator on
this machine (the protocol code and its Ed25519, no network: a real link adds
its delay per round; CPU time, not wall time, because the machine is shared and
other processes would be counted too), lines of code the protocol module's. A decision is
one agreed value: one command in the log (crash, pbft), one commander's value
(OM(1), SM(1)).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hil.smr_sim import SmrConfig, simulate
from voter.core.ic import make_node
from voter.core.protocol import Algorithm, Params
from voter.core.rounds import run_tick
from voter.core.values import LabelDomain
from voter.simkeys import board_keys

MODELS = ("crash", "om1", "sm1", "pbft")
CORE = Path(__file__).resolve().parent.parent / "voter" / "core"
MODULES = {"crash": "paxos.py", "om1": "om.py", "sm1": "sm.py", "pbft": "pbft.py"}

#: The seed's table, printed beside the measured rows.
SEED = {
    "crash": {"nodes": "2f+1", "messages": "O(N)", "rounds": "2", "per_s": "10k-100k", "ms": "1-5"},
    "om1": {"nodes": "3f+1", "messages": "O(N^2)", "rounds": "2", "per_s": "-", "ms": "-"},
    "sm1": {"nodes": "f+2", "messages": "O(N^2)", "rounds": "2", "per_s": "-", "ms": "-"},
    "pbft": {
        "nodes": "3f+1",
        "messages": "O(N^2)",
        "rounds": "3-4",
        "per_s": "1k-10k",
        "ms": "5-20",
    },
}


@dataclass
class Row:
    model: str
    nodes_f1: int
    nodes_f2: int
    messages_per_decision: int
    rounds: int
    signatures: int
    verifies: int
    decisions_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    loc: int


def nodes_for(model: str, f: int) -> int:
    """The fewest nodes that tolerate f faults of the model's kind."""
    return {"crash": 2 * f + 1, "sm1": f + 2}.get(model, 3 * f + 1)


def loc(model: str) -> int:
    """Non-blank lines of the protocol's module that are not comments."""
    lines = (CORE / MODULES[model]).read_text(encoding="utf-8").splitlines()
    return sum(1 for x in lines if x.strip() and not x.strip().startswith("#"))


def _p(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile (0 for no values)."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def measure_log(model: str, f: int = 1, commands: int = 1000, seed: int = 0) -> Row:
    """A command log (crash or pbft) on N = 2f+1 / 3f+1 boards, no faults.

    Messages, signatures and verifies per decision are the normal case at
    saturation (checkpoints are reported apart by the docs, ~0.74 per decision
    for N=4, K=16); rounds are the message delays from the primary receiving a
    request to its first commit, with one command alone (one tick = one delay).
    """
    protocol = "pbft" if model == "pbft" else "crash"
    nodes = nodes_for(model, f)
    one = simulate(SmrConfig(protocol, nodes, 1, seed, window=1))
    first = min(
        e["tick"] for log in one.logs.values() for e in log.events if e["event"] == "commit"
    )
    sat = simulate(SmrConfig(protocol, nodes, commands, seed, window=max(8, 4 * nodes)))
    normal = sum(n for kind, n in sat.messages.items() if kind != "Checkpoint")
    lat = [s * 1000.0 for s in sat.latency_s]
    return Row(
        model,
        nodes_for(model, 1),
        nodes_for(model, 2),
        round(normal / commands),
        first - 1,  # the request reaches the primary at tick 1
        round(sat.signs / commands),
        round(sat.verifies / commands),
        round(commands / sat.wall_s, 1),
        round(_p(lat, 0.5), 3),
        round(_p(lat, 0.99), 3),
        loc(model),
    )


def measure_ic(model: str, f: int = 1, decisions: int = 200) -> Row:
    """OM(1) or SM(1): one commander's value agreed, `decisions` times, one key ring per board."""
    alg = Algorithm.OM if model == "om1" else Algorithm.SM
    nodes = nodes_for(model, f)
    params = Params(nodes, 1, alg, (0,), "retreat")
    domain = LabelDomain(("attack", "retreat"))
    keys = board_keys(nodes)
    times: list[float] = []
    messages = rounds = 0
    for k in range(decisions):
        started = time.process_time()
        run = run_tick(
            {
                i: make_node(params, i, domain, "attack" if i == 0 else None, k, keys[i])
                for i in range(nodes)
            },
            params.rounds,
        )
        times.append(time.process_time() - started)
        messages, rounds = run.messages, run.rounds
    total = sum(times)
    lat = [t * 1000.0 for t in times]
    return Row(
        model,
        nodes_for(model, 1),
        nodes_for(model, 2),
        messages,
        rounds,
        round(sum(r.signs for r in keys.values()) / decisions),
        round(sum(r.verifies for r in keys.values()) / decisions),
        round(decisions / total, 1),
        round(_p(lat, 0.5), 3),
        round(_p(lat, 0.99), 3),
        loc(model),
    )


def measure(model: str, f: int = 1, commands: int = 1000, seed: int = 0) -> Row:
    if model in ("crash", "pbft"):
        return measure_log(model, f, commands, seed)
    return measure_ic(model, f, max(50, commands // 5))


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.node()} {platform.machine()} {cpus} cpu, Python {platform.python_version()}"


def cost_table(commands: int = 1000, seed: int = 0) -> dict[str, Any]:
    """SPEC.md's `hil cost-table --json` object."""
    rows = [asdict(measure(m, 1, commands, seed)) for m in MODELS]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"rows": rows, "machine": machine(), "date": now}


def format_table(table: dict[str, Any]) -> str:
    head = (
        f"{'model':6} {'N f=1':>5} {'N f=2':>5} {'msgs':>5} {'rounds':>6} {'sigs':>5} "
        f"{'verif':>5} {'dec/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'loc':>4} | seed: N, msgs, "
        "rounds, dec/s, ms"
    )
    lines = [head, "-" * len(head)]
    for r in table["rows"]:
        s = SEED[r["model"]]
        lines.append(
            f"{r['model']:6} {r['nodes_f1']:5} {r['nodes_f2']:5} {r['messages_per_decision']:5} "
            f"{r['rounds']:6} {r['signatures']:5} {r['verifies']:5} {r['decisions_per_s']:9.1f} "
            f"{r['latency_ms_p50']:7.3f} {r['latency_ms_p99']:7.3f} {r['loc']:4} | "
            f"{s['nodes']}, {s['messages']}, {s['rounds']}, {s['per_s']}, {s['ms']}"
        )
    lines.append(f"measured on {table['machine']}, {table['date']} (in-process simulator: CPU")
    lines.append("cost per decision, no network; docs/design.md explains each column)")
    return "\n".join(lines)
