"""Command-log scenarios in campaigns (docs/hil.md) and the log checker (hil.smr_checks)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hil.campaign import CampaignError, load_campaign, parse_campaign, run_scenario
from hil.checks import NodeLog
from hil.smr_checks import check_log
from tests.conftest import ROOT

SHIPPED = ROOT / "campaigns" / "command-log.toml"


def test_the_shipped_campaign_runs_1000_commands_per_scenario() -> None:
    c = load_campaign(SHIPPED)
    assert {s.replication for s in c.scenarios} == {"pbft", "crash"}
    assert all(s.commands == 1000 for s in c.scenarios)


@pytest.mark.parametrize("name", [s.name for s in load_campaign(SHIPPED).scenarios])
def test_each_shipped_scenario_gets_its_expected_outcome(name: str, tmp_path: Path) -> None:
    """The shipped scenarios with 120 commands: faulty primary safe, beyond the bound violated."""
    sc = next(s for s in load_campaign(SHIPPED).scenarios if s.name == name)
    sc = replace(sc, commands=120, ticks=min(sc.ticks, 2000))
    r = run_scenario(sc, "sim", tmp_path)
    assert r.outcome == sc.expect, r.check.violations[:3]
    log = r.extra["command_log"]
    if sc.expect == "safe":
        assert log["accepted"] == 120
    if name == "pbft-n4-equivocating-primary":
        assert log["view_changes"] >= 1


def test_a_replay_has_the_same_history_and_pty_mode_says_why_not(tmp_path: Path) -> None:
    """A replay is the same history; an isolated primary (link faults) is acted out in sim
    mode only."""
    shipped = {s.name: s for s in load_campaign(SHIPPED).scenarios}
    sc = replace(shipped["pbft-n4-isolated-primary"], commands=50)
    one, two = run_scenario(sc, "sim", tmp_path), run_scenario(sc, "sim", tmp_path)
    assert one.history_hash == two.history_hash and one.history_hash
    pty = run_scenario(sc, "pty", tmp_path)
    assert pty.outcome == "skipped" and "simulator only" in (pty.skipped or "")


def _campaign(**extra: Any) -> dict[str, Any]:
    scenario = {"name": "x", "nodes": 4, "replication": "pbft", "commands": 10, **extra}
    return {"campaign": {"name": "c"}, "scenario": [scenario]}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"replication": "raft"}, "replication must be 'pbft' or 'crash'"),
        ({"commands": 0}, "commands must be"),
        ({"replication": None}, "commands needs replication"),
        (
            {"fault": [{"kind": "memory-bitflip", "node": 1, "rate_hz": 1}]},
            "the command-log simulator takes",
        ),
        ({"fault": [{"kind": "traitor", "node": 1, "strategy": "replay"}]}, "knows the strategies"),
    ],
)
def test_a_bad_command_log_scenario_is_one_clear_line(extra: dict[str, Any], says: str) -> None:
    data = _campaign(**extra)
    if extra.get("replication", "") is None:
        del data["scenario"][0]["replication"]
    with pytest.raises(CampaignError, match=says):
        parse_campaign(data, Path("c.toml"))


def _commit(
    node: int, seq: int, req: int | None, tick: int = 1, result: str = "r"
) -> dict[str, Any]:
    cmd = None if req is None else {"client": 3, "req": req, "op": f"cmd-{req}"}  # client = N
    return {
        "event": "commit",
        "node": node,
        "tick": tick,
        "seq": seq,
        "view": 0,
        "command": cmd,
        "result": result,
    }


def _logs(*replicas: list[dict[str, Any]], client: list[dict[str, Any]]) -> dict[int, NodeLog]:
    logs = {i: NodeLog(i, events=lines) for i, lines in enumerate(replicas)}
    logs[len(replicas)] = NodeLog(len(replicas), events=client)
    return logs


def test_the_checker_finds_each_property_broken() -> None:
    """Agreement, integrity, validity (invented command, wrong reply), liveness; traitors out."""
    requests = [{"event": "request", "node": 3, "tick": 0, "req": k} for k in (0, 1)]
    replies = [
        {"event": "reply", "node": 3, "tick": 2, "req": k, "seq": k + 1, "result": "r"}
        for k in (0, 1)
    ]
    good = [_commit(0, 1, 0), _commit(0, 2, 1)]
    swapped = [_commit(1, 1, 1), _commit(1, 2, 0)]

    def judge(second: list[dict[str, Any]], client: list[dict[str, Any]], faulty: list[int]) -> Any:
        return check_log(_logs(good, second, list(good), client=client), 3, faulty)

    assert judge(list(good), [*requests, *replies], []).holds
    bad = judge(swapped, [*requests, replies[0]], [])
    assert not bad.agreement and not bad.liveness  # and request 1 was never accepted
    assert bad.violations[0].nodes == [0, 1, 2]
    assert not judge([_commit(1, 2, 1)], [*requests, *replies], []).integrity
    assert not judge([_commit(1, 1, 0), _commit(1, 2, 7)], [*requests, *replies], []).validity
    wrong = {**replies[1], "result": "x"}
    assert not judge(list(good), [*requests, replies[0], wrong], []).validity
    assert judge(swapped, [*requests, *replies], [1]).holds  # a traitor's log is only its word
