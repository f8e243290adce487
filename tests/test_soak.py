"""The soak's parts at small sizes: memory hits, golden-run classes, frames, fuzz, ticks, CLI."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hil import codec_soak
from hil.campaign import load_campaign
from hil.injection import HIT_TICK, Injection, classify_run, run_injections, tally
from hil.soak import SoakError, SoakPlan, draw_episode, load_plan, run_soak, run_ticks
from hil.stats import clopper_pearson
from voter.core import frame as frame_mod
from voter.core.driver import TickDriver
from voter.core.memhit import OUTPUT, STORE, TABLE, VECTOR, MemoryHit, flip_words
from voter.core.protocol import Algorithm
from voter.faultmodel import Traitor

ROOT = Path(__file__).resolve().parents[1]


def test_flip_words_flips_float64_bits_and_reduces_indices() -> None:
    """Sign bit of the second float; a word index past the end wraps; None stays None."""
    value = ((1.5, 2.0), None, (3.0,))
    assert flip_words(value, ((1, 63),)) == ((1.5, -2.0), None, (3.0,))
    assert flip_words(value, ((4, 63),)) == ((1.5, -2.0), None, (3.0,))  # 4 % 3 words
    assert flip_words(flip_words(value, ((2, 7),)), ((2, 7),)) == value
    assert flip_words(None, ((0, 1),)) is None
    assert math.isinf(flip_words([1.0], ((0, 62),))[0])  # type: ignore[index]


def test_clopper_pearson_matches_known_intervals() -> None:
    """5 of 10 (R's binom.test) and the closed forms at k = 0 and k = n."""
    low, high = clopper_pearson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.1871, 0.8129)
    assert clopper_pearson(0, 10**6)[1] == pytest.approx(1 - 0.025 ** (1e-6), rel=1e-6)
    assert clopper_pearson(9604, 9604)[0] == pytest.approx(0.025 ** (1 / 9604), rel=1e-9)


def _inj(location: str, flips: tuple[tuple[int, int], ...], node: int = 2) -> Injection:
    return Injection(0, Algorithm.SM, 3, node, HIT_TICK, "single", MemoryHit(location, flips))


def test_store_single_flip_is_corrected_and_double_detected() -> None:
    """SECDED on the stored table: one bit corrected, two bits of a word stop the board."""
    assert classify_run(_inj(STORE, ((0, 5),))).cls == "corrected"
    double = classify_run(_inj(STORE, ((0, 5), (0, 40))))
    assert (double.cls, double.mechanism) == ("detected", "secded")


def test_vector_flip_is_caught_by_clique_avoidance() -> None:
    """A flipped agreed vector gives a digest in the minority: the board withholds."""
    o = classify_run(_inj(VECTOR, ((1, 62),)))
    assert (o.cls, o.mechanism) == ("detected", "withheld:minority")


def test_table_flip_is_silent_without_clique_avoidance() -> None:
    """The mechanism switched off: the same flip in the node's table is published wrongly."""
    hit = _inj(TABLE, ((0, 63),))
    assert classify_run(hit).cls == "detected"
    off = classify_run(hit, fail_silent=False)
    assert off.cls == "sdc" and off.bounded is False


def test_output_flip_is_caught_at_publication(monkeypatch: pytest.MonkeyPatch) -> None:
    """The voted output waits for its confirmation in memory: the check at publication stops
    the board; switched off, the same flip is published silently (what the soak found)."""
    hit = _inj(OUTPUT, ((0, 63),))
    o = classify_run(hit)
    assert (o.cls, o.mechanism) == ("detected", "publish-check")
    monkeypatch.setattr(TickDriver, "_check_output", lambda self, record, output: None)
    off = classify_run(hit)
    assert (off.cls, off.mechanism, off.differing) == ("sdc", "own-board", [(2, HIT_TICK)])


