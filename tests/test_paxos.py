"""Crash-only Multi-Paxos (voter.core.paxos): counts, a leader crash, and what one liar does."""

from __future__ import annotations

import random
from collections.abc import Callable

from hil.smr_checks import check_log
from hil.smr_sim import SmrConfig, simulate
from voter.core.adversary import Strategy
from voter.core.paxos import (
    RECOVERY_CHUNK,
    Accept,
    Decide,
    DoViewChange,
    Entry,
    PaxosConfig,
    PaxosReplica,
    merge_logs,
)
from voter.core.smr import Request, Send
from voter.core.smr_wire import decode_message, encode_message
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


class Net:
    """Three replicas and a reliable in-memory network, delivered in send order; `down`
    replicas neither receive nor tick (a crash). With `wire`, every message goes through
    the command-log codec (voter.core.smr_wire) as on the boards: one it refuses (beyond
    MESSAGE_BYTES_MAX, ITEMS_MAX entries) is lost, counted in `too_long`."""

    def __init__(self, timeout: int = 5, wire: bool = False) -> None:
        cfg = PaxosConfig(3, clients=(3,), timeout_ticks=timeout)
        self.reps = [PaxosReplica(i, cfg) for i in range(3)]
        self.queue: list[tuple[int, Send]] = []
        self.down: set[int] = set()
        self.now = 0
        self.wire, self.too_long = wire, 0

    def send(self, src: int, sends: list[Send]) -> None:
        for s in sends:
            if s.dst >= 3:
                continue
            if self.wire:
                try:
                    s = Send(s.dst, decode_message(encode_message(s.msg)))
                except ValueError:
                    self.too_long += 1
                    continue
            self.queue.append((src, s))

    def run(self, ticks: int, drop: Callable[[int, Send], bool] = lambda _s, _m: False) -> None:
        for _ in range(ticks):
            self.now += 1
            queue, self.queue = self.queue, []
            for src, s in queue:
                if s.dst not in self.down and not drop(src, s):
                    self.send(s.dst, self.reps[s.dst].receive(src, s.msg, self.now))
            for i, r in enumerate(self.reps):
                if i not in self.down:
                    self.send(i, r.tick(self.now))

    def request(self, req: Request) -> None:
        for i, r in enumerate(self.reps):
            if i not in self.down:
                self.send(i, r.receive(3, req, self.now))

    def committed(self, i: int) -> list[str | None]:
        return [None if e.request is None else e.request.op for e in self.reps[i].executed]


def test_an_acceptor_restarted_empty_breaks_safety_and_a_learner_does_not() -> None:
    """Why a restarted replica recovers as a learner. Command a is decided at seq 1 by the
    leader 0 and replica 1 (replica 2 missed the accept). Replica 1 restarts with empty
    state, 0 crashes. An empty acceptor joins the view change and view 2 (leader 2) never
    hears of a: b takes seq 1, while 0 executed a there. A learner (`recover`) does not
    vote before it caught up with a leader: no new view, nothing decided against a."""
    a, b = Request(3, 0, "a"), Request(3, 1, "b")

    def scenario(learner: bool) -> Net:
        net = Net()
        net.request(a)
        net.run(4, drop=lambda src, s: s.dst == 2 and isinstance(s.msg, Accept | Decide))
        assert ["a"] == net.committed(0) == net.committed(1) and [] == net.committed(2)
        net.reps[1] = PaxosReplica(1, net.reps[1].cfg)  # restarted: state lost
        if learner:
            net.reps[1].recover()
        net.down.add(0)
        net.reps[2].pending.clear()  # replica 2 never heard of a
        net.request(b)
        net.run(200)
        return net

    empty = scenario(learner=False)
    assert ["b"] == empty.committed(2)[:1] and ["a"] == empty.committed(0)  # two logs
    safe = scenario(learner=True)
    assert [] == safe.committed(2) and safe.reps[1].recovering


def test_a_learner_takes_the_leaders_log_then_follows() -> None:
    """Replica 2 restarts while 0 leads: it answers nothing until f+1 = 2 others answered
    and leader 0 sent its log (in chunks of RECOVERY_CHUNK); then it executes the same
    commands and acknowledges new accepts like any follower."""
    net = Net()
    for k in range(RECOVERY_CHUNK + 10):
        net.request(Request(3, k, f"c{k}"))
    net.run(10)
    net.reps[2] = PaxosReplica(2, net.reps[2].cfg)
    net.reps[2].recover()
    net.request(Request(3, 999, "late"))
    net.run(3)
    assert net.reps[2].recovering and 0 == net.reps[2].counts.sent.get("Accepted", 0)
    net.run(20)
    assert not net.reps[2].recovering and 0 == net.reps[2].view
    assert net.committed(0) == net.committed(2) and "late" == net.committed(2)[-1]
    net.request(Request(3, 1000, "after"))
    net.run(5)
    assert "after" == net.committed(2)[-1] and net.reps[2].counts.sent["Accepted"] >= 1


