"""`hil generals`: the seed's worked examples through the real command, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.generals import ScenarioError, parse_scenario, run_generals
from tests.conftest import EXAMPLES, run_cli

GENERALS = EXAMPLES / "generals"


def generals_json(path: Path) -> dict[str, object]:
    proc = run_cli("hil", "generals", str(path), "--json")
    assert 0 == proc.returncode, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_lsp_lieutenant_traitor_case() -> None:
    """OM(1), N=4, lieutenant 3 lies on relay: lieutenants 1 and 2 both decide attack."""
    out = generals_json(GENERALS / "lsp-fig3-lieutenant-traitor.toml")
    assert {"1": "attack", "2": "attack"} == out["decisions"]
    assert (True, True, 9, 2) == (out["agreement"], out["validity"], out["messages"], out["rounds"])


def test_lsp_commander_traitor_case() -> None:
    """OM(1), N=4, commander sends attack/retreat/attack: all lieutenants decide attack."""
    out = generals_json(GENERALS / "lsp-fig4-commander-traitor.toml")
    assert {"1": "attack", "2": "attack", "3": "attack"} == out["decisions"]
    assert out["agreement"] is True and out["validity"] is None


def test_spec_example_two_traitors() -> None:
    """SPEC.md's scenario (commander and lieutenant 3 traitors): both loyal decide retreat."""
    out = generals_json(GENERALS / "spec-two-traitors.toml")
    assert {"1": "retreat", "2": "retreat"} == out["decisions"]
    assert [1, 2] == out["loyal"]


def test_three_generals_oral_breaks_validity() -> None:
    """N=3, OM(1): one lying lieutenant makes the other disobey a loyal commander."""
    out = generals_json(GENERALS / "n3-om-impossible.toml")
    assert {"2": "retreat"} == out["decisions"]
    assert out["validity"] is False


def test_three_generals_signed_agree_on_default() -> None:
    """N=3, SM(1): the traitor commander's two signed orders leave both lieutenants on retreat."""
    out = generals_json(GENERALS / "n3-sm-traitor-commander.toml")
    assert {"1": "retreat", "2": "retreat"} == out["decisions"]
    assert out["agreement"] is True


def test_human_trace_names_rounds_votes_and_decisions() -> None:
    """The human output shows each round's messages, each lieutenant's decision, the verdict."""
    proc = run_cli("hil", "generals", str(GENERALS / "lsp-fig3-lieutenant-traitor.toml"))
    assert 0 == proc.returncode
    assert "round 2:" in proc.stdout
    assert "traitor 3 -> 1: 'retreat' (path 0→3)" in proc.stdout
    assert "lieutenant 1 decides 'attack'" in proc.stdout
    assert "agreement: True" in proc.stdout


def test_sm_relay_lie_is_dropped_for_bad_signature() -> None:
    """SM: a traitor that changes a relayed value has no valid chain; loyal nodes drop it."""
    s = parse_scenario(
        {
            "nodes": 4,
            "m": 1,
            "algorithm": "sm",
            "value": "attack",
            "traitor": [{"node": 3, "relays": "retreat"}],
        }
    )
    res = run_generals(s)
    assert {1: "attack", 2: "attack"} == res.decisions
    assert {"bad signature"} == {d.rejected for d in res.trace if d.src == 3}


def test_silent_send_uses_default() -> None:
    """`sends = {1 = "silent"}`: lieutenant 1 hears nothing from the commander, uses the default."""
    s = parse_scenario(
        {
            "nodes": 4,
            "m": 1,
            "algorithm": "om",
            "value": "attack",
            "traitor": [{"node": 0, "sends": {"1": "silent"}}],
        }
    )
    res = run_generals(s)
    assert not any(d.dst == 1 and d.round == 1 for d in res.trace)
    assert {1: "attack", 2: "attack", 3: "attack"} == res.decisions


BAD = {
    "not toml": ("nodes = = 4\n", "not valid TOML"),
    "missing value": ("nodes = 4\n", "missing key: value"),
    "unknown node": ('nodes = 4\nvalue = "a"\n[[traitor]]\nnode = 9\n', "node 9 is not in 0..3"),
    "typo": ('nodes = 4\nvalue = "a"\nalgorithim = "om"\n', "unknown key(s): algorithim"),
    "bad algorithm": ('nodes = 4\nvalue = "a"\nalgorithm = "pbft"\n', "algorithm must be"),
    "too many nodes": ('nodes = 99\nvalue = "a"\n', "nodes must be 2..16"),
    "bad strategy": (
        'nodes = 4\nvalue = "a"\n[[traitor]]\nnode = 1\nstrategy = "x"\n',
        "strategy must be one of",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    """A bad scenario file: one clear line on stderr, exit code 2, no traceback."""
    text, expected = BAD[case]
    path = tmp_path / "s.toml"
    path.write_text(text)
    proc = run_cli("hil", "generals", str(path))
    assert 2 == proc.returncode
    assert "Traceback" not in proc.stderr
    assert 1 == len(proc.stderr.strip().splitlines())
    assert expected in proc.stderr


def test_missing_scenario_file(tmp_path: Path) -> None:
    """A scenario path that does not exist is one line, exit 2."""
    proc = run_cli("hil", "generals", str(tmp_path / "nope.toml"))
    assert 2 == proc.returncode and "cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_scenario_error_type() -> None:
    """parse_scenario raises ScenarioError (not KeyError) for a missing key."""
    with pytest.raises(ScenarioError):
        parse_scenario({"value": "attack"})