def test_injections_cover_every_location_and_pattern() -> None:
    """Twenty draws: four per location, five per pattern, each class counted with its interval."""
    rep = tally(list(run_injections(20, 5)))
    assert rep["injections"] == 20
    assert {r["n"] for r in rep["by_location"].values()} == {4}
    assert {r["n"] for r in rep["by_pattern"].values()} == {5}
    total = rep["total"]
    assert sum(total[c]["k"] for c in total) == 20
    assert rep["by_location"]["output"]["detected"]["k"] == 4


def test_corrupted_frames_are_never_accepted() -> None:
    """Real OM and SM frames with line-like bit errors: all rejected by COBS/CRC/parser."""
    res = codec_soak.corrupt_frames(3000, 1)
    assert (res["corrupted"], res["accepted_wrong"]) == (3000, 0)
    assert res["undetected"]["high95"] < 2e-3


def test_corrupted_frames_are_accepted_without_the_crc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism switched off (the CRC always matches): damaged frames get through."""
    real = frame_mod.open_body

    def no_crc(body: bytes) -> object:
        opened = real(body)
        if isinstance(opened, tuple):
            return opened[0], frame_mod.payload_crc(opened[0], codec_soak.CLUSTER)
        return opened

    monkeypatch.setattr(frame_mod, "open_body", no_crc)
    assert codec_soak.corrupt_frames(1000, 1)["accepted_wrong"] > 0


def test_fuzz_reaches_the_parser_and_nothing_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-sealed payloads get past the CRC (frames and drops both come out); a parser that
    raises is counted, so the counter can see what it is for."""
    res = codec_soak.fuzz_decoder(3000, 2)
    assert res["escaped"] == 0 and res["frames"] > 0 and res["drops"] > 0

    def broken(buf: bytes, cluster: str) -> object:
        raise IndexError("parser bug")

    monkeypatch.setattr(frame_mod, "_frame_from", broken)
    bad = codec_soak.fuzz_decoder(300, 2)
    assert bad["escaped"] > 0 and bad["first"].startswith("IndexError")


def test_episodes_stay_inside_the_bound_and_use_every_strategy() -> None:
    """Every traitor strategy (mutate included) appears; faults sit on one board."""
    rng = random.Random(0)
    plan = SoakPlan(episode_ticks=300)
    episodes = [draw_episode(rng, i, plan) for i in range(60)]
    strategies = {str(f.strategy) for e in episodes for f in e.faults if isinstance(f, Traitor)}
    assert "mutate" in strategies and len(strategies) == 11


def test_soak_ticks_pass_and_replay_identically(tmp_path: Path) -> None:
    """Two short streamed episodes: no safety violation, the replays give the same hash."""
    res = run_ticks(SoakPlan(seed=3, ticks=400, episode_ticks=200), tmp_path)
    assert res["passed"] and res["violations"] == 0 and res["ticks"] == 400
    assert [r["identical"] for r in res["replays"]] == [True, True]


def test_soak_ticks_report_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An episode beyond the bound (two liars of four) fails, with a file that reproduces it."""
    theorem = load_campaign(ROOT / "campaigns" / "seed-theorems.toml")
    beyond = next(s for s in theorem.scenarios if s.name == "om1-n4-two-liars-beyond-bound")
    monkeypatch.setattr(
        "hil.soak.draw_episode", lambda rng, i, plan: replace(beyond, ticks=plan.episode_ticks)
    )
    res = run_ticks(SoakPlan(seed=3, ticks=200, episode_ticks=200), tmp_path)
    assert not res["passed"] and res["violations"] > 0
    assert Path(res["failing"][0]["command"].split()[3]).is_file()


def test_plan_errors_are_one_line(tmp_path: Path) -> None:
    """A bad plan is a SoakError naming the key, never a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[soak]\nticks = -1\n")
    with pytest.raises(SoakError, match="ticks must be >= 1"):
        load_plan(bad)
    bad.write_text("[soak]\nspeed = 3\n")
    with pytest.raises(SoakError, match="unknown key"):
        load_plan(bad)