def test_a_leader_crash_after_2100_commands_keeps_the_log_going_over_the_wire() -> None:
    """Issue 14: a view change used to send the whole log (DoViewChange, StartView), beyond
    the codec's limits past ~1,000 commands, so a leader crash stopped the log for good.
    Now each carries only the entries above a commit point: the two survivors elect
    replica 1, go on with the same log, and no message is refused as too long."""
    net = Net(wire=True)
    for k in range(2100):
        net.request(Request(3, k, f"c{k}"))
        if k % 50 == 49:
            net.run(4)
    net.run(10)
    assert 2100 == len(net.committed(0)) == len(net.committed(1)) == len(net.committed(2))
    net.down.add(0)
    net.request(Request(3, 5000, "after-crash"))
    net.run(200)
    assert ["c2099", "after-crash"] == net.committed(2)[-2:]
    assert net.committed(1) == net.committed(2)
    assert net.committed(1)[:2100] == net.committed(0)
    assert net.reps[1].view >= 1 and net.reps[1].is_leader and net.reps[1].normal
    assert 0 == net.too_long
    assert 2101 <= len(net.reps[1].log) == len(net.reps[2].log)  # nothing trimmed: design.md


def test_a_new_leader_behind_the_commit_point_fetches_before_starting_the_view() -> None:
    """Replica 1 misses every Decide while 0 leads (it accepted all, executed none); 0
    crashes. Replica 2 reports commit point 130, above which it sends nothing: leader 1 of
    view 1 must fetch 1..130 in chunks (AskLog, LogChunk) from 2 before StartView, then the
    log goes on alike on both."""
    net = Net(wire=True)
    for k in range(130):
        net.request(Request(3, k, f"c{k}"))
    net.run(6, drop=lambda src, s: s.dst == 1 and isinstance(s.msg, Decide))
    assert [] == net.committed(1) and 130 == len(net.committed(2))
    net.down.add(0)
    net.request(Request(3, 999, "next"))
    net.run(300)
    assert net.reps[1].is_leader and net.reps[1].normal
    assert net.committed(1) == net.committed(2) and "next" == net.committed(1)[-1]
    assert net.reps[1].counts.sent["AskLog"] >= 130 // RECOVERY_CHUNK
    assert 0 == net.too_long


def test_a_decide_past_a_missed_accept_stops_at_the_gap_and_the_gap_is_fetched() -> None:
    """Replica 2 missed the accept of seq 50 and replica 1 every decide above 60; leader 0
    crashes. A decide never raises a commit point past what the replica holds (2 reports
    49, not 100: a point its holder can always hand out below), so new leader 1 (point 60)
    starts at once with the entries above 60, and 2 fetches 50..60 from it in a chunk.
    Both end with the same 100 commands and go on."""
    net = Net(wire=True)
    for k in range(100):
        net.request(Request(3, k, f"c{k}"))

    def lost(_src: int, s: Send) -> bool:
        m = s.msg
        return (s.dst == 2 and isinstance(m, Accept) and m.seq == 50) or (
            s.dst == 1 and isinstance(m, Decide) and m.upto > 60
        )

    net.run(4, drop=lost)
    assert (49, 49) == (net.reps[2].last_exec, net.reps[2].decided)
    assert (60, 60) == (net.reps[1].last_exec, net.reps[1].decided)
    net.down.add(0)
    net.request(Request(3, 999, "next"))
    net.run(300)
    assert net.reps[1].is_leader and net.reps[1].normal
    assert net.reps[1].counts.sent["LogChunk"] >= 1 and net.reps[2].counts.sent["AskLog"] >= 1
    assert net.committed(1) == net.committed(2) == [f"c{k}" for k in range(100)] + ["next"]


def test_lossy_links_and_one_crash_keep_one_log_and_finish() -> None:
    """20 seeded runs over the codec: links lose 0-40 % of messages until tick 250, one
    replica crashes at a seeded tick, 70 % of the first 150 ticks bring a command. The
    executed logs never disagree (each a prefix of another) and, by tick 2,000, both
    survivors executed every command. (The first bounded view change, which let a decide or
    a start-view raise a commit point past the entries held, stopped for good in such runs.)"""
    for seed in [65, 78, *range(18)]:
        rng = random.Random(seed)
        net = Net(wire=True)
        p = rng.choice([0.0, 0.05, 0.2, 0.4])
        crash_at, victim = rng.randrange(5, 120), rng.randrange(3)
        rng.random()
        k = 0
        for t in range(2000):
            if t < 150 and rng.random() < 0.7:
                net.request(Request(3, k, f"c{k}"))
                k += 1
            if t == crash_at:
                net.down.add(victim)
            loss = p if t <= 250 else 0.0
            net.run(1, drop=lambda _src, _s, loss=loss, rng=rng: rng.random() < loss)
        logs = [net.committed(i) for i in range(3)]
        for a in logs:
            for b in logs:
                assert a[: len(b)] == b[: len(a)], seed
        assert all(len(logs[i]) >= k for i in range(3) if i != victim), seed


def test_a_runaway_client_is_refused_past_its_share() -> None:
    """Crash-only replicas bound a client's unanswered requests too (a runaway client, not a
    liar): PENDING_PER_CLIENT kept, the rest counted refused, another client still served."""
    from voter.core.smr import PENDING_PER_CLIENT

    rep = PaxosReplica(1, PaxosConfig(3, clients=(3, 4)))
    for n in range(PENDING_PER_CLIENT + 300):
        rep.receive(3, Request(3, n, "x"), 0)
    rep.receive(4, Request(4, 0, "y"), 0)
    assert PENDING_PER_CLIENT == sum(1 for client, _ in rep.pending if client == 3)
    assert (4, 0) in rep.pending and 300 == rep.refused
