"""Adversary search: every traitor placement and every choice of the traitors' messages.

The commander is node 0 (the nodes are symmetric); every set of F traitors is
tried, the commander included, with the loyal commander's value both "attack"
and the default "retreat". Each traitor slot (a path ending at the traitor and a
receiver not on it) gets one option: v0, v1 or silence, and in SM also both
values at once (a signed commander may send two). Coalition traitors share
their keys and every signature they received (voter.core.adversary.ChainForge).

Options are enumerated in order of how many slots deviate from the baseline
(the loyal commander's value, or "attack"), so the first violation found in an
exhaustive search is a minimal one. A sampled search shrinks what it finds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

from voter.core.adversary import ChainForge, Choices, Option, RoundNode, Traitor, traitor_slots
from voter.core.crypto import KeyRing
from voter.core.ic import make_node
from voter.core.protocol import Algorithm, Params, is_oral
from voter.core.rounds import run_tick
from voter.core.values import LabelDomain, Value
from voter.simkeys import cluster_keys

VALUES: tuple[str, str] = ("attack", "retreat")
DEFAULT = "retreat"
COMMANDER = 0
MAX_RUNS = 1_000_000
SAMPLES = 20_000

Slot = tuple[tuple[int, ...], int, int]  # (path, dst, traitor)


@dataclass(frozen=True)
class Case:
    """One run of the search: who is a traitor, the commander's value, every slot's option."""

    traitors: tuple[int, ...]
    value: str
    table: tuple[tuple[Slot, Option], ...]
    #: hybrid search (hil.hybrid): each traitor's fault class, e.g. ((2, "manifest"),)
    kinds: tuple[tuple[int, str], ...] = ()

    def deviations(self) -> int:
        base = baseline(self)
        return sum(1 for _, opt in self.table if opt != base)


@dataclass
class Outcome:
    decisions: dict[int, Value]
    agreement: bool
    validity: bool | None

    @property
    def holds(self) -> bool:
        return self.agreement and self.validity is not False


@dataclass
class SearchResult:
    nodes: int
    m: int
    algorithm: str
    traitors: int
    holds: bool
    checked: int
    space: int
    exhaustive: bool
    seed: int | None
    counterexample: Case | None
    outcome: Outcome | None
    #: hybrid search: (asymmetric, symmetric, manifest) and whether N > 2a+2s+b+m, a <= m
    mix: tuple[int, int, int] | None = None
    inside_bound: bool | None = None

    def to_json(self) -> dict[str, Any]:
        ce: dict[str, Any] | None = None
        if self.counterexample is not None and self.outcome is not None:
            c = self.counterexample
            ce = {
                "traitors": list(c.traitors),
                "commander": COMMANDER,
                "commander_value": c.value,
                "messages": [
                    {"traitor": t, "path": list(p), "dst": d, "sends": opt}
                    for (p, d, t), opt in c.table
                    if opt != baseline(c)
                ],
                "decisions": {str(k): v for k, v in sorted(self.outcome.decisions.items())},
                "agreement": self.outcome.agreement,
                "validity": self.outcome.validity,
            }
            if c.kinds:
                ce["kinds"] = {str(t): k for t, k in c.kinds}
        hybrid: dict[str, Any] = {}
        if self.mix is not None:
            a, s, b = self.mix
            hybrid = {"asymmetric": a, "symmetric": s, "manifest": b}
            hybrid["inside_bound"] = self.inside_bound
        return {
            "nodes": self.nodes,
            "m": self.m,
            "algorithm": self.algorithm,
            "traitors": self.traitors,
            "holds": self.holds,
            "checked": self.checked,
            "space": self.space,
            "exhaustive": self.exhaustive,
            "seed": self.seed,
            "counterexample": ce,
            **hybrid,
        }


def baseline(case: Case) -> Option:
    value = case.value if COMMANDER not in case.traitors else VALUES[0]
    return "v0" if value == VALUES[0] else "v1"


class Searcher:
    """Runs cases for one (N, m, algorithm); crypto is cached across runs (Ed25519 is pure)."""

    def __init__(self, nodes: int, m: int, algorithm: str) -> None:
        alg = Algorithm(algorithm)
        self.params = Params(nodes, m, alg, (COMMANDER,), DEFAULT)
        self.domain = LabelDomain(VALUES)
        self.options: tuple[Option, ...] = (
            ("v0", "v1", "silent") if is_oral(alg) else ("v0", "v1", "both", "silent")
        )
        self._loyal_keys, _ = cluster_keys(nodes, [])
        self._coalitions: dict[tuple[int, ...], KeyRing] = {}

    def slots(self, traitors: Sequence[int]) -> list[Slot]:
        return [(p, d, t) for t in traitors for p, d in traitor_slots(self.params, t, COMMANDER)]

    def placements(self, f: int) -> list[tuple[int, ...]]:
        return list(combinations(range(self.params.nodes), f))

    def values_for(self, traitors: Sequence[int]) -> tuple[str, ...]:
        return (VALUES[0],) if COMMANDER in traitors else VALUES

    def space(self, f: int) -> int:
        return sum(
            len(self.values_for(t)) * len(self.options) ** len(self.slots(t))
            for t in self.placements(f)
        )

    def run(self, case: Case) -> Outcome:
        p = self.params
        coalition = self._coalitions.get(case.traitors)
        if coalition is None:
            _, coalition = cluster_keys(p.nodes, list(case.traitors))
            self._coalitions[case.traitors] = coalition
        forge = ChainForge(p, coalition, self.domain) if p.algorithm == "sm" else None
        nodes: dict[int, RoundNode] = {
            i: make_node(
                p, i, self.domain, case.value if i == COMMANDER else None, 0, self._loyal_keys
            )
            for i in range(p.nodes)
        }
        tables: dict[int, dict[tuple[tuple[int, ...], int], Option]] = {
            t: {} for t in case.traitors
        }
        for (path, dst, t), opt in case.table:
            tables[t][(path, dst)] = opt
        for t in case.traitors:
            nodes[t] = Traitor(nodes[t], Choices(tables[t], VALUES), forge)
        run = run_tick(nodes, p.rounds)
        loyal = [i for i in range(p.nodes) if i not in case.traitors and i != COMMANDER]
        decisions = {i: run.decisions[i][COMMANDER] for i in loyal}
        agreement = len(set(decisions.values())) <= 1
        validity = (
            None if COMMANDER in case.traitors else all(v == case.value for v in decisions.values())
        )
        return Outcome(decisions, agreement, validity)

    # -- enumeration ---------------------------------------------------------
    def exhaustive(self, f: int) -> Iterator[Case]:
        """Every case, by number of deviating slots first, so the first violation is minimal."""
        setups = [(t, v, self.slots(t)) for t in self.placements(f) for v in self.values_for(t)]
        most = max((len(slots) for _, _, slots in setups), default=0)
        for k in range(most + 1):
            for traitors, value, slots in setups:
                if k > len(slots):
                    continue
                base = baseline(Case(traitors, value, ()))
                alts = [o for o in self.options if o != base]
                for where in combinations(range(len(slots)), k):
                    for picks in product(alts, repeat=k):
                        opts = [base] * len(slots)
                        for i, o in zip(where, picks, strict=True):
                            opts[i] = o
                        yield Case(traitors, value, tuple(zip(slots, opts, strict=True)))

    def sampled(self, f: int, rng: random.Random) -> Iterator[Case]:
        placements = self.placements(f)
        while True:
            traitors = placements[rng.randrange(len(placements))]
            values = self.values_for(traitors)
            value = values[rng.randrange(len(values))]
            slots = self.slots(traitors)
            opts = [self.options[rng.randrange(len(self.options))] for _ in slots]
            yield Case(traitors, value, tuple(zip(slots, opts, strict=True)))

    def shrink(self, case: Case) -> tuple[Case, Outcome]:
        """Greedily put slots back to the baseline while the case still violates."""
        outcome = self.run(case)
        base = baseline(case)
        changed = True
        while changed:
            changed = False
            for i, (slot, opt) in enumerate(case.table):
                if opt == base:
                    continue
                table = list(case.table)
                table[i] = (slot, base)
                trial = Case(case.traitors, case.value, tuple(table))
                out = self.run(trial)
                if not out.holds:
                    case, outcome, changed = trial, out, True
        return case, outcome


def scan(
    run: Callable[[Case], Outcome],
    cases: Iterator[Case],
    total: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, Case | None, Outcome | None]:
    """Run up to `total` cases; how many ran, and the first that violates (if any)."""
    checked = 0
    for case in cases:
        if checked >= total:
            break
        outcome = run(case)
        checked += 1
        if progress is not None and checked % 1000 == 0:
            progress(checked, total)
        if not outcome.holds:
            return checked, case, outcome
    return checked, None, None


def search(
    nodes: int,
    m: int,
    algorithm: str,
    traitors: int,
    *,
    max_runs: int = MAX_RUNS,
    samples: int = SAMPLES,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Exhaustive when the space is at most `max_runs` cases, else `samples` seeded random cases."""
    s = Searcher(nodes, m, algorithm)
    if not 0 <= traitors <= nodes:
        raise ValueError(f"traitors must be 0..{nodes}")
    space = s.space(traitors)
    exhaustive = space <= max_runs
    total = space if exhaustive else samples
    cases = s.exhaustive(traitors) if exhaustive else s.sampled(traitors, random.Random(seed))
    checked, case, outcome = scan(s.run, cases, total, progress)
    if case is not None and not exhaustive:
        case, outcome = s.shrink(case)
    return SearchResult(
        nodes,
        m,
        algorithm,
        traitors,
        case is None,
        checked,
        space,
        exhaustive,
        None if exhaustive else seed,
        case,
        outcome,
    )


