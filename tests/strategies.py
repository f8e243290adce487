"""Shared Hypothesis strategies: readings, clusters inside and outside the theory's bound."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from voter.core.adversary import STRATEGIES, Adversary, make_adversary
from voter.core.values import ReadingDomain

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def readings(channels: int = 3) -> st.SearchStrategy[tuple[float | None, ...]]:
    return st.tuples(
        *[st.one_of(finite, st.none()) if ch == 2 else finite for ch in range(channels)]
    )


#: every in-memory strategy (the one list: voter.core.adversary.Strategy)
STRATEGY_NAMES = STRATEGIES


def adversary(name: str, domain: ReadingDomain, seed: int) -> Adversary:
    made = make_adversary(name, domain, random.Random(seed), (-1.0, 2.0, 3.0))
    assert made is not None, name
    return made


@st.composite
def ic_inside_bound(draw: st.DrawFn) -> dict[str, object]:
    """A cluster and traitor set the theory says is safe: OM N > 3f, SM N >= f + 2, f <= m."""
    algorithm = draw(st.sampled_from(["om", "sm"]))
    if algorithm == "om":
        m = draw(st.integers(1, 2))
        nodes = draw(st.integers(3 * m + 1, 3 * m + 2)) if m == 1 else 7
        f_max = min(m, (nodes - 1) // 3)
    else:
        m = draw(st.integers(1, 2))
        nodes = draw(st.integers(m + 2, 5))
        f_max = min(m, nodes - 2)
    f = draw(st.integers(0, f_max))
    traitors = draw(st.lists(st.integers(0, nodes - 1), min_size=f, max_size=f, unique=True))
    names = draw(st.lists(st.sampled_from(STRATEGY_NAMES), min_size=f, max_size=f))
    values = {i: draw(readings()) for i in range(nodes)}
    seed = draw(st.integers(0, 2**16))
    return {
        "algorithm": algorithm,
        "m": m,
        "nodes": nodes,
        "traitors": dict(zip(traitors, names, strict=True)),
        "readings": values,
        "seed": seed,
    }


@st.composite
def command_log_inside_bound(draw: st.DrawFn) -> dict[str, object]:
    """A command-log run the theory says is safe and live: PBFT N=4 with one faulty replica
    (any strategy, any window, lossy links at it), or crash-only N=3 with one crash or a
    lossy/slow link at one board."""
    from voter.faultmodel import Crash, LinkDelay, LinkDrop, LinkSelector, Traitor, Window
    from voter.smr_faults import SMR_STRATEGIES

    protocol = draw(st.sampled_from(["pbft", "crash"]))
    nodes = 4 if protocol == "pbft" else 3
    node = draw(st.integers(0, nodes - 1))
    other = draw(st.sampled_from([j for j in range(nodes) if j != node]))
    link = LinkSelector((node, other))
    faults: list[object] = []
    if protocol == "pbft":
        start = draw(st.integers(0, 60))
        end = draw(st.one_of(st.none(), st.integers(start, start + 150)))
        strategy = draw(st.sampled_from(sorted(SMR_STRATEGIES)))
        faults.append(Traitor(node, strategy, window=Window(start, end)))
        faults.append(LinkDrop(link, draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))))
    else:
        kind = draw(st.sampled_from(["crash", "drop", "delay"]))
        if kind == "crash":
            faults.append(Crash(node, draw(st.integers(1, 100))))
        elif kind == "drop":
            faults.append(LinkDrop(link, draw(st.sampled_from([0.05, 0.3]))))
        else:
            faults.append(LinkDelay(link, draw(st.sampled_from([20.0, 100.0]))))
    return {
        "protocol": protocol,
        "nodes": nodes,
        "faults": tuple(faults),
        "seed": draw(st.integers(0, 2**16)),
    }