def test_hil_soak_command_writes_the_report(tmp_path: Path) -> None:
    """`hil soak` end to end, as a process: every part, report.json and report.html."""
    out = tmp_path / "soak"
    plan = ROOT / "campaigns" / "soak" / "small.toml"
    cmd = [str(Path(sys.executable).parent / "hil"), "soak", str(plan), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--scale", "0.03"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    report = json.loads((out / "report.json").read_text())
    assert set(report["parts"]) == {"ticks", "frames", "memory", "fuzz"}
    assert proc.returncode == (0 if report["passed"] else 1)
    assert "silent corruption in: output" not in proc.stdout
    page = (out / "report.html").read_text()
    assert page.count("<h2>") == 4
    # the episodes and the injections as plots, embedded (matplotlib is a test dependency)
    for alt in ("soak-episodes", "soak-memory-location", "soak-memory-pattern"):
        assert f'<img alt="{alt}" src="data:image/png;base64,' in page


def test_soak_report_without_matplotlib_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain `pip install .` has no matplotlib: the soak report says why it has no plots."""
    import hil.soak_report

    monkeypatch.setattr(hil.soak_report, "plotting", lambda: None)
    plan = load_plan(ROOT / "campaigns" / "soak" / "small.toml").scaled(0.05)
    report = run_soak(plan, tmp_path, parts=("memory",))
    page = (tmp_path / "report.html").read_text()
    assert report["parts"]["memory"]["injections"] > 0
    assert "<img" not in page and "matplotlib is not installed" in page


def test_memory_part_passes_only_bounded_reading_corruption() -> None:
    """The pass rule: a flipped reading acts as that board's sensor fault, so silent
    corruption there passes only while the vote keeps every changed output inside the
    loyal readings; silent corruption anywhere else fails the part."""
    from hil.soak import memory_passed

    def res(reading_sdc: int, bounded: int, other_sdc: int) -> dict[str, Any]:
        return {
            "total": {"sdc": {"k": reading_sdc + other_sdc}},
            "by_location": {
                "reading": {"sdc": {"k": reading_sdc}, "sdc_bounded": bounded},
                "table": {"sdc": {"k": other_sdc}, "sdc_bounded": 0},
            },
        }

    assert memory_passed(res(0, 0, 0))
    assert memory_passed(res(967, 967, 0))
    assert not memory_passed(res(967, 966, 0))  # one output left the loyal range
    assert not memory_passed(res(0, 0, 1))  # silent corruption of checkable state


def test_a_killed_soak_resumes_to_the_totals_of_one_run(tmp_path: Path) -> None:
    """`hil soak --resume` after SIGKILL (a reboot, a session's end): the finished episodes
    are kept, the rest run, and the report's totals and replay hashes are those of an
    uninterrupted run; a resume into another plan's --out is one line, exit 2."""
    import os
    import signal
    import time

    hil = str(Path(sys.executable).parent / "hil")
    plan = str(ROOT / "campaigns" / "soak" / "small.toml")
    args = ["--only", "ticks", "--scale", str(2000 / 9000), "--no-progress"]  # 8 episodes
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run = subprocess.run([hil, "soak", plan, "--out", str(whole), *args], check=False)
    assert 0 == run.returncode
    proc = subprocess.Popen([hil, "soak", plan, "--out", str(cut), *args])
    episodes = cut / "ticks-episodes.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if episodes.exists() and len(episodes.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = len(episodes.read_text().splitlines()) - 1
    assert 2 <= kept < 8  # stopped part-way
    again = subprocess.run([hil, "soak", plan, "--out", str(cut), *args, "--resume"], check=False)
    assert 0 == again.returncode
    a = json.loads((whole / "report.json").read_text())["parts"]["ticks"]
    b = json.loads((cut / "report.json").read_text())["parts"]["ticks"]
    assert 0 == a["resumed_episodes"] and kept <= b["resumed_episodes"] < 8
    same = ("ticks", "counts", "loyal_decisions", "loyal_published", "faults", "replays")
    assert {k: a[k] for k in same} == {k: b[k] for k in same}
    other = subprocess.run(
        [hil, "soak", plan, "--out", str(cut), "--only", "ticks", "--scale", "0.5", "--resume"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 2 == other.returncode and "another plan" in other.stderr
    assert 1 == len(other.stderr.strip().splitlines())
