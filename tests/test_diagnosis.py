"""voter.core.diagnosis: evidence, accusations, isolation, probation; its config and checker."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hil.campaign import CampaignError, parse_campaign, scenario_toml
from hil.isolation import IsolationLedger
from tests.test_config import cluster_text
from voter.config import ConfigFileError, dump_cluster, loads_cluster
from voter.core.adversary import ChainForge, RoundNode, Scripted, Traitor
from voter.core.crypto import KeyRing, signed_bytes
from voter.core.diagnosis import (
    Diagnosis,
    DiagnosisConfig,
    Evidence,
    check_evidence,
    evidence_from_event,
    find_evidence,
    split_value,
    with_accusations,
)
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm, Entry
from voter.core.rounds import run_tick
from voter.core.sm import SMNode
from voter.core.values import ReadingDomain
from voter.simkeys import cluster_keys

CLUSTER = "diag"


def _signed_pair(tick: int = 5, peer: int = 3) -> tuple[Evidence, KeyRing]:
    ring, _ = cluster_keys(4, [], CLUSTER)
    values = ((1.0, 0.0), (2.0, 0.0))
    sigs = tuple(ring.sign(peer, signed_bytes(CLUSTER, tick, (peer,), v)) for v in values)
    return Evidence(tick, peer, values, (sigs[0], sigs[1])), ring


def test_evidence_is_checked_by_anyone_with_the_public_keys() -> None:
    """A pair of the commander's signatures verifies; a changed value, tick or signer does not."""
    ev, ring = _signed_pair()
    assert check_evidence(ring, CLUSTER, ev)
    assert not check_evidence(ring, CLUSTER, Evidence(6, 3, ev.values, ev.sigs))
    assert not check_evidence(ring, CLUSTER, Evidence(5, 2, ev.values, ev.sigs))
    changed = Evidence(5, 3, ((1.0, 0.0), (2.5, 0.0)), ev.sigs)
    assert not check_evidence(ring, CLUSTER, changed)
    same = Evidence(5, 3, (ev.values[0], ev.values[0]), (ev.sigs[0], ev.sigs[0]))
    assert not check_evidence(ring, CLUSTER, same)


def test_evidence_event_round_trips_and_reverifies() -> None:
    """The `evidence` log line carries both values and signatures (hex): read back, it verifies."""
    ev, ring = _signed_pair()
    line = ev.event(node=0, channels=1)
    assert {"event": "evidence", "node": 0, "tick": 5, "peer": 3}.items() <= line.items()
    back = evidence_from_event(line)
    assert back == ev
    assert check_evidence(ring, CLUSTER, back)
    assert evidence_from_event({"event": "evidence", "values": [1], "sigs": ["zz"]}) is None


def test_sm_node_keeps_the_commanders_signatures() -> None:
    """Two validly signed values from commander 3 in one tick: SMNode gives both, find_evidence
    pairs them."""
    params = ic_params(4, 1, Algorithm.SM, CLUSTER)
    ring, _ = cluster_keys(4, [0, 1, 2, 3], CLUSTER)
    node = SMNode(params, 0, ReadingDomain(2), ring, (0.0, 0.0), tick=7)
    node.outgoing(1)
    for src, value in ((3, (1.0, 1.0)),):
        sig = ring.sign(3, signed_bytes(CLUSTER, 7, (3,), value))
        assert node.receive(1, src, [Entry((3,), value, (sig,))]) == []
    other = (9.0, 9.0)
    relay = (
        ring.sign(3, signed_bytes(CLUSTER, 7, (3,), other)),
        ring.sign(1, signed_bytes(CLUSTER, 7, (3, 1), other)),
    )
    node.outgoing(2)
    assert node.receive(2, 1, [Entry((3, 1), other, relay)]) == []
    ev = find_evidence(7, 3, node.signed_values(3))
    assert ev is not None and ev.values == ((1.0, 1.0), other)
    assert check_evidence(ring, CLUSTER, ev)


def test_isolated_relayer_cannot_lend_its_signature() -> None:
    """SM(1), N=4, traitors 2 and 3: 3 co-signs a second value of 2 for board 1 only. Board 0
    holds {v}, board 1 {v, w}: they disagree. With 3 isolated, board 1 refuses the relay."""
    params = ic_params(4, 1, Algorithm.SM, CLUSTER)
    ring, _ = cluster_keys(4, [0, 1, 2, 3], CLUSTER)
    v, w = (1.0,), (5.0,)

    def run(excluded: frozenset[int]) -> tuple[object, object]:
        nodes = {i: SMNode(params, i, ReadingDomain(1), ring, (0.0,), tick=1) for i in (0, 1)}
        for n in nodes.values():
            n.excluded_relayers = excluded
            n.outgoing(1)
        sig_v = ring.sign(2, signed_bytes(CLUSTER, 1, (2,), v))
        nodes[0].receive(1, 2, [Entry((2,), v, (sig_v,))])  # 2 shows v to board 0 only
        relays = nodes[0].outgoing(2)
        nodes[1].outgoing(2)
        nodes[1].receive(2, 0, relays[1])
        forged = (
            ring.sign(2, signed_bytes(CLUSTER, 1, (2,), w)),
            ring.sign(3, signed_bytes(CLUSTER, 1, (2, 3), w)),
        )
        rejected = nodes[1].receive(2, 3, [Entry((2, 3), w, forged)])
        assert bool(rejected) == bool(excluded)
        return nodes[0].decide()[2], nodes[1].decide()[2]

    d0, d1 = run(frozenset())
    assert d0 != d1  # the coalition splits the loyal boards
    d0, d1 = run(frozenset({3}))
    assert d0 == d1 == v


