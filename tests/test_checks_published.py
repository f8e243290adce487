"""The checker judges what the boards published: withheld lines are decided but not published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hil.checks import NodeLog, check, read_run, timing_trouble
from voter.core.record import DecisionRecord, parse_line

A = [1.0, 2.0]
B = [1.0, 3.0]
C = [4.0, 5.0]
D = [7.0, 8.0]
READINGS = [A, B, C, D]
PERIOD_US = 20_000.0


def line(tick: int, node: int, **over: Any) -> DecisionRecord:
    """A good decision line of a 4-board cluster where every board read READINGS[node]."""
    vector = [list(r) for r in READINGS]
    out: dict[str, Any] = {
        "tick": tick,
        "node": node,
        "algorithm": "om",
        "local": list(READINGS[node]),
        "vector": vector,
        "output": list(A),
        "messages": 18,
        "late": 0,
        "dropped": 0,
        "decided_us": 9_000.0,
    }
    out.update(over)
    return DecisionRecord.parse(out)


def cluster(ticks: int = 10, nodes: int = 4) -> dict[int, NodeLog]:
    """Every board joined at tick 0 and published a good line every tick."""
    logs = {}
    for i in range(nodes):
        log = NodeLog(i, events=[{"event": "joined", "node": i, "tick": 0}])
        for t in range(ticks):
            log.decisions[t] = line(t, i)
        logs[i] = log
    return logs


def test_good_logs_hold_with_full_availability() -> None:
    """No fault, nothing withheld: every property holds, availability 1.0 on every board."""
    res = check(cluster(), [], window=(0, 9), period_us=PERIOD_US)
    assert res.holds
    doc = res.to_json()
    assert {"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0} == doc["availability"]
    assert {} == doc["withheld"] and 0 == doc["undetected"] and 40 == doc["published"]


def test_disagreement_in_a_withheld_line_is_not_a_violation() -> None:
    """Board 2 decided a different vector and withheld it: nothing wrong was published."""
    logs = cluster()
    bad_vector = [list(A), list(B), list(D), list(D)]
    logs[2].decisions[4] = line(4, 2, vector=bad_vector, output=[9.0, 9.0], withheld="minority")
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert res.holds, res.violations
    assert 40 == res.decisions and 39 == res.published
    assert {"2": {"minority": 1}} == res.to_json()["withheld"]


def test_published_disagreement_is_caught_even_when_a_withheld_line_agrees() -> None:
    """Boards 0 and 1 published different vectors; board 2 withheld: an agreement violation."""
    logs = cluster()
    other = [list(A), list(B), list(C), list(A)]  # board 3's entry is wrong on board 1
    logs[1].decisions[6] = line(6, 1, vector=other)
    logs[2].decisions[6] = line(6, 2, vector=other, withheld="late-send")
    logs[3].decisions[6] = line(6, 3, withheld="late-decide")
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert not res.agreement and not res.validity
    first = next(v for v in res.violations if v.prop == "agreement")
    assert (6, [0, 1]) == (first.tick, first.nodes)  # only the boards that published
    validity = next(v for v in res.violations if v.prop == "validity")
    assert [1] == validity.nodes  # board 2's line says the same, but it was never published


def test_a_violation_that_exists_only_among_published_lines() -> None:
    """Boards 0 and 2 withheld; the two published lines (1 and 3) disagree: caught, and the
    violation names exactly the boards whose outputs left them."""
    logs = cluster()
    other = [list(A), list(B), list(C), list(A)]
    logs[0].decisions[3] = line(3, 0, withheld="missing")
    logs[2].decisions[3] = line(3, 2, withheld="missing")
    logs[1].decisions[3] = line(3, 1, vector=other)
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert 1 == res.counts["agreement"]
    assert [1, 3] == next(v.nodes for v in res.violations if v.prop == "agreement")


def test_withheld_line_counts_as_decided_for_liveness_and_costs_availability() -> None:
    """Board 2 withheld 3 of 10 ticks: liveness holds, availability 0.7, counts by reason."""
    logs = cluster()
    for t, why in [(2, "stall"), (3, "stall"), (7, "clock")]:
        logs[2].decisions[t] = line(t, 2, withheld=why)
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert res.liveness and res.holds
    doc = res.to_json()
    assert 0.7 == doc["availability"]["2"] and 1.0 == doc["availability"]["0"]
    assert {"2": {"clock": 1, "stall": 2}} == doc["withheld"]
    assert {"0": 10, "1": 10, "2": 10, "3": 10} == doc["ticks_up"]


def test_missing_tick_is_still_a_liveness_violation() -> None:
    """A tick with no line at all while up (not even a withheld one) is lost liveness."""
    logs = cluster()
    del logs[1].decisions[5]
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert not res.liveness and [5] == [v.tick for v in res.violations]
    assert 0.9 == res.availability()[1]


def test_timeliness_only_over_published_lines_and_not_published_us() -> None:
    """A late decision that was withheld is the board doing its job; a published one is not.
    published_us beyond the period (the confirmed publication mode) is by design."""
    logs = cluster()
    logs[0].decisions[1] = line(1, 0, decided_us=25_000.0, withheld="late-decide")
    logs[1].decisions[1] = line(1, 1, published_us=31_000.0)
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert res.timeliness
    logs[3].decisions[8] = line(8, 3, decided_us=21_000.0)
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert not res.timeliness and [(8, [3])] == [(v.tick, v.nodes) for v in res.violations]


def test_integrity_only_over_published_lines() -> None:
    """An invented output in a withheld line never reached an actuator."""
    logs = cluster()
    logs[0].decisions[2] = line(2, 0, output=[99.0, 99.0], withheld="minority")
    assert check(logs, [], window=(0, 9)).integrity
    logs[0].decisions[2] = line(2, 0, output=[99.0, 99.0])
    assert not check(logs, [], window=(0, 9)).integrity


def test_validity_uses_a_withheld_boards_own_reading() -> None:
    """Board 2 withheld, yet its reading is its own: published entries must not hold another
    value. An empty entry (it sent late or not at all) is the omission it declared."""
    logs = cluster()
    for i in (0, 1, 3):
        vec = [list(A), list(B), None, list(D)]
        logs[i].decisions[4] = line(4, i, vector=vec)
    logs[2].decisions[4] = line(4, 2, withheld="late-send")
    assert check(logs, [], window=(0, 9)).validity
    for i in (0, 1, 3):
        vec = [list(A), list(B), [0.0, 0.0], list(D)]
        logs[i].decisions[4] = line(4, i, vector=vec)
    res = check(logs, [], window=(0, 9))
    assert not res.validity and res.agreement
    assert [0, 1, 3] == next(v.nodes for v in res.violations if v.prop == "validity")


def test_validity_still_demands_a_publishing_boards_value() -> None:
    """A board that published while its peers hold no value from it: validity fails."""
    logs = cluster()
    for i in (0, 1, 3):
        logs[i].decisions[4] = line(4, i, vector=[list(A), list(B), None, list(D)])
    assert not check(logs, [], window=(0, 9)).validity


def test_undetected_is_the_longest_run_of_published_disagreement() -> None:
    """Disagreement published at ticks 2, 3, 4 and 7: undetected for 3 ticks from tick 2."""
    logs = cluster()
    other = [list(A), list(B), list(C), list(A)]
    for t in (2, 3, 4, 7):
        logs[1].decisions[t] = line(t, 1, vector=other)
    logs[1].decisions[5] = line(5, 1, vector=other, withheld="minority")  # caught at 5
    doc = check(logs, [], window=(0, 9)).to_json()
    assert 3 == doc["undetected"] and 2 == doc["undetected_from_tick"]
    assert 4 == doc["violation_counts"]["agreement"]


def test_traitors_are_left_out_of_availability_and_withheld() -> None:
    """Board 3 is a traitor: its lines, withheld or not, are not judged or counted."""
    logs = cluster()
    logs[3].decisions[1] = line(1, 3, vector=[None, None, None, None], withheld="stall")
    doc = check(logs, [3], window=(0, 9)).to_json()
    assert doc["agreement"] and "3" not in doc["availability"] and {} == doc["withheld"]


def test_timing_trouble_names_late_withheld_and_skipped_ticks() -> None:
    """Late frames, withheld lines and skip events are found per tick (loyal boards only)."""
    logs = cluster()
    logs[0].decisions[1] = line(1, 0, late=2)
    logs[1].decisions[2] = line(2, 1, withheld="late-send")
    logs[2].events.append({"event": "skip", "node": 2, "tick": 5, "to": 7, "late_ms": 45.0})
    logs[3].decisions[8] = line(8, 3, late=1)
    trouble = timing_trouble(logs, faulty=[3])
    assert {
        0: ["late"],  # board 0's late frames at tick 1 may have been meant for tick 0
        1: ["late"],
        2: ["withheld:late-send"],
        5: ["skip"],
        6: ["skip"],
    } == trouble


def test_withheld_reason_reads_what_the_board_wrote() -> None:
    """Absent, null or false: published. Any string: that reason; an empty one is named."""
    assert DecisionRecord.parse({"tick": 1}).withheld is None
    assert DecisionRecord.parse({"tick": 1, "withheld": None}).withheld is None
    assert DecisionRecord.parse({"tick": 1, "withheld": False}).withheld is None
    assert "joining" == DecisionRecord.parse({"tick": 1, "withheld": "joining"}).withheld
    assert "unspecified" == DecisionRecord.parse({"tick": 1, "withheld": ""}).withheld


def test_a_decision_record_reads_back_what_it_wrote() -> None:
    """The log line is the record: to_json then parse gives the same record, and the
    line recogniser tells decision lines from event lines and junk."""
    rec = line(7, 2, reasons={"crc": 2}, cpu_us=310.0, withheld="stall", published_us=21_000.0)
    text = json.dumps(rec.to_json(), separators=(",", ":"))
    assert parse_line(text) == rec
    assert list(rec.to_json())[:3] == ["tick", "node", "algorithm"]
    assert parse_line('{"event":"joined","node":0,"tick":4}') is None
    assert parse_line('{"tick":"4"}') is None
    assert parse_line('{"tick":4') is None
    assert parse_line("garbage") is None


def test_read_run_keeps_withheld_lines_as_decisions(tmp_path: Path) -> None:
    """Files on disk: a withheld line is a decision of its tick, with its reason."""
    rows = [
        {"event": "joined", "node": 0, "tick": 0},
        line(0, 0).to_json(),
        line(1, 0, withheld="unconfirmed").to_json(),
        line(2, 0).to_json(),
    ]
    (tmp_path / "node0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    logs = read_run(tmp_path, 1)
    assert [0, 1, 2] == sorted(logs[0].decisions) and logs[0].published(1) is None
    res = check(logs, [], window=(0, 2))
    assert res.holds and 2 / 3 == res.availability()[0]


def _run_result(tmp_path: Path, logs: dict[int, NodeLog], faults: tuple[str, ...] = ()) -> Any:
    """A firmware-sim result for hand-written logs (no processes): what summary() reads."""
    from hil.outcome import RunOutcome
    from hil.scenario import Scenario
    from hil.verdict import finish
    from voter.faultmodel import parse_fault

    spec = Scenario(ticks=10, tick_hz=50.0, faults=tuple(parse_fault(f, 4) for f in faults))
    return finish(spec, RunOutcome("pty", logs), None)


def test_summary_shows_availability_and_withheld_reasons(tmp_path: Path) -> None:
    """The firmware-sim summary prints availability per loyal board and withheld counts."""
    from hil.verdict import summary

    logs = cluster()
    logs[2].decisions[4] = line(4, 2, withheld="late-send")
    logs[2].decisions[5] = line(5, 2, withheld="stall")
    result = _run_result(tmp_path, logs)
    text = summary(result)
    assert result.ok and result.run_json["diagnosis"] is None
    assert "board 2 80.0 %" in text and "board 0 100.0 %" in text
    assert "board 2: late-send 1, stall 1" in text
    assert {"decided": 10, "published": 8, "withheld": 2} == {
        k: result.run_json["boards"]["2"][k] for k in ("decided", "published", "withheld")
    }


def test_failed_run_is_diagnosed_as_timing_or_not(tmp_path: Path) -> None:
    """A disagreement on a tick with late frames is put down to timing (lower the rate); one
    on a clean tick is not, and the summary names it."""
    from hil.verdict import summary

    logs = cluster()
    other = [list(A), list(B), list(C), list(A)]
    logs[1].decisions[3] = line(3, 1, vector=other, late=2)
    result = _run_result(tmp_path, logs)
    assert not result.ok
    diagnosis = result.run_json["diagnosis"]
    assert "1 of 1 violated ticks had timing trouble (late frames at 1)" in diagnosis
    assert "lower --tick-hz or see docs/performance.md" in diagnosis
    assert "no timing trouble" not in diagnosis
    logs[1].decisions[7] = line(7, 1, vector=other)
    text = summary(_run_result(tmp_path, logs))
    assert "1 of 2 violated ticks had no timing trouble (first at tick 7)" in text
    assert "published disagreement stood for up to 1 consecutive tick(s) (from tick 3)" in text


def test_injected_stall_marks_the_ticks_it_freezes(tmp_path: Path) -> None:
    """stall:2:60ms@4 at 50 Hz covers ticks 4..7: a liveness gap there is timing trouble."""
    logs = cluster()
    for t in (5, 6):
        del logs[2].decisions[t]
    result = _run_result(tmp_path, logs, ("stall:2:60ms@4",))
    assert "2 of 2 violated ticks had timing trouble (stalls at 2)" in result.run_json["diagnosis"]


def test_timeline_paints_withheld_ticks_in_their_own_colour() -> None:
    """A withheld tick is its own state on the timeline, not "error"; binned, it outranks
    an ERROR entry and is outranked by a board that is down."""
    from hil.outcome import timeline
    from hil.report import COLORS, STATES, timeline_grid

    logs = cluster(ticks=6)
    logs[1].decisions[2] = line(2, 1, withheld="stall")
    logs[3].decisions[4] = line(4, 3, vector=[list(A), None, list(C), list(D)])
    rows = timeline(logs, 6)
    assert ["ok", "ok", "withheld", "ok", "ok", "ok"] == rows[1]
    assert "error" == rows[3][4]
    assert len(set(COLORS)) == len(STATES)
    grid, step = timeline_grid({0: ["withheld", "error"] * 2000, 1: ["withheld", "down"] * 2000})
    assert 2 == step and {STATES.index("withheld")} == set(grid[0])
    assert {STATES.index("down")} == set(grid[1])


def test_report_shows_availability_and_withheld_and_reads_old_reports(tmp_path: Path) -> None:
    """report.html has a boards table with availability and withheld reasons; a scenario
    from an older report.json (no such keys) still renders."""
    from hil.report import write_all

    base = {
        "expect": "safe",
        "outcome": "safe",
        "passed": True,
        "mode": "sim",
        "nodes": 4,
        "algorithm": "om",
        "m": 1,
        "ticks": 10,
        "tick_hz": 50.0,
        "seed": 1,
        "faults": ["stall:2:60ms@4"],
        "inside_bound": True,
        "fault_budget": {"counted": 1, "bound": 1, "reasons": []},
        "properties": {"agreement": True},
        "violations": [],
        "counters": {},
        "coverage": {},
        "command": "hil campaign run x.toml",
    }
    logs = cluster()
    logs[2].decisions[4] = line(4, 2, withheld="stall")
    logs[2].decisions[5] = line(5, 2, withheld="stall")
    doc = check(logs, [], window=(0, 9)).to_json()
    new = {**base, "name": "new", **{k: doc[k] for k in ("availability", "withheld")}}
    new["undetected"] = 0
    old = {**base, "name": "old"}
    report = {"campaign": "c", "seed": 1, "scenarios": [new, old]}
    write_all(tmp_path, report)
    page = (tmp_path / "report.html").read_text()
    assert "board 2</td><td>80.0 %</td><td>2</td><td>stall 2</td>" in page
    assert "<td>80.0 %</td><td>10</td>" in page  # the summary's lowest availability
    assert "<td>—</td><td>10</td>" in page  # the old scenario: no availability known
    assert json.loads((tmp_path / "report.json").read_text())["scenarios"][0]["withheld"] == {
        "2": {"stall": 2}
    }


def test_campaign_scenario_json_carries_availability(tmp_path: Path) -> None:
    """A simulated scenario's report row has availability, withheld and undetected."""
    from hil.campaign import load_campaign, run_scenario, scenario_to_json
    from tests.conftest import ROOT

    c = load_campaign(ROOT / "campaigns" / "smoke.toml")
    sc = c.scenarios[0]
    row = scenario_to_json(run_scenario(sc, "sim", tmp_path), c, tmp_path)
    loyal = row["availability"].keys()
    assert loyal and all(0.0 <= (row["availability"][b] or 0.0) <= 1.0 for b in loyal)
    assert isinstance(row["withheld"], dict) and 0 == row["undetected"]


