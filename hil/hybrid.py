"""The hybrid fault space of `hil verify --asymmetric/--symmetric/--manifest` (OMH's model).

Thambidurai-Park's classes, as a search adversary: a manifest traitor sends
nothing at all (crashed, or every frame lost or rejected), a symmetric one
sends the same value to every receiver of a message (possibly a wrong one), an
asymmetric one anything, per receiver. The run and the checker are
`hil.verify`'s: only which slots may deviate, and how, differs. Slots of a
symmetric traitor are grouped by path, so one option covers every receiver.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from math import prod

from hil.verify import Case, Outcome, Searcher, SearchResult, Slot, baseline, scan
from voter.core.adversary import Option
from voter.core.protocol import mix_within_bound

#: Slots that take one option together (one slot, or every receiver of a symmetric message).
Unit = tuple[Slot, ...]


@dataclass(frozen=True)
class Mix:
    """How many traitors of each class: a asymmetric, s symmetric, b manifest."""

    asymmetric: int
    symmetric: int
    manifest: int

    @property
    def total(self) -> int:
        return self.asymmetric + self.symmetric + self.manifest


@dataclass(frozen=True)
class Setup:
    """One placement of the classes and the commander's value: what may vary, what is fixed."""

    kinds: tuple[tuple[int, str], ...]
    value: str
    units: tuple[tuple[Unit, tuple[Option, ...]], ...]
    silent: tuple[Slot, ...]

    @property
    def traitors(self) -> tuple[int, ...]:
        return tuple(t for t, _ in self.kinds)

    def case(self, picks: Sequence[Option]) -> Case:
        table: list[tuple[Slot, Option]] = [(slot, "silent") for slot in self.silent]
        for (unit, _), opt in zip(self.units, picks, strict=True):
            table += [(slot, opt) for slot in unit]
        return Case(self.traitors, self.value, tuple(table), self.kinds)

    def baseline(self) -> Option:
        return baseline(Case(self.traitors, self.value, ()))


class HybridSearcher:
    """Enumerates the hybrid fault space of one (N, m, algorithm) and runs it through `Searcher`."""

    def __init__(self, nodes: int, m: int, algorithm: str, mix: Mix) -> None:
        self.base = Searcher(nodes, m, algorithm)
        self.mix = mix
        # Under OMH, ERROR is a value that votes (a report of a manifest commander): a liar
        # may send it too. OM and SM searches keep their option sets.
        extra: tuple[Option, ...] = ("error",) if algorithm == "omh" else ()
        self.asymmetric: tuple[Option, ...] = (*self.base.options, *extra)
        self.symmetric: tuple[Option, ...] = ("v0", "v1", *extra)

    def placements(self) -> Iterator[tuple[tuple[int, str], ...]]:
        nodes, mix = range(self.base.params.nodes), self.mix
        for a in combinations(nodes, mix.asymmetric):
            rest = [n for n in nodes if n not in a]
            for s in combinations(rest, mix.symmetric):
                left = [n for n in rest if n not in s]
                for b in combinations(left, mix.manifest):
                    kinds = [(t, "asymmetric") for t in a]
                    kinds += [(t, "symmetric") for t in s] + [(t, "manifest") for t in b]
                    yield tuple(sorted(kinds))

    def setups(self) -> list[Setup]:
        out: list[Setup] = []
        for kinds in self.placements():
            units: list[tuple[Unit, tuple[Option, ...]]] = []
            silent: list[Slot] = []
            for t, kind in kinds:
                slots = self.base.slots([t])
                if kind == "manifest":
                    silent += slots
                elif kind == "asymmetric":
                    units += [((slot,), self.asymmetric) for slot in slots]
                else:
                    paths = sorted({path for path, _, _ in slots})
                    units += [
                        (tuple(sl for sl in slots if sl[0] == p), self.symmetric) for p in paths
                    ]
            for value in self.base.values_for([t for t, _ in kinds]):
                out.append(Setup(kinds, value, tuple(units), tuple(silent)))
        return out

    def space(self) -> int:
        return sum(prod(len(opts) for _, opts in s.units) for s in self.setups())

    def exhaustive(self) -> Iterator[Case]:
        """Every case, fewest deviating units first, so the first violation is minimal."""
        setups = self.setups()
        most = max((len(s.units) for s in setups), default=0)
        for k in range(most + 1):
            for s in setups:
                base = s.baseline()
                for where in combinations(range(len(s.units)), k):
                    alts = [[o for o in s.units[i][1] if o != base] for i in where]
                    for picks in product(*alts):
                        opts: list[Option] = [base] * len(s.units)
                        for i, o in zip(where, picks, strict=True):
                            opts[i] = o
                        yield s.case(opts)

    def sampled(self, rng: random.Random) -> Iterator[tuple[Setup, list[Option]]]:
        setups = self.setups()
        while True:
            s = setups[rng.randrange(len(setups))]
            yield s, [opts[rng.randrange(len(opts))] for _, opts in s.units]

    def shrink(self, setup: Setup, picks: list[Option]) -> tuple[Case, Outcome]:
        """Put units back to the baseline while the case still violates (classes stay intact)."""
        base, outcome = setup.baseline(), self.base.run(setup.case(picks))
        changed = True
        while changed:
            changed = False
            for i, opt in enumerate(picks):
                if opt == base:
                    continue
                trial = [*picks[:i], base, *picks[i + 1 :]]
                out = self.base.run(setup.case(trial))
                if not out.holds:
                    picks, outcome, changed = trial, out, True
        return setup.case(picks), outcome


def search_hybrid(
    nodes: int,
    m: int,
    algorithm: str,
    mix: Mix,
    *,
    max_runs: int,
    samples: int,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """`hil.verify.search` over the hybrid fault space, and whether the mix is in the bound."""
    if min(mix.asymmetric, mix.symmetric, mix.manifest) < 0 or mix.total > nodes:
        raise ValueError(f"the traitors of every class together must be 0..{nodes}")
    h = HybridSearcher(nodes, m, algorithm, mix)
    space = h.space()
    exhaustive = space <= max_runs
    if exhaustive:
        checked, case, outcome = scan(h.base.run, h.exhaustive(), space, progress)
    else:
        drawn: list[tuple[Setup, list[Option]]] = []

        def cases() -> Iterator[Case]:
            for setup, picks in h.sampled(random.Random(seed)):
                drawn[:] = [(setup, picks)]
                yield setup.case(picks)

        checked, case, outcome = scan(h.base.run, cases(), samples, progress)
        if case is not None:
            case, outcome = h.shrink(*drawn[0])
    inside = mix_within_bound(algorithm, nodes, m, mix.asymmetric, mix.symmetric, mix.manifest)
    mix_t = (mix.asymmetric, mix.symmetric, mix.manifest)
    return SearchResult(
        nodes,
        m,
        algorithm,
        mix.total,
        case is None,
        checked,
        space,
        exhaustive,
        None if exhaustive else seed,
        case,
        outcome,
        mix_t,
        inside,
    )
