"""Timing faults in the one fault vocabulary: stall, clock-step, link-jitter (SPEC.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hil.campaign import CampaignError, load_campaign, parse_campaign
from hil.faultspec import fault_budget, validate_run
from tests.conftest import ROOT, run_cli
from voter.faultmodel import (
    EXAMPLES,
    KINDS,
    ClockStep,
    FaultSpecError,
    LinkJitter,
    LinkSelector,
    Stall,
    Window,
    fault_from_table,
    parse_fault,
    to_command,
    to_table,
)


def test_stall_at_a_tick() -> None:
    """stall:2:60ms@150: board 2 frozen 60 ms at tick 150, a control command for the board."""
    f = parse_fault("stall:2:60ms@150", 4)
    assert Stall(2, 60.0, at_tick=150) == f
    assert {"cmd": "stall", "ms": 60.0, "at_tick": 150, "from_tick": 0} == to_command(f)


def test_stall_at_a_rate() -> None:
    """stall:2:60ms/5s: one 60 ms stall every 5 s on average, i.e. 0.2 per second."""
    f = parse_fault("stall:2:60ms/5s", 4)
    assert isinstance(f, Stall)
    assert (2, 60.0, 0.2, None) == (f.node, f.ms, f.rate_hz, f.at_tick)
    assert {"cmd": "stall", "ms": 60.0, "rate_hz": 0.2, "from_tick": 0} == to_command(f)
    windowed = fault_from_table(
        {"kind": "stall", "node": 1, "ms": 30, "rate_hz": 0.5, "from_tick": 10, "to_tick": 90}, 4
    )
    assert isinstance(windowed, Stall)
    assert {
        "cmd": "stall",
        "ms": 30.0,
        "rate_hz": 0.5,
        "from_tick": 10,
        "to_tick": 90,
    } == to_command(windowed)


def test_clock_step() -> None:
    """clock-step:2:-5ms@150: board 2's clock jumps 5 ms back at tick 150."""
    f = parse_fault("clock-step:2:-5ms@150", 4)
    assert isinstance(f, ClockStep)
    assert {"cmd": "clock-step", "ms": -5.0, "at_tick": 150, "from_tick": 0} == to_command(f)


def test_link_jitter_goes_to_the_fabric() -> None:
    """link-jitter:0-1:3ms: a link fault for the channel, its window in ticks."""
    f = parse_fault("link-jitter:0-1:3ms", 4)
    assert LinkJitter(LinkSelector((0, 1)), 3.0) == f
    assert {"kind": "link-jitter", "link": "0-1", "max_ms": 3.0, "from_tick": 0} == to_table(f)
    t = fault_from_table(
        {"kind": "link-jitter", "link": "2>3", "max_ms": 1.5, "from_tick": 50, "to_tick": 99}, 4
    )
    assert LinkJitter(LinkSelector((2, 3), one_way=True), 1.5, Window(50, 99)) == t


@pytest.mark.parametrize(
    "text",
    [
        *EXAMPLES,
        "stall:0:0.5ms@0",
        "stall:3:12.25ms/0.9hz",
        "stall:1:60ms/500ms",
        "clock-step:1:7.5ms@3",
        "link-jitter:*:0.25ms",
        "link-bitflip:0-1:0.000123456789",
    ],
)
def test_describe_round_trips(text: str) -> None:
    """parse(describe(f)) == f for every kind, including rates whose period is inexact."""
    f = parse_fault(text, 4)
    assert f == parse_fault(f.describe(), 4)


@pytest.mark.parametrize("rate", [0.2, 0.3, 0.45, 0.9, 1 / 7, 3.0, 12.5])
def test_stall_rate_from_a_table_round_trips(rate: float) -> None:
    """A campaign's rate_hz survives describe() exactly (the repro command must be the same)."""
    f = fault_from_table({"kind": "stall", "node": 0, "ms": 20, "rate_hz": rate}, 4)
    assert f == parse_fault(f.describe(), 4)


def test_tables_match_the_strings() -> None:
    """The campaign table and the --fault string of each timing fault are the same Fault."""
    pairs = [
        ({"kind": "stall", "node": 2, "ms": 60, "at_tick": 150}, "stall:2:60ms@150"),
        ({"kind": "stall", "node": 2, "ms": 60, "rate_hz": 0.2}, "stall:2:60ms/5s"),
        ({"kind": "clock-step", "node": 2, "ms": -5, "at_tick": 150}, "clock-step:2:-5ms@150"),
        ({"kind": "link-jitter", "link": "0-1", "max_ms": 3}, "link-jitter:0-1:3ms"),
    ]
    for table, text in pairs:
        assert parse_fault(text, 4) == fault_from_table(table, 4)