def format_result(r: SearchResult) -> str:
    if r.exhaustive and r.holds:
        how = f"exhaustive: all {r.checked:,} cases"
    elif r.exhaustive:
        how = f"exhaustive over {r.space:,} cases, fewest lies first: violated at {r.checked:,}"
    else:
        how = f"sampled: {r.checked:,} random cases of {r.space:,} (seed {r.seed})"
    who = f"{r.traitors} traitor(s)"
    if r.mix is not None:
        a, s, b = r.mix
        side = "inside" if r.inside_bound else "outside"
        rule = "N > 2a+2s+b+m, a <= m" if r.algorithm == "omh" else "a+s+b <= f"
        who = f"{a} asymmetric, {s} symmetric, {b} manifest ({side} the bound {rule})"
    head = f"{r.algorithm.upper()}({r.m}), N={r.nodes}, {who}: {how}"
    if r.holds:
        return f"{head}\nholds: agreement and validity in every case checked"
    c, o = r.counterexample, r.outcome
    assert c is not None and o is not None
    base = baseline(c)
    lines = [
        head,
        "VIOLATION: minimal counterexample" + ("" if r.exhaustive else " (shrunk)") + ":",
        f"  commander {COMMANDER} ({'traitor' if COMMANDER in c.traitors else 'loyal'}, "
        f"value {c.value!r}), traitors {list(c.traitors)}",
    ]
    if c.kinds:
        lines.append("  fault classes: " + ", ".join(f"{t} {k}" for t, k in c.kinds))
    base_v = VALUES[0] if base == "v0" else VALUES[1]
    lines.append(f"  traitors send {base_v!r} everywhere except:")
    names = {
        "v0": repr(VALUES[0]),
        "v1": repr(VALUES[1]),
        "silent": "nothing",
        "error": "ERROR (a manifest report)",
        "both": f"both {VALUES[0]!r} and {VALUES[1]!r}",
    }
    for (path, dst, t), opt in c.table:
        if opt != base:
            lines.append(
                f"    traitor {t} -> {dst} (path {'→'.join(map(str, path))}): {names[opt]}"
            )
    for i, v in sorted(o.decisions.items()):
        lines.append(f"  lieutenant {i} decides {v!r}")
    lines.append(
        f"  agreement: {o.agreement}   validity: "
        f"{'n/a (commander is a traitor)' if o.validity is None else o.validity}"
    )
    return "\n".join(lines)