def _vector(masks: dict[int, int], channels: int = 1) -> list[object]:
    return [with_accusations((float(j),), masks.get(j, 0), channels) for j in range(4)]


def test_isolation_needs_f_plus_1_agreed_accusations() -> None:
    """One accuser (a traitor alone) isolates nobody; two (f+1 with f=1) isolate from the next
    tick, and the peer's entry is ERROR from then on."""
    d = Diagnosis(4, 0, 1, threshold=2, config=DiagnosisConfig(probation_ticks=3))
    vec, events = d.end_tick(10, _vector({2: 1 << 3}), [])
    assert events == [] and vec[3] == (3.0,)
    vec, events = d.end_tick(11, _vector({1: 1 << 3, 2: 1 << 3}), [])
    assert [(e["event"], e["tick"], e["peer"], e["accusers"]) for e in events] == [
        ("isolate", 12, 3, [1, 2])
    ]
    assert vec[3] == (3.0,)  # agreed at the end of 11, in effect from 12
    vec, _ = d.end_tick(12, _vector({}), [])
    assert vec[3] is None and vec[:3] == ((0.0,), (1.0,), (2.0,))


def test_isolated_board_cannot_accuse() -> None:
    """An isolated peer's accusations do not count: it cannot take a loyal board out with it."""
    d = Diagnosis(4, 0, 1, threshold=2)
    d.end_tick(1, _vector({1: 1 << 3, 2: 1 << 3}), [])  # 3 isolated from tick 2
    _, events = d.end_tick(2, _vector({3: 1 << 2, 1: 1 << 2}), [])
    assert events == []


def test_probation_readmits_after_clean_ticks_and_doubles_for_a_repeat() -> None:
    """Re-admitted after `probation_ticks` clean agreed ticks; a second isolation waits twice as
    long; an accusation during probation restarts the count."""
    d = Diagnosis(4, 0, 1, threshold=2, config=DiagnosisConfig(probation_ticks=3))
    accused = {1: 1 << 3, 2: 1 << 3}
    events = d.end_tick(0, _vector(accused), [])[1]
    assert events[0]["probation_ticks"] == 3
    log = []
    for t in range(1, 20):
        log += d.end_tick(t, _vector(accused if t == 2 else {}), [])[1]
    assert [(e["event"], e["tick"]) for e in log] == [("readmit", 6)]
    events = d.end_tick(20, _vector(accused), [])[1]
    assert events[0]["event"] == "isolate" and events[0]["probation_ticks"] == 6
    log = []
    for t in range(21, 40):
        log += d.end_tick(t, _vector({}), [])[1]
    assert [(e["event"], e["tick"]) for e in log] == [("readmit", 27)]


def test_malformed_accusation_channel_is_counted_not_trusted() -> None:
    """A mask that is not an integer bitmap of the cluster's nodes accuses nobody (counted)."""
    assert split_value((1.0, 0.5), 1, 4) == ((1.0,), None)
    assert split_value((1.0, 16.0), 1, 4) == ((1.0,), None)
    assert split_value((1.0, -1.0), 1, 4) == ((1.0,), None)
    assert split_value((None, 8.0), 1, 4) == (None, 8)  # no reading, still an accuser
    assert split_value(None, 1, 4) == (None, None)
    d = Diagnosis(4, 0, 1, threshold=2)
    vec = _vector({})
    vec[1] = (1.0, 8.5)
    vec[2] = (2.0, 1e300)
    _, events = d.end_tick(1, vec, [])
    assert events == [] and d.malformed == 2


def test_accusations_follow_evidence_only() -> None:
    """A board accuses in its next value exactly the peers it holds evidence against."""
    d = Diagnosis(4, 1, 1, threshold=2)
    assert d.commanded((4.0,)) == (4.0, 0.0)
    ev, _ = _signed_pair(peer=3)
    _, events = d.end_tick(5, _vector({}), [ev])
    assert events[0]["event"] == "evidence"
    assert d.commanded((4.0,)) == (4.0, 8.0)
    d.end_tick(6, _vector({}), [])
    assert d.commanded(None) == (None, 0.0)


