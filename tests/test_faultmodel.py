"""The one fault model: every kind in its three written forms, read back to the same object."""

from __future__ import annotations

import json
import random

import pytest

from voter.core.adversary import STRATEGIES, Strategy
from voter.core.values import ReadingDomain
from voter.faultmodel import (
    EXAMPLES,
    KINDS,
    TYPES,
    Crash,
    FaultSpecError,
    LinkSelector,
    SensorFault,
    SensorMode,
    Traitor,
    Window,
    fault_from_command,
    fault_from_table,
    is_board,
    is_link,
    parse_fault,
    table_keys,
    to_command,
    to_table,
)
from voter.faults import FaultCommandError, FaultState

WINDOWED = [
    "traitor:3:late",
    "link-bitflip:0>1:0.001",
    "link-drop:*:0.5",
    "memory-bitflip:2:3/s:2",
    "stall:2:60ms/5s",
    "sensor:1:stuck:100-200",
]


def test_every_kind_has_an_example_and_one_class() -> None:
    assert {t.kind for t in TYPES} == set(KINDS)
    assert {e.split(":")[0] for e in EXAMPLES} == set(KINDS)


@pytest.mark.parametrize("text", [*EXAMPLES, *WINDOWED])
def test_text_table_and_json_read_back_to_the_same_fault(text: str) -> None:
    """--fault text, campaign table, and the table through JSON (the fabric's spec) agree."""
    f = parse_fault(text, 4)
    assert f == parse_fault(f.describe(), 4)
    table = to_table(f)
    assert f == fault_from_table(table, 4)
    assert f == fault_from_table(json.loads(json.dumps(table)), 4)
    assert set(table) <= table_keys(f.kind)


@pytest.mark.parametrize("text", [*EXAMPLES, *WINDOWED])
def test_a_board_reads_its_command_as_the_rig_wrote_it(text: str) -> None:
    """to_command / fault_from_command: the control channel's one serialisation."""
    f = parse_fault(text, 4)
    if is_link(f):
        with pytest.raises(FaultSpecError, match="link fabric"):
            fault_from_command({"cmd": f.kind, **to_table(f)}, 0)
        return
    assert is_board(f) or isinstance(f, Crash)
    cmd = json.loads(json.dumps(to_command(f)))
    assert "node" not in cmd
    assert f == fault_from_command(cmd, f.node)


def test_the_window_travels_in_every_form() -> None:
    f = SensorFault(1, SensorMode.DROPOUT, Window(10, 20))
    assert {"from_tick": 10, "to_tick": 20}.items() <= to_command(f).items()
    assert f == fault_from_table(to_table(f), 4)


def test_a_traitor_value_survives_the_command() -> None:
    f = fault_from_table({"kind": "traitor", "node": 2, "strategy": "lie", "value": [1.0, 2.0]}, 4)
    assert Traitor(2, Strategy.LIE, (1.0, 2.0)) == f
    assert f == fault_from_command(json.loads(json.dumps(to_command(f))), 2)


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ({"kind": "traitor", "node": 1, "ber": 0.1}, "traitor fault: unknown key(s): ber"),
        ({"kind": "link-drop", "node": 1, "p": 0.1}, "unknown key(s): node"),
        ({"kind": "traitor", "node": 1, "strategy": "sulk"}, "strategy must be one of silent"),
        ({"kind": "sensor", "node": 1, "mode": "melt"}, "mode must be one of frozen, step, drift"),
        ({"kind": "memory-bitflip", "node": 1, "rate_hz": 1, "bits": 3}, "bits must be 1 or 2"),
        ({"kind": "crash", "node": 9, "at_tick": 3}, "node 9 is not in 0..3"),
        ({"kind": "link-delay", "link": "1-1", "delay_ms": 3}, "joins a board to itself"),
        ({"kind": "crash", "node": True, "at_tick": 3}, "is not a node id"),
        ({"kind": "stall", "node": 1, "ms": "60", "at_tick": 3}, "ms must be a number"),
        ({"kind": "meteor", "node": 1}, "fault kind must be one of traitor"),
    ],
)
def test_bad_tables_say_why_in_one_line(table: dict[str, object], why: str) -> None:
    with pytest.raises(FaultSpecError) as e:
        fault_from_table(table, 4)
    assert why in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", EXAMPLES)
