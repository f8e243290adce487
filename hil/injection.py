"""Memory injections classified against a golden run: corrected, detected, masked or silent.

The simulator is deterministic, so a seed run without the injection is the
golden run of the same seed with it. One injection is one `MemoryHit` on one
board at one tick, handed in as data (`SimConfig.memory_hits`): no generator of
the run is drawn, so every difference from the golden run is the flip's doing.

Classes (the first that applies):

- `sdc`: a published output differs from the golden run's (silent data corruption;
  `stopped_after` says whether the board stopped later, too late for that output);
- `detected`: the board stopped (ECC double, a table that does not unpack, COM/MON
  disagreement, an output that is not its vector's vote at publication), or withheld
  a decision the golden run published (clique avoidance: its digest was in a minority);
- `corrected`: the ECC store corrected more bits than in the golden run;
- `masked`: every published output is the golden run's (a vote or a majority
  outvoted the flip, or it hit a word nobody read again).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.checks import NodeLog
from hil.sim import SimConfig, Simulator
from voter.core.memhit import CODEWORD_BITS, LOCATIONS, STORE, WORD_BITS, MemoryHit
from voter.core.protocol import Algorithm
from voter.core.record import DecisionRecord

CLASSES = ("corrected", "detected", "masked", "sdc")
#: bit patterns: one bit; two in one word; 3-8 in one word; one bit in each of 2-4 words
PATTERNS = ("single", "double", "multi-bit", "multi-word")
NODES = 4
#: a short run: the hit at tick HIT_TICK, confirmed (or not) and published by the end
RUN_TICKS = 8
HIT_TICK = 3
#: injections sharing one golden run (different boards, locations and bits)
PER_GOLDEN = 8


@dataclass(frozen=True)
class Injection:
    index: int
    algorithm: Algorithm
    seed: int
    node: int
    tick: int
    pattern: str
    hit: MemoryHit

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "algorithm": str(self.algorithm),
            "seed": self.seed,
            "node": self.node,
            "tick": self.tick,
            "location": self.hit.location,
            "pattern": self.pattern,
            "flips": [list(f) for f in self.hit.flips],
        }


@dataclass
class Outcome:
    injection: Injection
    cls: str
    mechanism: str
    #: sdc: every differing output stays inside the golden loyal readings' range
    bounded: bool | None = None
    stopped_after: bool = False
    differing: list[tuple[int, int]] = field(default_factory=list)  #: (node, tick)


def _flips(rng: random.Random, pattern: str, bits: int) -> tuple[tuple[int, int], ...]:
    word = rng.randrange(1 << 16)  # reduced modulo the target's size by the core
    if pattern == "single":
        return ((word, rng.randrange(bits)),)
    if pattern == "double":
        return tuple((word, b) for b in rng.sample(range(bits), 2))
    if pattern == "multi-bit":
        return tuple((word, b) for b in rng.sample(range(bits), rng.randint(3, 8)))
    return tuple((word + k, rng.randrange(bits)) for k in range(rng.randint(2, 4)))


def draw(rng: random.Random, index: int, base_seed: int) -> Injection:
    """Injection `index`: its golden seed, board, location and bits (from the soak's generator)."""
    location = LOCATIONS[index % len(LOCATIONS)]
    pattern = PATTERNS[(index // len(LOCATIONS)) % len(PATTERNS)]
    golden = index // PER_GOLDEN
    algorithm = Algorithm.SM if golden % 4 == 3 else Algorithm.OM
    bits = CODEWORD_BITS if location == STORE else WORD_BITS
    hit = MemoryHit(location, _flips(rng, pattern, bits))
    return Injection(
        index, algorithm, base_seed + golden, rng.randrange(NODES), HIT_TICK, pattern, hit
    )


def _config(inj: Injection, hits: bool, fail_silent: bool = True) -> SimConfig:
    cfg = SimConfig(
        nodes=NODES,
        algorithm=inj.algorithm,
        m=1,
        ticks=RUN_TICKS,
        seed=inj.seed,
        fail_silent=fail_silent,
    )
    if hits:
        cfg.memory_hits = {inj.node: {inj.tick: (inj.hit,)}}
    return cfg


def _run(cfg: SimConfig) -> dict[int, NodeLog]:
    return Simulator(cfg, keep_logs=True).run().logs


def _same(a: object, b: object) -> bool:
    return a == b or repr(a) == repr(b)  # NaN equals itself here


def _stop_mechanism(reason: str) -> str:
    if "COM/MON" in reason:
        return "com-mon"
    if "agreed vector" in reason:
        return "stored-vector"
    if "before publication" in reason:
        return "publish-check"
    return "secded"  # double-bit, a table that does not unpack, a length word that lies


def _bounded(golden: Mapping[int, NodeLog], rec: DecisionRecord, hit_node: int) -> bool:
    """Is every channel of a differing output inside the other boards' golden readings?"""
    ref = golden[rec.node].decisions.get(rec.tick)
    if ref is None:
        return False
    loyal = [v for j, v in enumerate(ref.vector) if j != hit_node and isinstance(v, list)]
    return bool(loyal) and all(
        isinstance(x, float) and min(v[c] for v in loyal) <= x <= max(v[c] for v in loyal)
        for c, x in enumerate(rec.output)
    )


def classify(inj: Injection, golden: Mapping[int, NodeLog], hit: Mapping[int, NodeLog]) -> Outcome:
    """Compare the injected run with the golden one, board by board and tick by tick."""
    differing: list[tuple[int, int]] = []
    withheld: list[str] = []
    corrected = 0
    for i, log in hit.items():
        for t, rec in sorted(log.decisions.items()):
            corrected += rec.corrected - getattr(golden[i].decisions.get(t), "corrected", 0)
            ref = golden[i].decisions.get(t)
            if rec.published and ref is not None and not _same(rec.output, ref.output):
                differing.append((i, t))
            elif not rec.published and ref is not None and ref.published:
                withheld.append(str(rec.withheld))
    stops = sorted(
        (e["tick"], e["reason"])
        for log in hit.values()
        for e in log.events
        if e.get("event") == "stop" and e.get("code") == 70
    )
    if stops:
        # A board that stopped leaves the others' vote from its tick on: their outputs
        # change because an entry is missing, which is the detection working, not corruption.
        differing = [(i, t) for i, t in differing if t < stops[0][0]]
    if differing:
        hit_board = [hit[i].decisions[t] for i, t in differing]
        bounded = all(_bounded(golden, r, inj.node) for r in hit_board)
        where = "own-board" if {i for i, _ in differing} == {inj.node} else "other-boards"
        return Outcome(inj, "sdc", where, bounded, bool(stops), differing)
    if stops:
        return Outcome(inj, "detected", _stop_mechanism(stops[0][1]))
    if withheld:
        return Outcome(inj, "detected", f"withheld:{withheld[0]}")
    if corrected > 0:
        return Outcome(inj, "corrected", "secded")
    return Outcome(inj, "masked", "none")


def classify_run(inj: Injection, fail_silent: bool = True) -> Outcome:
    """One injection and its own golden run (`fail_silent=False`: no self-checks, no clique
    avoidance, every decision published: what the flip does without them)."""
    golden = _run(_config(inj, hits=False, fail_silent=fail_silent))
    return classify(inj, golden, _run(_config(inj, hits=True, fail_silent=fail_silent)))


def run_injections(
    count: int, seed: int, progress: Callable[[int], None] | None = None
) -> Iterator[Outcome]:
    """`count` injections, each against its golden run (one golden run per PER_GOLDEN)."""
    rng = random.Random(seed)
    golden: tuple[int, dict[int, NodeLog]] | None = None
    for index in range(count):
        inj = draw(rng, index, seed)
        if golden is None or golden[0] != inj.seed:
            golden = (inj.seed, _run(_config(inj, hits=False)))
        yield classify(inj, golden[1], _run(_config(inj, hits=True)))
        if progress is not None:
            progress(1)


def tally(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per location and per pattern: class -> count, and detection mechanisms."""
    from hil.stats import proportion

    def table(key: Callable[[Outcome], str], keys: tuple[str, ...]) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        for k in keys:
            sel = [o for o in outcomes if key(o) == k]
            mech: dict[str, int] = {}
            for o in sel:
                mech[f"{o.cls}:{o.mechanism}"] = mech.get(f"{o.cls}:{o.mechanism}", 0) + 1
            rows[k] = {
                "n": len(sel),
                **{c: proportion(sum(1 for o in sel if o.cls == c), len(sel)) for c in CLASSES},
                "sdc_bounded": sum(1 for o in sel if o.cls == "sdc" and o.bounded),
                "mechanisms": dict(sorted(mech.items())),
            }
        return rows

    n = len(outcomes)
    return {
        "injections": n,
        "runs_per_golden": PER_GOLDEN,
        "run_ticks": RUN_TICKS,
        "total": {c: proportion(sum(1 for o in outcomes if o.cls == c), n) for c in CLASSES},
        "by_location": table(lambda o: o.injection.hit.location, LOCATIONS),
        "by_pattern": table(lambda o: o.injection.pattern, PATTERNS),
        "sdc_examples": [
            {
                **o.injection.to_json(),
                "mechanism": o.mechanism,
                "bounded": o.bounded,
                "stopped_after": o.stopped_after,
                "differing": o.differing[:4],
            }
            for o in outcomes
            if o.cls == "sdc"
        ][:20],
    }