def test_checker_finds_an_isolation_not_agreed_and_a_false_one() -> None:
    """The ledger flags a loyal board that missed an isolation and an isolated loyal board."""
    ledger = IsolationLedger([0, 1, 2])
    for i in (0, 1, 2):
        ledger.event(i, {"event": "joined", "node": i, "tick": 0})
        ledger.event(i, {"event": "evidence", "node": i, "tick": 10, "peer": 3})
    for i in (0, 1):
        ledger.event(i, {"event": "isolate", "node": i, "tick": 12, "peer": 3})
    ledger.event(2, {"event": "isolate", "node": 2, "tick": 13, "peer": 3})
    ledger.event(0, {"event": "isolate", "node": 0, "tick": 40, "peer": 1})
    summary, problems = ledger.verdict({0: 99, 1: 99, 2: 99})
    assert summary["false_isolations"] == 1
    assert summary["detection_latency"] == {"3": 2}
    assert sorted((t, nodes) for t, nodes, _ in problems) == [
        (12, [2]),
        (13, [0, 1]),
        (40, [1]),
        (40, [1, 2]),
    ]
    agreed = IsolationLedger([0, 1, 2])
    for i in (0, 1, 2):
        agreed.event(i, {"event": "isolate", "node": i, "tick": 12, "peer": 3})
    assert agreed.verdict({0: 99, 1: 99, 2: 99})[1] == []


def test_cluster_file_diagnosis_section(tmp_path: Path) -> None:
    """[diagnosis] turns it on (SM evidence, OM p/r), checks its keys, survives the dump."""
    text = cluster_text(algorithm="sm") + "\n[diagnosis]\nprobation_ticks = 40\n"
    cfg = loads_cluster(text, tmp_path / "cluster.toml")
    assert cfg.diagnosis == DiagnosisConfig(probation_ticks=40)
    assert loads_cluster(dump_cluster(cfg), cfg.path) == cfg
    assert loads_cluster(cluster_text(algorithm="sm"), tmp_path / "c.toml").diagnosis is None
    om = cluster_text() + "\n[diagnosis]\npenalty_threshold = 4\nreward_decay = 0.5\n"
    cfg = loads_cluster(om, tmp_path / "om.toml")
    assert cfg.diagnosis == DiagnosisConfig(penalty_threshold=4.0, reward_decay=0.5)
    assert loads_cluster(dump_cluster(cfg), cfg.path) == cfg
    with pytest.raises(ConfigFileError, match=r"diagnosis\.reward_decay"):
        loads_cluster(cluster_text() + "\n[diagnosis]\nreward_decay = 1\n", tmp_path / "c.toml")
    with pytest.raises(ConfigFileError, match=r"diagnosis\.probation_ticks"):
        loads_cluster(
            cluster_text(algorithm="sm") + "\n[diagnosis]\nprobation_ticks = 0\n",
            tmp_path / "c.toml",
        )
    with pytest.raises(ConfigFileError, match="unknown key"):
        loads_cluster(
            cluster_text(algorithm="sm") + "\n[diagnosis]\nprobation = 5\n", tmp_path / "c.toml"
        )


def test_second_value_shown_to_one_loyal_board_reaches_every_loyal_board() -> None:
    """Commander 3 signs w for board 2 only: board 2 relays it (Dolev-Strong), so at the end of
    the tick every loyal board holds the same pair and accuses 3 in its next value."""
    params = ic_params(4, 1, Algorithm.SM, CLUSTER)
    ring, coalition = cluster_keys(4, [3], CLUSTER)
    domain = ReadingDomain(1)
    v, w = (1.0,), (7.0,)
    nodes: dict[int, RoundNode] = {
        i: SMNode(params, i, domain, ring, (float(i),), tick=4) for i in (0, 1, 2)
    }
    nodes[3] = Traitor(
        SMNode(params, 3, domain, coalition, v, tick=4),
        Scripted(sends={2: w}),
        ChainForge(params, coalition, domain, 4),
    )
    run_tick(nodes, params.rounds)
    for i in (0, 1, 2):
        node = nodes[i]
        assert isinstance(node, SMNode)
        ev = find_evidence(4, 3, node.signed_values(3))
        assert ev is not None and set(ev.values) == {v, w}
        assert check_evidence(ring, CLUSTER, ev)


def test_campaign_diagnosis_key(tmp_path: Path) -> None:
    """A scenario's `diagnosis` is true or a table of its keys; anything else is one line."""
    head = '[campaign]\nname = "d"\n[[scenario]]\nname = "s"\nalgorithm = "{alg}"\n'
    ok = parse_campaign(tomllib.loads(head.format(alg="sm") + "diagnosis = true\n"), tmp_path)
    assert ok.scenarios[0].diagnosis == DiagnosisConfig()
    table = "diagnosis = { probation_ticks = 9 }\n"
    ok = parse_campaign(tomllib.loads(head.format(alg="sm") + table), tmp_path)
    assert ok.scenarios[0].diagnosis == DiagnosisConfig(probation_ticks=9)
    assert "probation_ticks = 9" in scenario_toml(ok.scenarios[0], "d")
    om = parse_campaign(tomllib.loads(head.format(alg="om") + "diagnosis = true\n"), tmp_path)
    assert om.scenarios[0].diagnosis == DiagnosisConfig()
    bad = (("om", "diagnosis = { reward_decay = 1.5 }"), ("sm", "diagnosis = { probation = 1 }"))
    for alg, line in bad:
        with pytest.raises(CampaignError, match="diagnosis"):
            parse_campaign(tomllib.loads(head.format(alg=alg) + line + "\n"), tmp_path)