def test_any_value_of_the_wrong_shape_is_one_line(text: str) -> None:
    """TOML can put a list or a table where a word or number belongs: still a FaultSpecError
    (a list as `kind` used to escape as TypeError: unhashable type)."""
    table = to_table(parse_fault(text, 4))
    for key in [*table, "from_tick", "to_tick"]:
        for value in ([1], {"a": 1}, [], {}, True, -1, "", 10**30):
            bad = {**table, key: value}
            try:
                fault_from_table(bad, 4)
            except FaultSpecError as e:
                assert "\n" not in str(e)


def test_link_selector_directions() -> None:
    both, one, every = (LinkSelector.parse(t, 4) for t in ("0-1", "0>1", "*"))
    assert both.carries(0, 1) and both.carries(1, 0) and not both.carries(0, 2)
    assert one.carries(0, 1) and not one.carries(1, 0)
    assert all(every.carries(a, b) for a in range(4) for b in range(4) if a != b)
    assert ["0-1", "0>1", "*"] == [str(s) for s in (both, one, every)]


def test_the_strategy_list_is_one_enum() -> None:
    """The core plays the in-memory strategies; the frame-level ones act on bytes."""
    assert set(STRATEGIES) == {s.value for s in Strategy if not s.frame_level}
    assert {"late", "garbage", "replay", "mutate"} == {s.value for s in Strategy if s.frame_level}


def state(node: int = 2) -> FaultState:
    return FaultState(ReadingDomain(3), random.Random(1), 0.02, node=node)


@pytest.mark.parametrize("text", [e for e in [*EXAMPLES, *WINDOWED] if "link" not in e])
def test_a_command_and_a_typed_fault_give_the_board_the_same_state(text: str) -> None:
    """The daemon (`apply`, bytes) and the simulator (`add`, typed) load the same fault state."""
    f = parse_fault(text, 4)
    if not is_board(f):
        return
    via_bytes, typed = state(f.node), state(f.node)
    via_bytes.apply(json.dumps(to_command(f)).encode())
    typed.add(f)
    assert (via_bytes.traitors, via_bytes.memory, via_bytes.drift_ppm) == (
        typed.traitors,
        typed.memory,
        typed.drift_ppm,
    )
    assert (via_bytes.sensor, via_bytes.stalls, via_bytes.clock_steps) == (
        typed.sensor,
        typed.stalls,
        typed.clock_steps,
    )


@pytest.mark.parametrize(
    ("cmd", "why"),
    [
        ({"cmd": "traitor", "strategy": "sulk"}, "strategy must be one of"),
        ({"cmd": "link-drop", "link": "0-1", "p": 0.5}, "done by the link fabric"),
        ({"cmd": "stall", "ms": 120_000, "at_tick": 3}, "a stall lasts > 0 ms and <= 60000 ms"),
        ({"cmd": "traitor", "strategy": "lie", "value": [1.0]}, "value must be a reading"),
        ({"cmd": "crash", "at_tick": 3}, "carried out on the process"),
        ({"cmd": "clock-drift", "ppm": -1e6}, r"ppm must be in \(-1000000, 1000000\)"),
        ({"cmd": "memory-bitflip", "rate_hz": 1e12}, "rate must be > 0 and <= 10000"),
        ({"cmd": "stall", "ms": 5, "rate_hz": 5000}, "rate_hz must be > 0 and <= 1000"),
        ({"cmd": "clock-step", "ms": -61_000, "at_tick": 3}, "at most 60000 ms either way"),
        ({"cmd": "traitor", "strategy": "late", "delay_ms": -1}, "delay_ms must be >= 0"),
    ],
)
def test_a_bad_command_is_one_counted_error(cmd: dict[str, object], why: str) -> None:
    with pytest.raises(FaultCommandError, match=why):
        state().apply(json.dumps(cmd).encode())


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("sensor:0:frozen:amount=3", "frozen takes no amount"),
        ("sensor:0:step:channel=40", "channel must be in 0..31"),
        ("sensor:0:step:size=3", "'size=3' is not amount=X, channel=C or FROM-TO"),
        ("sensor:0:noise:amount=-1", "standard deviation"),
        ("sensor:0:step:amount=inf", "amount must be a finite number"),
        ("sensor:0:melt", "mode must be one of frozen"),
    ],
)
def test_bad_sensor_text_says_why_in_one_line(text: str, why: str) -> None:
    with pytest.raises(FaultSpecError) as e:
        parse_fault(text, 4)
    assert why in str(e.value) and "\n" not in str(e.value)