def test_declared_skips_are_lost_availability_not_missing_decisions() -> None:
    """Board 2 skipped ticks 5-6 and said so; board 3 lost ticks 5-6 silently."""
    logs = cluster()
    for i in (2, 3):
        del logs[i].decisions[5], logs[i].decisions[6]
    logs[2].events.append({"event": "skip", "node": 2, "tick": 5, "to": 7, "late_ms": 45.0})
    res = check(logs, [], window=(0, 9), period_us=PERIOD_US)
    assert res.counts["liveness"] == 2
    assert {v.nodes[0] for v in res.violations if v.prop == "liveness"} == {3}
    assert res.to_json()["availability"]["2"] == 0.8


def test_outages_say_how_long_a_board_took_to_publish_again() -> None:
    """Board 1 withheld ticks 3-5 and skipped 8: two outages, (3, 3) and (8, 1)."""
    logs = cluster()
    for t in (3, 4, 5):
        logs[1].decisions[t].withheld = "stall"
    del logs[1].decisions[8]
    logs[1].events.append({"event": "skip", "node": 1, "tick": 8, "to": 9})
    doc = check(logs, [], window=(0, 9), period_us=PERIOD_US).to_json()
    assert doc["outages"]["1"] == [[3, 3], [8, 1]] and doc["outages"]["0"] == []
