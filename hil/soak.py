"""`hil soak`: the reliability figures at their real sample sizes, from one seeded plan.

Four parts, each replayable from the plan's seed:

- **ticks**: episodes of the streaming simulator (decision lines into the
  incremental checker, nothing kept: memory stays flat) with random faults inside
  the bound, all on one board per episode: a traitor (every strategy in turn,
  mutate included), link faults on its links, memory flips, a crash, stalls, a
  clock step, clock drift. Pass: no agreement, validity or integrity violation
  among published outputs, and replayed episodes give identical history hashes;
- **frames**: real frames with line-like bit errors through the links' decoder
  (`hil.codec_soak`). Pass: none accepted other than as sent;
- **memory**: single-, double-, multi-bit and multi-word flips in the working state
  and the ECC store, each classified against a golden run (`hil.injection`).
  Pass: no silent data corruption, but for flipped readings the vote keeps inside
  the loyal readings (`memory_passed`);
- **fuzz**: seeded decoder inputs. Pass: no exception escapes.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hil.campaign import scenario_toml
from hil.faultspec import fault_budget, faulty_nodes, validate_run
from hil.scenario import Scenario
from hil.sim import Simulator, sim_config
from voter.core.adversary import Strategy
from voter.core.memhit import READING
from voter.core.protocol import Algorithm
from voter.faultmodel import Fault, parse_fault
from voter.textfile import TextFileError, read_text

PARTS = ("ticks", "frames", "memory", "fuzz")
NODES = 4
SAFETY = ("agreement", "validity", "integrity")
STRATEGIES = tuple(s.value for s in Strategy)
#: episodes replayed to show a seed gives the identical history (first, last, any failing)
REPLAYS_MAX = 4
Advance = Callable[[int], None]
LOG_EVERY_S = 60.0


class SoakError(ValueError):
    """A soak plan that cannot run (one line for the user)."""


@dataclass(frozen=True)
class SoakPlan:
    name: str = "soak"
    seed: int = 0
    #: simulated cluster-ticks in all, and per episode (one Simulator, one fault draw)
    ticks: int = 1_000_000
    episode_ticks: int = 5_000
    frames: int = 1_000_000
    injections: int = 9_604
    fuzz: int = 1_000_000

    def scaled(self, factor: float) -> SoakPlan:
        """Every count times `factor` (at least one episode's worth of ticks, one of each)."""
        ticks = max(self.episode_ticks, round(self.ticks * factor))
        return replace(
            self,
            ticks=ticks,
            frames=max(1, round(self.frames * factor)),
            injections=max(1, round(self.injections * factor)),
            fuzz=max(1, round(self.fuzz * factor)),
        )


def load_plan(path: Path) -> SoakPlan:
    """A `[soak]` table of counts (campaigns/soak/*.toml); SoakError says what is wrong."""
    try:
        data = tomllib.loads(read_text(path))
    except TextFileError as e:
        raise SoakError(str(e)) from None
    except tomllib.TOMLDecodeError as e:
        raise SoakError(f"{path}: not valid TOML: {e}") from None
    head = data.get("soak")
    if not isinstance(head, dict) or set(data) != {"soak"}:
        raise SoakError(f"{path}: expected one [soak] table")
    known = {f.name for f in fields(SoakPlan)}
    unknown = set(head) - known
    if unknown:
        raise SoakError(f"{path}: [soak]: unknown key(s): {', '.join(sorted(unknown))}")
    for key, value in head.items():
        if key != "name" and (isinstance(value, bool) or not isinstance(value, int)):
            raise SoakError(f"{path}: [soak]: {key} must be a whole number, got {value!r}")
        if key not in ("name", "seed") and value < 1:
            raise SoakError(f"{path}: [soak]: {key} must be >= 1")
    plan = SoakPlan(**{**head, "name": str(head.get("name", path.stem))})
    if plan.episode_ticks < 200:
        raise SoakError(f"{path}: [soak]: episode_ticks must be >= 200 (faults need room)")
    return plan


# -- part 1: ticks ------------------------------------------------------------------------
def _board_fault(rng: random.Random, kind: str, bad: int, ticks: int, index: int) -> str:
    at = rng.randrange(20, ticks - 20)
    match kind:
        case "traitor":
            return f"traitor:{bad}:{STRATEGIES[index % len(STRATEGIES)]}"
        case "crash":
            return f"crash:{bad}@{at}"
        case "stall":
            ms = rng.choice((5, 20, 60, 150))
            return f"stall:{bad}:{ms}ms@{at}" if rng.random() < 0.5 else f"stall:{bad}:{ms}ms/5s"
        case "clock-step":
            return f"clock-step:{bad}:{rng.choice((-1, 1)) * rng.randint(1, 50)}ms@{at}"
        case "memory":
            return f"memory-bitflip:{bad}:{rng.randint(1, 20)}/s:{rng.choice((1, 2))}"
        case _:
            return f"clock-drift:{bad}:{rng.choice((-1, 1)) * rng.randint(10, 300)}ppm"


def _link_fault(rng: random.Random, bad: int, traitor: bool) -> str:
    """A link fault of board `bad`'s: any of its links if it is a traitor, else one that
    `fault_budget` books to it (a loyal pair counts as its lower board)."""
    peer = rng.choice([j for j in range(NODES) if j != bad and (traitor or j > bad)])
    link = rng.choice((f"{bad}-{peer}", f"{bad}>{peer}", f"{peer}>{bad}"))
    return rng.choice(
        (
            f"link-bitflip:{link}:{rng.choice(('1e-5', '1e-4', '1e-3'))}",
            f"link-drop:{link}:{rng.choice(('0.001', '0.01', '0.05'))}",
            f"link-delay:{link}:{rng.randint(1, 5)}ms",
            f"link-jitter:{link}:{rng.randint(1, 3)}ms",
        )
    )


def draw_episode(rng: random.Random, index: int, plan: SoakPlan) -> Scenario:
    """Episode `index`: OM(1) or SM(1), N=4, faults all on one board (inside the bound)."""
    ticks = plan.episode_ticks
    traitor = index % 3 != 2  # two episodes in three have a traitor
    bad = rng.randrange(NODES if traitor else NODES - 1)
    kinds = ["traitor"] if traitor else []
    kinds += rng.sample(("crash", "stall", "clock-step", "memory", "drift"), rng.randint(0, 2))
    specs = [_board_fault(rng, k, bad, ticks, index // 3 * 2 + index % 3) for k in kinds]
    specs += [_link_fault(rng, bad, traitor) for _ in range(rng.randint(0 if kinds else 1, 2))]
    faults: list[Fault] = [parse_fault(s, NODES) for s in specs]
    validate_run(faults, ticks, 50.0)
    budget, why = fault_budget(faults)
    assert budget <= 1, why  # the plan promises faults inside the bound
    return Scenario(
        name=f"episode-{index}",
        algorithm=Algorithm.SM if rng.random() < 0.25 else Algorithm.OM,
        faults=tuple(faults),
        ticks=ticks,
        seed=plan.seed * 1_000_003 + index,
    )


def _simulate(sc: Scenario, advance: Advance | None) -> tuple[Any, str]:
    """One episode through the streaming simulator: (checker verdict, history hash)."""
    seen = [0]

    def progress(tick: int) -> None:
        if advance is not None and tick > seen[0]:
            advance(tick - seen[0])
            seen[0] = tick

    r = Simulator(sim_config(sc), progress, keep_logs=False).run()
    if advance is not None and sc.ticks > seen[0]:
        advance(sc.ticks - seen[0])
    return r.check, r.history_hash


EPISODES_FILE = "ticks-episodes.jsonl"


def _episode_row(index: int, sc: Scenario, check: Any, digest: str, wall: float) -> dict[str, Any]:
    """What a finished episode adds to the totals: one line of EPISODES_FILE."""
    return {
        "index": index,
        "seed": sc.seed,
        "algorithm": str(sc.algorithm),  # for the report's plot (rows of older runs lack it)
        "counts": dict(check.counts),
        "published": check.published,
        "decisions": check.decisions,
        "hash": digest,
        "safe": check.safe,
        "wall_s": round(wall, 3),
    }


def _done_episodes(plan: SoakPlan, out: Path, resume: bool) -> dict[int, dict[str, Any]]:
    """The episodes an earlier run of this plan into OUT finished (`--resume`), else none
    (and a fresh EPISODES_FILE headed by the plan).

    Each episode is a pure function of the plan and its index, so a finished one
    need not run again: a soak stopped by Ctrl-C, a reboot or a session's end goes
    on from where it was, and its totals are the same as one run's."""
    path = out / EPISODES_FILE
    head = {"plan": {f.name: getattr(plan, f.name) for f in fields(SoakPlan)}}
    if not resume or not path.exists():
        path.write_text(json.dumps(head) + "\n")
        return {}
    lines = path.read_text().splitlines()
    try:
        rows = [json.loads(line) for line in lines]
    except json.JSONDecodeError:  # the line a kill cut short: that episode runs again
        rows = [json.loads(line) for line in lines[:-1]]
    if not rows or rows[0] != head:
        raise SoakError(f"--resume: {path} is from another plan (or scale); use a new --out")
    return {r["index"]: r for r in rows[1:]}


def run_ticks(
    plan: SoakPlan,
    out: Path,
    advance: Advance | None = None,
    replay: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Episodes until `plan.ticks` cluster-ticks ran; failing ones get a reproduction file.

    `replay=False` skips the replays (bench.sim_memory measures one long episode);
    `resume` takes the episodes EPISODES_FILE says an earlier run finished."""
    rng = random.Random(plan.seed)
    episodes = -(-plan.ticks // plan.episode_ticks)
    done = _done_episodes(plan, out, resume)
    counts = dict.fromkeys(("agreement", "validity", "integrity", "liveness", "timeliness"), 0)
    kinds: dict[str, int] = {}
    hashes: dict[int, tuple[Scenario, str]] = {}
    failing: list[dict[str, Any]] = []
    published = decisions = 0
    rss_start = _peak_rss_mb()
    wall = 0.0
    for index in range(episodes):
        sc = draw_episode(rng, index, plan)  # drawn even when done: the draws are a sequence
        row = done.get(index)
        if row is None or row["seed"] != sc.seed:
            row = _run_episode(index, sc, out, plan, advance)
        wall += row["wall_s"]
        for p in counts:
            counts[p] += row["counts"][p]
        published += row["published"]
        decisions += row["decisions"]
        for f in sc.faults:
            key = f"traitor:{f.strategy}" if hasattr(f, "strategy") else f.kind
            kinds[key] = kinds.get(key, 0) + 1
        if index in (0, episodes - 1) or not row["safe"]:
            hashes[index] = (sc, row["hash"])
        if "failing" in row and len(failing) < 10:
            failing.append(row["failing"])
        _checkpoint(out, index + 1, plan, counts, wall)
    replays = _replay(hashes) if replay else []
    violations = sum(counts[p] for p in SAFETY)
    return {
        "passed": violations == 0 and all(r["identical"] for r in replays),
        "ticks": episodes * plan.episode_ticks,
        "episodes": episodes,
        "episode_ticks": plan.episode_ticks,
        "resumed_episodes": len(done),
        "violations": violations,
        "counts": counts,
        "loyal_decisions": decisions,
        "loyal_published": published,
        "faults": dict(sorted(kinds.items())),
        "replays": replays,
        "failing": failing,
        "wall_s": round(wall, 1),  # the episodes' own time, summed over resumed runs
        "ticks_per_s": round(episodes * plan.episode_ticks / wall, 1) if wall else None,
        "peak_rss_mb": {"start": rss_start, "end": _peak_rss_mb()},
    }


def _run_episode(
    index: int, sc: Scenario, out: Path, plan: SoakPlan, advance: Advance | None
) -> dict[str, Any]:
    """Simulate one episode and append its row to EPISODES_FILE (flushed: a kill loses
    at most the episode it cut)."""
    started = time.monotonic()
    check, digest = _simulate(sc, advance)
    row = _episode_row(index, sc, check, digest, time.monotonic() - started)
    if not check.safe:
        row["failing"] = _failing(sc, check, out, plan)
    with (out / EPISODES_FILE).open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def _checkpoint(
    out: Path, episodes: int, plan: SoakPlan, counts: dict[str, int], wall: float
) -> None:
    """ticks-so-far.json after every episode: what a soak stopped early had shown."""
    ticks = episodes * plan.episode_ticks
    rate = ticks / wall if wall else 0.0
    (out / "ticks-so-far.json").write_text(
        json.dumps(
            {
                "episodes": episodes,
                "ticks": ticks,
                "of": part_total("ticks", plan),
                "counts": counts,
                "wall_s": round(wall, 1),
                "ticks_per_s": round(rate, 1),
                "eta_s": round((part_total("ticks", plan) - ticks) / rate) if rate else None,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
        + "\n"
    )


def _failing(sc: Scenario, check: Any, out: Path, plan: SoakPlan) -> dict[str, Any]:
    repro = out / "repro" / f"{sc.name}.toml"
    repro.parent.mkdir(parents=True, exist_ok=True)
    repro.write_text(scenario_toml(sc, plan.name))
    return {
        "episode": sc.name,
        "seed": sc.seed,
        "algorithm": str(sc.algorithm),
        "faults": [f.describe() for f in sc.faults],
        "traitors": faulty_nodes(sc.faults),
        "counts": {p: check.counts[p] for p in SAFETY},
        "first": [str(v) for v in check.violations[:3]],
        "command": f"hil campaign run {repro} --out {out / 'repro' / sc.name}",
    }


def _replay(hashes: dict[int, tuple[Scenario, str]]) -> list[dict[str, Any]]:
    rows = []
    for index, (sc, digest) in list(hashes.items())[:REPLAYS_MAX]:
        _, again = _simulate(sc, None)
        rows.append(
            {"episode": index, "hash": digest, "replayed": again, "identical": again == digest}
        )
    return rows


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- the other parts and the whole ---------------------------------------------------------
def run_part(
    part: str, plan: SoakPlan, out: Path, advance: Advance | None, resume: bool = False
) -> dict[str, Any]:
    started = time.monotonic()
    if part == "ticks":
        return run_ticks(plan, out, advance, resume=resume)
    if part == "frames":
        from hil.codec_soak import corrupt_frames

        res = corrupt_frames(plan.frames, plan.seed, advance)
        res["passed"] = res["accepted_wrong"] == 0
    elif part == "fuzz":
        from hil.codec_soak import fuzz_decoder

        res = fuzz_decoder(plan.fuzz, plan.seed, advance)
        res["passed"] = res["escaped"] == 0
    else:
        from hil.injection import run_injections, tally

        res = tally(list(run_injections(plan.injections, plan.seed, advance)))
        res["passed"] = memory_passed(res)
    res["wall_s"] = round(time.monotonic() - started, 1)
    return res


def memory_passed(res: dict[str, Any]) -> bool:
    """No silent corruption, except a flipped reading whose every changed output stays
    inside the loyal boards' readings.

    A flip in the sampled reading is that board's sensor fault: the reading is the
    input, so one board has no second path to check it against (docs/design.md,
    "Memory injections"), and the vote is what bounds it. Such cases are still
    counted and reported (`sdc`, `sdc_bounded`); one that leaves the loyal range,
    or any silent corruption of state the board could check, fails the part."""
    rows = res["by_location"]
    reading = rows.get(READING, {"sdc": {"k": 0}, "sdc_bounded": 0})
    elsewhere = res["total"]["sdc"]["k"] - reading["sdc"]["k"]
    return bool(elsewhere == 0 and reading["sdc"]["k"] == reading["sdc_bounded"])


def part_total(part: str, plan: SoakPlan) -> int:
    """What a part's progress counts to: ticks, frames, injections or inputs."""
    if part == "ticks":
        return -(-plan.ticks // plan.episode_ticks) * plan.episode_ticks
    return {"frames": plan.frames, "memory": plan.injections, "fuzz": plan.fuzz}[part]


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


class _LineProgress:
    """Plain progress lines for a soak whose stderr is a file: done, rate and ETA."""

    def __init__(
        self, part: str, total: int, log: Callable[[str], None] | None, start: int = 0
    ) -> None:
        self.part, self.total, self.log = part, total, log
        self.done = self.start = start  # a resumed soak's rate counts this run's work only
        self.started = self.last = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.log is None or now - self.last < LOG_EVERY_S:
            return
        self.last = now
        rate = (self.done - self.start) / (now - self.started)
        eta = (self.total - self.done) / rate if rate else float("inf")
        self.log(
            f"{self.part}: {self.done:,}/{self.total:,}, {rate:,.1f}/s, "
            f"elapsed {now - self.started:,.0f} s, ETA {eta:,.0f} s"
        )


@contextmanager
def _bars(enabled: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hil.progress import RateColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    ) as bar:
        yield bar


def run_soak(
    plan: SoakPlan,
    out: Path,
    parts: tuple[str, ...] = PARTS,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the chosen parts in order; the report (also written to OUT) says what passed.

    `progress`: rich bars (a terminal); else `log` gets a line with rate and ETA every
    LOG_EVERY_S (a soak in the background, its stderr in a file). `resume`: the parts
    OUT's report already holds are kept, and the ticks part goes on from its last
    finished episode."""
    from hil.report import run_metadata
    from hil.soak_report import write_report

    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "soak": plan.name,
        "seed": plan.seed,
        "plan": {f.name: getattr(plan, f.name) for f in fields(SoakPlan)},
        "meta": run_metadata(),
        "machine": machine(),
        "parts": {},
    }
    if resume:
        report["parts"] = _finished_parts(out, report["plan"])
    with _bars(progress) as bar:
        for part in parts:
            if part in report["parts"]:
                continue
            total = part_total(part, plan)
            start = _resumed_ticks(plan, out) if resume and part == "ticks" else 0
            task = bar.add_task(part, total=total, completed=start)
            lines = _LineProgress(part, total, None if progress else log, start)

            def advance(n: int, task: Any = task, lines: _LineProgress = lines) -> None:
                bar.advance(task, n)
                lines.advance(n)

            report["parts"][part] = run_part(part, plan, out, advance, resume)
            bar.update(task, completed=total)
            write_report(out, report)  # a long soak's finished parts survive a later Ctrl-C
    report["passed"] = all(p["passed"] for p in report["parts"].values())
    write_report(out, report)
    return report


def _finished_parts(out: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """`--resume`: the parts OUT's report.json holds, if it is a report of this plan."""
    path = out / "report.json"
    if not path.exists():
        return {}
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise SoakError(f"--resume: {path} is not a soak report; use a new --out") from None
    if old.get("plan") != plan:
        raise SoakError(f"--resume: {path} is from another plan (or scale); use a new --out")
    parts: dict[str, Any] = old.get("parts", {})
    return parts


def _resumed_ticks(plan: SoakPlan, out: Path) -> int:
    """Ticks of the episodes an earlier run finished (the bar starts there, not at 0)."""
    path = out / EPISODES_FILE
    if not path.exists():
        return 0
    return plan.episode_ticks * max(0, len(path.read_text().splitlines()) - 1)
