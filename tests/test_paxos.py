"""Crash-only Multi-Paxos (voter.core.paxos): counts, a leader crash, and what one liar does."""

from __future__ import annotations

from hil.smr_checks import check_log
from hil.smr_sim import SmrConfig, simulate
from voter.core.adversary import Strategy
from voter.core.paxos import DoViewChange, Entry, merge_logs
from voter.core.smr import Request
from voter.faultmodel import Crash, Traitor


def test_normal_case_is_4n_minus_2_messages_and_no_signatures() -> None:
    """Request N, accept N-1, accepted N-1, decide N-1, one reply from the leader."""
    commands = 20
    r = simulate(SmrConfig("crash", 3, commands, window=1))
    assert check_log(r.logs, 3, []).holds
    per = {k: v / commands for k, v in r.messages.items()}
    assert per == {"Request": 3, "Accept": 2, "Accepted": 2, "Decide": 2, "Reply": 1}
    assert sum(per.values()) == 4 * 3 - 2
    assert r.signs == r.verifies == 0


def test_three_boards_survive_a_leader_crash_with_the_same_log() -> None:
    r = simulate(SmrConfig("crash", 3, 300, faults=(Crash(0, 40),)))
    assert check_log(r.logs, 3, []).holds
    assert len(r.accepted) == 300
    logs = [[e["command"] for e in r.logs[i].events if e["event"] == "commit"] for i in (1, 2)]
    assert logs[0] == logs[1]
    assert r.view_changes[1] >= 1


def test_one_equivocating_leader_breaks_crash_only_but_not_pbft() -> None:
    """The seed's argument: 2f+1 boards cannot tell which of two claims has a true majority."""
    liar = Traitor(0, Strategy.EQUIVOCATE)
    crash = simulate(SmrConfig("crash", 3, 40, faults=(liar,), ticks_max=1500))
    found = check_log(crash.logs, 3, [0])
    assert not found.agreement
    pbft = simulate(SmrConfig("pbft", 4, 40, faults=(liar,)))
    assert check_log(pbft.logs, 4, [0]).holds


def test_the_new_leader_keeps_the_highest_view_entry_and_fills_gaps() -> None:
    a, b = Request(3, 0, "a"), Request(3, 1, "b")
    logs = [
        DoViewChange(2, (Entry(1, 0, a), Entry(3, 0, b)), 1),
        DoViewChange(2, (Entry(1, 1, b),), 2),
    ]
    assert merge_logs(2, logs) == (Entry(1, 2, b), Entry(2, 2, None), Entry(3, 2, b))
