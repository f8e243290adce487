"""Sensor validity end to end: a frozen sensor is flagged by its own board and masked by the vote.

The simulator runs the shipped campaign (campaigns/sensors.toml); the pty test runs real
voterd processes through `firmware-sim run --fault sensor:... --validity ...` (the fault goes
over the HIL control port, the thresholds through the generated cluster.toml).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from hil.campaign import CampaignError, load_campaign, parse_campaign
from hil.checks import NodeLog
from hil.outcome import counters, invalid_counts, judge
from hil.scenario import Scenario
from hil.sim import SimRunner
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SENSORS = load_campaign(ROOT / "campaigns" / "sensors.toml")
K = 5  # stale_samples in the campaign: the K-th equal sample is flagged
FROZEN = range(50, 251)  # the campaign's fault window
#: the sensor repeats its last good sample (tick 49), which is the first of the K equal ones
FLAGGED = FROZEN[K - 2 :]
NAMES = ("altitude_m", "airspeed_mps", "pitch_deg")


def scenario(name: str) -> Scenario:
    return next(s for s in SENSORS.scenarios if s.name == name)


def outside_healthy(
    logs: Mapping[int, NodeLog], sick: Iterable[int], ticks: Iterable[int], window: range = FROZEN
) -> list[int]:
    """Ticks where a published output channel lies outside the healthy boards' own readings
    (the `sick` boards' sensors are faulty inside `window`, healthy outside it)."""
    bad = []
    for t in ticks:
        healthy = [j for j in logs if t not in window or j not in sick]
        locals_ = [logs[j].decisions[t].local for j in healthy if t in logs[j].decisions]
        for j in healthy:
            line = logs[j].decisions.get(t)
            if line is None or not line.published:
                continue
            for ch, out in enumerate(line.output):
                seen = [r[ch] for r in locals_ if r is not None and r[ch] is not None]
                if out is not None and seen and not min(seen) <= out <= max(seen):
                    bad.append(t)
    return sorted(set(bad))


def test_two_frozen_sensors_are_flagged_and_the_output_stays_on_healthy_readings() -> None:
    """Two loyal boards with frozen sensors: each voids its own channels after K equal
    samples, the vote runs on the two healthy boards, and the checker holds."""
    sc = scenario("two-frozen-sensors-flagged")
    out = SimRunner().run(sc)
    assert judge(sc, out.logs).safe
    for t in FLAGGED:
        for j in (0, 1):
            assert {"altitude_m", "airspeed_mps", "pitch_deg"} == set(
                out.logs[j].decisions[t].invalid or {}
            ), f"board {j} tick {t}"
        for i in (2, 3):
            vector = out.logs[i].decisions[t].vector
            assert [None, None, None] == vector[0] == vector[1]
    # only the ticks before the checks can call the value stuck reach the output
    assert set(outside_healthy(out.logs, (0, 1), range(sc.ticks))) <= set(FROZEN[: K - 2])
    assert counters(out).sensor_invalid == 2 * 3 * len(FLAGGED)
    assert {"0", "1"} == set(invalid_counts(out.logs))


def test_without_the_checks_the_frozen_values_are_voted_on() -> None:
    """The mechanism switched off: the frozen readings enter the vector as valid values and
    the mid-value select follows them, off every healthy board's reading."""
    sc = dataclasses.replace(scenario("two-frozen-sensors-flagged"), validity=())
    out = SimRunner().run(sc)
    assert judge(sc, out.logs).safe, "agreement and validity hold: the boards are loyal"
    frozen0 = out.logs[0].decisions[FROZEN[0]].local
    for t in FROZEN:
        assert frozen0 == out.logs[2].decisions[t].vector[0], "a stuck value counted as valid"
    dragged = outside_healthy(out.logs, (0, 1), FROZEN)
    assert len(dragged) > len(FROZEN) // 2, dragged[:10]
    assert 0 == counters(out).sensor_invalid


def test_one_frozen_sensor_unchecked_reaches_the_vector_as_a_valid_reading() -> None:
    """The shipped twin scenarios: checked, board 0's entry is ERROR; unchecked, it is the
    frozen reading (the vote still masks one, but the cluster counts it as a good sensor)."""
    checked = SimRunner().run(scenario("frozen-sensor-flagged"))
    unchecked = SimRunner().run(scenario("frozen-sensor-unchecked"))
    t = FROZEN[-1]
    assert [None, None, None] == checked.logs[1].decisions[t].vector[0]
    assert unchecked.logs[0].decisions[FROZEN[0]].local == unchecked.logs[1].decisions[t].vector[0]
    assert {"0": {ch: {"stale": len(FLAGGED)} for ch in NAMES}} == invalid_counts(checked.logs)


def test_every_sensor_fault_mode_leaves_the_cluster_safe() -> None:
    """frozen, step, noise, dropout and drift on one board, with every check on: safe, and
    each detectable mode is caught by the check meant for it."""
    sc = scenario("every-sensor-fault-on-board-0")
    out = SimRunner().run(sc)
    assert judge(sc, out.logs).safe
    reasons = invalid_counts(out.logs)["0"]
    assert {"stale", "rate", "timeout", "density"} <= set(reasons["altitude_m"])
    assert not outside_healthy(out.logs, (0,), range(sc.ticks), range(20, 291))
    assert {"1", "2", "3"}.isdisjoint(invalid_counts(out.logs)), "no false alarm elsewhere"


def test_pty_frozen_sensor_flagged_by_real_boards(tmp_path: Path) -> None:
    """firmware-sim: real voterd, the fault over the control port, [validity] in cluster.toml."""
    out = tmp_path / "run"
    proc = run_cli(
        "firmware-sim",
        "run",
        "--tick-hz",
        "25",
        "--ticks",
        "40",
        "--out",
        str(out),
        "--no-live",
        "--fault",
        "sensor:0:frozen:10-39",
        "--validity",
        "{stale_samples = 3}",
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert "[validity.altitude_m]" in (out / "cluster.toml").read_text()
    lines = {
        i: [json.loads(x) for x in (out / f"node{i}.jsonl").read_text().splitlines()]
        for i in range(4)
    }
    flagged = [x["tick"] for x in lines[0] if "vector" in x and x.get("invalid")]
    assert flagged and min(flagged) >= 11, flagged  # tick 9 frozen: its 3rd sample is tick 11
    assert set(range(15, 39)) <= set(flagged)
    for i in (1, 2, 3):
        for x in lines[i]:
            if "vector" in x and 15 <= x["tick"] < 39 and x["vector"][0] is not None:
                assert [None, None, None] == x["vector"][0]
    stop = next(x for x in lines[0] if x.get("event") == "stop")
    assert stop["invalid"]["altitude_m"]["stale"] >= 24
    run = json.loads((out / "run.json").read_text())
    assert run["counters"]["sensor_invalid"] >= 3 * 24


def test_bad_validity_option_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "firmware-sim", "run", "--ticks", "5", "--out", str(tmp_path / "r"),
        "--validity", "{stale_samples = 1}",
    )  # fmt: skip
    assert 2 == proc.returncode and "Traceback" not in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())
    assert "validity.stale_samples: must be in 2..100000, got 1" in proc.stderr