BAD_STRINGS = {
    "link-jitter:0-1:-3ms": "jitter must be >= 0",
    "link-jitter:0-1": "link-jitter takes LINK:MAXms",
    "stall:2:0ms@150": "a stall lasts > 0 ms",
    "stall:2:-10ms@150": "a stall lasts > 0 ms",
    "stall:2:60ms": "stall takes NODE:MSms@TICK or NODE:MSms/PERIOD",
    "stall:2:60ms/5s@150": "not both",
    "stall:2:60ms/0s": "must be a positive time",
    "stall:2:60ms/0hz": "rate_hz must be > 0",
    "stall:2:60ms/-1hz": "rate_hz must be > 0",
    "stall:2:nanms@1": "finite",
    "stall:9:60ms@1": "node 9 is not in 0..3",
    "clock-step:2:0ms@150": "a clock step of 0 ms does nothing",
    "clock-step:2:-5ms": "clock-step takes",
    "clock-step:2:-5ms@1.5": "not a whole number",
    "link-bitflip:0-1:2.0": "ber (bit error rate) must be in [0, 1]",
    "link-bitflip:0-1:-1": "ber (bit error rate) must be in [0, 1]",
    "link-drop:0-1:1.5": "p (drop probability) must be in [0, 1]",
    "link-drop:0-1:-0.1": "p (drop probability) must be in [0, 1]",
    "link-delay:0-1:-2ms": "delay must be >= 0 ms",
    "memory-bitflip:1:-3/s": "rate must be > 0",
    "crash:1@x": "not a whole number",
}


@pytest.mark.parametrize("text", sorted(BAD_STRINGS))
def test_bad_fault_string_says_why(text: str) -> None:
    """Every bad --fault is one FaultSpecError naming what is wrong."""
    with pytest.raises(FaultSpecError) as e:
        parse_fault(text, 4)
    assert BAD_STRINGS[text] in str(e.value) and "\n" not in str(e.value)


BAD_TABLES = [
    ({"kind": "stall", "node": 1, "ms": 60}, "stall needs at_tick or rate_hz"),
    ({"kind": "stall", "node": 1, "ms": 60, "at_tick": 5, "rate_hz": 1}, "not both"),
    ({"kind": "stall", "node": 1, "ms": 60, "rate_hz": 0}, "rate_hz must be > 0"),
    ({"kind": "stall", "node": 1, "ms": 0, "at_tick": 5}, "a stall lasts > 0 ms"),
    ({"kind": "stall", "node": 1, "at_tick": 5}, "stall fault needs ms"),
    ({"kind": "clock-step", "node": 1, "ms": 0, "at_tick": 5}, "a clock step of 0 ms"),
    ({"kind": "clock-step", "node": 1, "ms": 3}, "clock-step fault needs at_tick"),
    ({"kind": "link-jitter", "link": "0-1", "max_ms": -1}, "jitter must be >= 0"),
    ({"kind": "link-jitter", "link": "0-1"}, "link-jitter fault needs max_ms"),
    ({"kind": "link-bitflip", "link": "0-1", "ber": 2.0}, "must be in [0, 1]"),
    ({"kind": "link-drop", "link": "0-1", "p": -0.5}, "must be in [0, 1]"),
    ({"kind": "crash", "node": 1, "at_tick": 5, "from_tick": "soon"}, "from_tick must be a whole"),
    ({"kind": "sensor", "node": 1, "from_tick": 9, "to_tick": 3}, "before from_tick"),
]


@pytest.mark.parametrize(("table", "why"), BAD_TABLES)
def test_bad_fault_table_says_why(table: dict[str, object], why: str) -> None:
    """Every bad [[scenario.fault]] table is one FaultSpecError naming what is wrong."""
    with pytest.raises(FaultSpecError) as e:
        fault_from_table(table, 4)
    assert why in str(e.value)


def test_validate_run_refuses_faults_outside_the_run() -> None:
    """A fault past the last tick, or a stall longer than the run, would pass vacuously."""
    ok = [parse_fault(x, 4) for x in ("stall:2:60ms@99", "clock-step:1:5ms@0", "crash:0@50")]
    validate_run(ok, 100, 50.0)
    for text, why in [
        ("stall:2:60ms@100", "tick 100 is beyond the run (ticks 0..99)"),
        ("clock-step:1:-5ms@500", "tick 500 is beyond the run"),
        ("crash:1@100", "tick 100 is beyond the run"),
        ("stall:2:2500ms/10s", "a 2500 ms stall is longer than the run"),
        ("sensor:0:spike:150-160", "from_tick 150 is beyond the run"),
    ]:
        with pytest.raises(FaultSpecError) as e:
            validate_run([parse_fault(text, 4)], 100, 50.0)
        assert why in str(e.value), text


def test_timing_faults_count_their_board_against_the_bound() -> None:
    """A stall or clock step is a benign timing fault of its board; jitter on a loyal link
    counts like the other link faults, and on the traitor's own link it does not."""
    counted, reasons = fault_budget([parse_fault("stall:2:60ms@150", 4)])
    assert 1 == counted and "benign timing fault of board 2" in reasons[0]
    counted, _ = fault_budget([parse_fault("clock-step:1:-5ms@10", 4)])
    assert 1 == counted
    counted, reasons = fault_budget([parse_fault("link-jitter:0-1:3ms", 4)])
    assert 1 == counted and "between loyal boards" in reasons[0]
    faults = [parse_fault(x, 4) for x in ("traitor:3:lie", "link-jitter:3-1:3ms")]
    assert 1 == fault_budget(faults)[0]
    faults = [parse_fault(x, 4) for x in ("stall:2:60ms@150", "clock-step:2:-5ms@10")]
    assert 1 == fault_budget(faults)[0]  # one board, however many of its timing faults


def _campaign_text(fault: str) -> str:
    return (
        "[campaign]\nname = 'x'\nticks = 100\n"
        "[[scenario]]\nname = 'a'\nnodes = 4\n[[scenario.fault]]\n" + fault
    )


def test_campaign_loader_knows_the_timing_kinds(tmp_path: Path) -> None:
    """stall, clock-step and link-jitter tables load; ms and max_ms are known keys."""
    text = _campaign_text("kind = 'stall'\nnode = 1\nms = 40\nat_tick = 50\n")
    text += "[[scenario.fault]]\nkind = 'clock-step'\nnode = 2\nms = -3\nat_tick = 10\n"
    text += "[[scenario.fault]]\nkind = 'link-jitter'\nlink = '0-1'\nmax_ms = 2\n"
    c = parse_campaign(tomllib.loads(text), tmp_path / "c.toml")
    kinds = [f.kind for f in c.scenarios[0].faults]
    assert ["stall", "clock-step", "link-jitter"] == kinds


def test_campaign_loader_refuses_a_stall_past_the_run(tmp_path: Path) -> None:
    """A stall at tick 150 of a 100-tick scenario: a CampaignError naming the scenario."""
    text = _campaign_text("kind = 'stall'\nnode = 1\nms = 40\nat_tick = 150\n")
    with pytest.raises(CampaignError) as e:
        parse_campaign(tomllib.loads(text), tmp_path / "c.toml")
    assert "scenario 'a'" in str(e.value) and "beyond the run" in str(e.value)


def test_stall_campaign_loads_and_stays_inside_the_bound() -> None:
    """campaigns/stall.toml parses, uses every timing kind, expects safe, inside the bound."""
    from hil.campaign import scenario_toml

    c = load_campaign(ROOT / "campaigns" / "stall.toml")
    kinds = {f.kind for s in c.scenarios for f in s.faults}
    assert {"stall", "clock-step", "link-jitter"} <= kinds
    assert any(f.rate_hz > 0 for s in c.scenarios for f in s.faults if f.kind == "stall")
    assert any(f.at_tick is not None for s in c.scenarios for f in s.faults if f.kind == "stall")
    assert {"safe"} == {s.expect for s in c.scenarios}
    assert {"om", "sm"} == {s.algorithm for s in c.scenarios}
    for s in c.scenarios:
        assert 4 == s.nodes and 1 == s.m
        assert fault_budget(list(s.faults))[0] <= s.bound, s.name
        validate_run(s.faults, 300, s.tick_hz)  # still valid under `--ticks 300`
        again = parse_campaign(tomllib.loads(scenario_toml(s, c.name)), Path("r.toml"))
        assert s.faults == again.scenarios[0].faults  # a repro file gives the same faults


def test_every_kind_is_in_the_cli_help_and_docs() -> None:
    """firmware-sim's --help and docs/hil.md name every fault kind."""
    proc = run_cli("firmware-sim", "run", "--help")
    help_text = "".join(proc.stdout.split())  # argparse wraps lines, also at hyphens
    docs = (ROOT / "docs" / "hil.md").read_text()
    for kind in KINDS:
        assert kind in help_text, kind
        assert f"`{kind}`" in docs, kind


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("stall:2:60ms@500", "beyond the run"),
        ("stall:2:-1ms@5", "a stall lasts > 0 ms"),
        ("link-jitter:0-1:-3ms", "jitter must be >= 0"),
        ("link-bitflip:0-1:2", "must be in [0, 1]"),
    ],
)
def test_firmware_sim_refuses_bad_timing_faults_in_one_line(
    tmp_path: Path, fault: str, why: str
) -> None:
    """firmware-sim run with a bad or out-of-run fault: one line, exit 2, no run started."""
    out = tmp_path / "r"
    proc = run_cli(
        "firmware-sim", "run", "--ticks", "100", "--out", str(out), "--no-live", "--fault", fault
    )
    assert 2 == proc.returncode and why in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and 1 == len(proc.stderr.strip().splitlines())
    assert not (out / "run.json").exists()