def test_status_line_names_the_voided_channels() -> None:
    """STATUS= (the driver's status text) says which channels were voided and why."""
    from hil.sim import Simulator, sim_config

    sim = Simulator(sim_config(scenario("frozen-sensor-flagged")))
    sim.run()
    status = sim.boards[0].driver.status()
    assert f"invalid airspeed_mps stale {len(FLAGGED)}, altitude_m stale" in status
    assert "invalid" not in sim.boards[1].driver.status()


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("validity = { stale_samples = 0 }", "validity.stale_samples: must be in 2..100000"),
        ("validity = { speed = { min = 0.0 } }", "validity.speed: not a channel"),
        ("validity = 3", "validity: must be a table"),
    ],
)
def test_bad_validity_in_a_campaign_is_one_line(tmp_path: Path, extra: str, why: str) -> None:
    text = f'[campaign]\nname = "x"\n[[scenario]]\nname = "s"\n{extra}\n'
    with pytest.raises(CampaignError) as e:
        parse_campaign(tomllib.loads(text), tmp_path / "c.toml")
    assert why in str(e.value) and "scenario 's'" in str(e.value) and "\n" not in str(e.value)


def test_a_sensor_fault_on_a_channel_the_run_lacks_is_refused(tmp_path: Path) -> None:
    text = (
        '[campaign]\nname = "x"\n[[scenario]]\nname = "s"\n'
        '[[scenario.fault]]\nkind = "sensor"\nnode = 0\nmode = "step"\nchannel = 3\n'
    )
    with pytest.raises(CampaignError, match=r"channel 3 is not in 0\.\.2"):
        parse_campaign(tomllib.loads(text), tmp_path / "c.toml")


def test_a_reproduction_file_keeps_the_validity_checks(tmp_path: Path) -> None:
    """A shrunk violation's one-scenario campaign must run with the same checks."""
    from hil.campaign import scenario_toml

    sc = scenario("every-sensor-fault-on-board-0")
    again = parse_campaign(tomllib.loads(scenario_toml(sc, "sensors")), tmp_path / "r.toml")
    assert sc == again.scenarios[0]


def test_the_campaign_report_counts_voids_by_board_channel_and_reason(tmp_path: Path) -> None:
    """report.json: `sensor_invalid` in the counters, the breakdown under `invalid`."""
    proc = run_cli(
        "hil", "campaign", "run", str(ROOT / "campaigns" / "sensors.toml"),
        "--only", "frozen-sensor-flagged", "--out", str(tmp_path / "o"), "--no-progress",
    )  # fmt: skip
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    (s,) = json.loads((tmp_path / "o" / "report.json").read_text())["scenarios"]
    assert 3 * len(FLAGGED) == s["counters"]["sensor_invalid"]
    assert {"0": {ch: {"stale": len(FLAGGED)} for ch in NAMES}} == s["invalid"]
