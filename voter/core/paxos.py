"""Crash-only command log: Multi-Paxos with a stable leader (Viewstamped Replication's shape).

N = 2f+1 replicas, no signatures: a replica may stop, never lie. The leader of
view v (v mod N) gives each client request the next sequence number and sends
it to every follower (accept); a follower stores it and answers (accepted); the
leader counts f+1 acceptances including its own, executes, replies to the
client (one reply suffices: nobody lies) and tells the followers (decide), who
execute in order. Two message delays from the leader to a decision.

Leader change (bounded, docs/design.md "Bounded view change"): a follower that
sees no progress on a pending request for a timeout sends its commit point and
its accepted entries above it to the next view's leader; with f+1 of them (its
own among them) that leader takes the highest commit point M, fetches the chosen
entries it misses up to M (AskLog/LogChunk, from any replica: what a replica
holds at or below its commit point is chosen), keeps above M, per sequence
number, the entry from the highest view (a decided entry was accepted by f+1
replicas, so one of any f+1 of them has it or knows a commit point past it),
fills gaps with nothing, and starts the view by sending that suffix to all.
Nothing in this protocol defends against a replica that lies: an equivocating
leader splits the followers (the seed's 3f+1 argument, shown by
campaigns/command-log.toml). Pure: no I/O, no clock, no randomness.

Recovery (a restarted board, docs/design.md "A restarted board"): an acceptor
that restarts with empty state has forgotten what it accepted, and a decision
counted on its acceptance could be lost at the next leader change. So a replica
started with `recover()` is a learner: it neither accepts, nor votes, nor asks
for a view change; it asks everyone (Recover), and once f+1 others answered and
the leader of the highest view they name sent its log, chunk by chunk, it takes
that log and view and only then acts as a follower (Viewstamped Replication's
recovery, without disk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voter.core.smr import (
    Counts,
    Executed,
    Reply,
    Request,
    Send,
    Service,
    broadcast,
    room_for,
)


@dataclass(frozen=True, slots=True)
class Accept:
    view: int
    seq: int
    request: Request | None


@dataclass(frozen=True, slots=True)
class Accepted:
    view: int
    seq: int
    node: int


@dataclass(frozen=True, slots=True)
class Decide:
    """Everything up to `upto` is decided (the leader's commit point)."""

    view: int
    upto: int


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    view: int
    request: Request | None


@dataclass(frozen=True, slots=True)
class DoViewChange:
    """A vote for `view`: the sender's commit point and only its log entries above it
    (bounded by what is in flight, not by the log's length: docs/design.md)."""

    view: int
    log: tuple[Entry, ...]
    node: int
    decided: int = 0


@dataclass(frozen=True, slots=True)
class StartView:
    """The new leader's log above the view's commit point; everything up to `decided` it has
    executed (followers ack the rest, and fetch what they miss below it)."""

    view: int
    log: tuple[Entry, ...]
    decided: int


@dataclass(frozen=True, slots=True)
class Recover:
    """A recovering replica asks for the current view and the leader's log from `start`."""

    node: int
    nonce: int
    start: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """The answer: every normal replica its view; the leader also its log from `start`
    (at most RECOVERY_CHUNK entries), its commit point and its highest sequence number."""

    view: int
    nonce: int
    node: int
    decided: int
    top: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class AskLog:
    """A replica behind its commit point asks for the chosen entries from `start`."""

    node: int
    start: int


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Chosen entries from the asked start (held at or below the answerer's commit point
    `upto`), at most RECOVERY_CHUNK."""

    node: int
    upto: int
    entries: tuple[Entry, ...]


#: log entries one Recovery carries at most (the rest: the next round)
RECOVERY_CHUNK = 64
#: Accept and Decide messages a recovering replica keeps for after it caught up, at most
RECOVERY_EARLY_MAX = 1024


@dataclass(frozen=True)
class PaxosConfig:
    nodes: int
    clients: tuple[int, ...]
    timeout_ticks: int = 20

    @property
    def f(self) -> int:
        return (self.nodes - 1) // 2

    def leader(self, view: int) -> int:
        return view % self.nodes


@dataclass
class PaxosReplica:
    node: int
    cfg: PaxosConfig
    view: int = 0
    normal: bool = True
    counts: Counts = field(default_factory=Counts)
    executed: list[Executed] = field(default_factory=list)
    service: Service = field(default_factory=Service)
    #: accepted entries by sequence number (the latest view's)
    log: dict[int, Entry] = field(default_factory=dict)
    acks: dict[int, set[int]] = field(default_factory=dict)
    decided: int = 0
    last_exec: int = 0
    pending: dict[tuple[int, int], Request] = field(default_factory=dict)
    assigned: set[tuple[int, int]] = field(default_factory=set)
    next_seq: int = 1
    progress_at: int = 0
    vc_started: int = 0
    vc_attempt: int = 0
    changes: dict[int, dict[int, DoViewChange]] = field(default_factory=dict)
    refused: int = 0
    #: a learner after a restart (`recover`): no accepts, votes or view changes yet
    recovering: bool = False
    rec: _Recovering | None = None
    #: when this replica last asked for chosen entries it misses (0: not fetching)
    fetch_at: int = 0
    #: a start-view's commit point this follower does not hold yet: it fetches up to it and
    #: acknowledges nothing before (so f+1 acceptances mean f+1 complete prefixes)
    target: int = 0
    #: accepted entries a start-view left out (below its point), not known to be chosen: kept
    #: for the next do-view-change only, never executed (docs/design.md, invariant I)
    unconfirmed: dict[int, Entry] = field(default_factory=dict)

    @property
    def is_leader(self) -> bool:
        return self.cfg.leader(self.view) == self.node

    def receive(self, src: int, msg: Any, now: int) -> list[Send]:
        if isinstance(msg, Recover):
            out = self._on_recover(src, msg)
        elif self.recovering:
            out = self._while_recovering(src, msg, now)
        else:
            out = self._dispatch(src, msg, now)
        self.counts.add(out)
        return out

    def tick(self, now: int) -> list[Send]:
        out: list[Send] = []
        if self.recovering:
            assert self.rec is not None
            if self.rec.nonce == 0 or now - self.rec.sent_at >= self.cfg.timeout_ticks:
                out = self._ask(now)  # the first round, or a round nobody completed
        elif self.fetch_at and now - self.fetch_at > self.cfg.timeout_ticks:
            out = self._fetch(now, None)  # the asked replica did not help: ask everyone
        elif self.normal:
            if self.pending and now - self.progress_at > self.cfg.timeout_ticks:
                out = self._start_view_change(self.view + 1, now)
        elif now - self.vc_started > self.cfg.timeout_ticks * 2 ** min(self.vc_attempt, 6):
            out = self._start_view_change(self.view + 1, now)
        self.counts.add(out)
        return out

    def _dispatch(self, src: int, msg: Any, now: int) -> list[Send]:
        if isinstance(msg, Request):
            return self._on_request(msg, now)
        if isinstance(msg, DoViewChange):
            return self._on_do_view_change(msg, now)
        if isinstance(msg, StartView):
            return self._on_start_view(src, msg, now)
        if isinstance(msg, AskLog):
            return self._on_ask_log(src, msg)
        if isinstance(msg, LogChunk):
            return self._on_log_chunk(src, msg, now)
        if not isinstance(msg, Accept | Accepted | Decide) or msg.view != self.view:
            self.refused += 1  # another view's message: the sender will catch up or time out
            return []
        if not self.normal:
            return []
        if isinstance(msg, Accept):
            return self._on_accept(src, msg, now)
        if isinstance(msg, Accepted):
            return self._on_accepted(msg, now)
        return self._on_decide(src, msg, now)

    def _on_request(self, req: Request, now: int) -> list[Send]:
        if req.client not in self.cfg.clients:
            self.refused += 1
            return []
        done = self.service.done.get(req.key)
        if done is not None:
            return [Send(req.client, self._reply(req, *done))] if self.is_leader else []
        if not room_for(self.pending, req):
            self.refused += 1
            return []
        if req.key not in self.pending:
            if not self.pending:
                self.progress_at = now
            self.pending[req.key] = req
        return self._propose() if self.is_leader and self.normal else []

    def _propose(self) -> list[Send]:
        out: list[Send] = []
        for key, req in list(self.pending.items()):
            if key in self.assigned:
                continue
            self.assigned.add(key)
            seq = self.next_seq
            self.next_seq += 1
            self.log[seq] = Entry(seq, self.view, req)
            self.acks[seq] = {self.node}
            out += broadcast(Accept(self.view, seq, req), self.cfg.nodes, self.node)
        return out

    def _on_accept(self, src: int, a: Accept, now: int) -> list[Send]:
        if src != self.cfg.leader(self.view) or a.seq <= self.last_exec:
            return []
        self.log[a.seq] = Entry(a.seq, a.view, a.request)
        if a.request is not None and a.request.key not in self.service.done:
            self.pending.setdefault(a.request.key, a.request)
        if self.last_exec < self.target:
            return []  # acknowledged once this replica holds the view's prefix
        return [Send(src, Accepted(a.view, a.seq, self.node))]

    def _on_accepted(self, a: Accepted, now: int) -> list[Send]:
        if not self.is_leader or a.seq not in self.acks:
            return []
        self.acks[a.seq].add(a.node)
        out: list[Send] = []
        while len(self.acks.get(self.decided + 1, ())) >= self.cfg.f + 1:
            self.decided += 1
            del self.acks[self.decided]
            out += broadcast(Decide(self.view, self.decided), self.cfg.nodes, self.node)
        return out + self._execute(now)

    def _on_decide(self, src: int, d: Decide, now: int) -> list[Send]:
        if src != self.cfg.leader(self.view):
            return []
        self.decided = self._held_upto(d.upto)
        return self._execute(now)

    def _held_upto(self, upto: int) -> int:
        """The commit point to take from `upto`: no further than this replica holds every
        entry (a missed accept is a gap), so a replica reporting a commit point can always
        hand out what lies below it (docs/design.md, "Bounded view change")."""
        point = max(self.decided, self.last_exec)
        while point < upto and point + 1 in self.log:
            point += 1
        return point

    def _execute(self, now: int) -> list[Send]:
        out: list[Send] = []
        while self.last_exec < self.decided and self.last_exec + 1 in self.log:
            seq = self.last_exec + 1
            req = self.log[seq].request
            result = self.service.apply(seq, req)
            self.executed.append(Executed(seq, self.view, req, result))
            self.last_exec, self.progress_at = seq, now
            if req is not None:
                self.pending.pop(req.key, None)
                if self.is_leader:
                    out.append(Send(req.client, self._reply(req, seq, result)))
        return out

    def _reply(self, req: Request, seq: int, result: str) -> Reply:
        return Reply(self.view, req.client, req.req, seq, result, self.node)

    # -- leader change ---------------------------------------------------------------------
    def _start_view_change(self, view: int, now: int) -> list[Send]:
        self.view, self.normal = view, False
        self.vc_started, self.vc_attempt = now, self.vc_attempt + 1
        mine = self.unconfirmed | self.log
        above = tuple(mine[s] for s in sorted(mine) if s > self.decided)
        dvc = DoViewChange(view, above, self.node, self.decided)
        leader = self.cfg.leader(view)
        if leader == self.node:
            return self._on_do_view_change(dvc, now)
        return [Send(leader, dvc)]

    def _on_do_view_change(self, dvc: DoViewChange, now: int) -> list[Send]:
        if self.cfg.leader(dvc.view) != self.node or dvc.view < self.view:
            return []
        if dvc.view == self.view and self.normal:
            return []  # already started that view
        out: list[Send] = []
        if dvc.view > self.view and dvc.node != self.node:  # a follower asks: join with own log
            out += self._start_view_change(dvc.view, now)
        self.changes.setdefault(dvc.view, {})[dvc.node] = dvc
        return out + self._try_start(now)

    def _try_start(self, now: int) -> list[Send]:
        """With f+1 votes for this view: start it once this leader executed up to the highest
        commit point among them (fetching what it misses first, docs/design.md)."""
        got = self.changes.get(self.view, {})
        if len(got) < self.cfg.f + 1 or self.normal or not self.is_leader:
            return []
        point = max(d.decided for d in got.values())
        out = self._execute(now)
        if self.last_exec < point:  # fetched chunks overwrite own entries, maybe another view's
            self.target = max(self.target, point)
            return out + ([] if self.fetch_at else self._fetch(now, None))
        log = merge_logs(self.view, got.values(), point)
        sv = StartView(self.view, log, self.last_exec)
        return out + broadcast(sv, self.cfg.nodes, self.node) + self._begin(self.view, log, now)

    def _on_start_view(self, src: int, sv: StartView, now: int) -> list[Send]:
        if src != self.cfg.leader(sv.view) or sv.view < self.view:
            return []
        if sv.view == self.view and self.normal:
            return []
        out = self._begin(sv.view, sv.log, now, sv.decided)
        if any(s not in self.log for s in range(self.last_exec + 1, sv.decided + 1)):
            self.target = max(self.target, sv.decided)  # behind the view's point: fetch first
            return out + ([] if self.fetch_at else self._fetch(now, src))
        self.decided = max(self.decided, sv.decided)
        acks = [
            Send(src, Accepted(sv.view, e.seq, self.node)) for e in sv.log if e.seq > sv.decided
        ]
        return out + acks + self._execute(now)

    def _begin(self, view: int, log: tuple[Entry, ...], now: int, point: int = 0) -> list[Send]:
        """Enter `view` with `log` (the entries above its commit point): everything not yet
        executed is re-accepted in this view; what this replica accepted below the view's
        `point` and the log leaves out it keeps aside, unconfirmed (docs/design.md)."""
        self.view, self.normal = view, True
        self.progress_at, self.vc_attempt = now, 0
        self.counts.view_changes += 1
        self.changes = {v: d for v, d in self.changes.items() if v > view}
        chosen = max(self.last_exec, self.decided)
        aside = self.unconfirmed | {s: e for s, e in self.log.items() if s > chosen}
        self.unconfirmed = {s: e for s, e in aside.items() if chosen < s <= point}
        self.log = {s: e for s, e in self.log.items() if s <= chosen}
        self.assigned, self.acks, self.target = set(), {}, 0
        for e in log:
            if e.seq > self.last_exec:
                self.log[e.seq] = e
            if e.request is not None:
                self.assigned.add(e.request.key)
        top = max((e.seq for e in log), default=self.last_exec)
        self.next_seq = max(top, self.last_exec) + 1
        self.decided = max(self.decided, self.last_exec)
        if not self.is_leader:
            return []
        self.acks = {e.seq: {self.node} for e in log if e.seq > self.last_exec}
        return self._propose()

    # -- catching up below a commit point (bounded view change) --------------------------
    def _fetch(self, now: int, dst: int | None) -> list[Send]:
        """Ask `dst` (None: everyone) for the chosen entries this replica misses."""
        if max(self.decided, self.target) <= self.last_exec:
            self.fetch_at = 0
            return []
        self.fetch_at = now
        ask = AskLog(self.node, self.last_exec + 1)
        if dst is None:
            return broadcast(ask, self.cfg.nodes, self.node)
        return [Send(dst, ask)]

    def _on_ask_log(self, src: int, f: AskLog) -> list[Send]:
        """Every entry a replica holds at or below its commit point is the chosen one (the
        invariant of docs/design.md, "Bounded view change"): any replica may hand those out,
        in any view, the run that starts at the asked number."""
        if f.node != src or src == self.node or f.start < 1 or f.start not in self.log:
            return []
        end = min(self.decided, f.start + RECOVERY_CHUNK - 1)
        entries: list[Entry] = []
        for seq in range(f.start, end + 1):
            if seq not in self.log:
                break
            entries.append(self.log[seq])
        if not entries:
            return []
        return [Send(src, LogChunk(self.node, self.decided, tuple(entries)))]

    def _on_log_chunk(self, src: int, f: LogChunk, now: int) -> list[Send]:
        """Take the chosen entries that continue this replica's executed prefix, execute them,
        and ask the same replica for the next chunk while it had more."""
        if f.node != src or src == self.node:
            return []
        before = self.last_exec
        seq = before
        for e in f.entries:
            if e.seq <= seq:
                continue  # another answer came first
            if e.seq != seq + 1 or e.seq > f.upto:
                break
            self.log[e.seq] = e
            seq = e.seq
        if seq == before:
            return []
        self.decided = max(self.decided, seq)
        self.unconfirmed = {s: e for s, e in self.unconfirmed.items() if s > seq}
        out = self._execute(now)
        self.fetch_at = 0
        if max(self.decided, self.target) > self.last_exec:
            out += self._fetch(now, src)
        elif self.target and self.normal and not self.is_leader:
            self.target = 0  # caught up: acknowledge what this view's leader sent meanwhile
            leader = self.cfg.leader(self.view)
            held = [e for s, e in sorted(self.log.items()) if s > self.last_exec]
            out += [Send(leader, Accepted(self.view, e.seq, self.node)) for e in held]
        if not self.normal:
            self.vc_started = now  # the view change progresses: no reason to give up on it
            out += self._try_start(now)
        return out

    # -- recovery (a restarted replica) ---------------------------------------------------
    def recover(self) -> None:
        """Become a learner: this replica's state was lost (a restart), see the module doc."""
        self.recovering, self.normal, self.rec = True, False, _Recovering()
        self.log, self.acks, self.decided, self.last_exec = {}, {}, 0, 0
        self.service, self.changes = Service(), {}

    def _ask(self, now: int) -> list[Send]:
        """A new round: ask everyone for the view and the leader for the log from `start`."""
        rec = self.rec
        assert rec is not None
        rec.nonce += 1
        rec.sent_at, rec.replies = now, {}
        start = len(rec.log) + 1
        return broadcast(Recover(self.node, rec.nonce, start), self.cfg.nodes, self.node)

    def _on_recover(self, src: int, r: Recover) -> list[Send]:
        """Answer a recovering replica: only a normal one does (VR), the leader with its log."""
        if self.recovering or not self.normal or r.node != src or src == self.node:
            return []
        if not self.is_leader:
            return [Send(src, Recovery(self.view, r.nonce, self.node, 0, 0, ()))]
        top = max(self.log, default=0)
        end = min(top, r.start + RECOVERY_CHUNK - 1)
        entries: list[Entry] = []
        for seq in range(r.start, end + 1):
            if seq not in self.log:
                break
            entries.append(self.log[seq])
        return [
            Send(src, Recovery(self.view, r.nonce, self.node, self.decided, top, tuple(entries)))
        ]

    def _while_recovering(self, src: int, msg: Any, now: int) -> list[Send]:
        rec = self.rec
        assert rec is not None
        if isinstance(msg, Request):
            if msg.client in self.cfg.clients and room_for(self.pending, msg):
                self.pending.setdefault(msg.key, msg)  # proposed or executed once back
            return []
        if isinstance(msg, Accept | Decide):
            if len(rec.early) < RECOVERY_EARLY_MAX:
                rec.early.append((src, msg))  # after the leader's log: replayed on adoption
            return []
        if not isinstance(msg, Recovery) or msg.nonce != rec.nonce or msg.node != src:
            return []  # a view change goes on without a learner
        rec.replies[src] = msg
        if len(rec.replies) < self.cfg.f + 1:
            return []
        view = max(r.view for r in rec.replies.values())
        lead = rec.replies.get(self.cfg.leader(view))
        if lead is None or lead.view != view:
            return []  # the leader of the newest view has not answered (yet)
        if rec.view != view:  # another leader's log: start over (its tail may differ)
            rec.view, rec.log = view, []
        for e in lead.entries:
            if e.seq == len(rec.log) + 1:
                rec.log.append(e)
        # the leader's accepts since this replica listens continue the log: the segments
        # need only reach the first of them (or the leader's top when it proposed nothing)
        leader = self.cfg.leader(view)
        heard = [
            m.seq for s, m in rec.early if isinstance(m, Accept) and (s, m.view) == (leader, view)
        ]
        if len(rec.log) < min(lead.top, min(heard, default=lead.top + 1) - 1):
            return self._ask(now)
        return self._adopt(view, lead.decided, now)

    def _adopt(self, view: int, decided: int, now: int) -> list[Send]:
        """Caught up with view `view`'s leader: its log is ours; a follower from here on."""
        rec = self.rec
        assert rec is not None
        self.recovering, self.rec = False, None
        self.view, self.normal, self.progress_at = view, True, now
        self.log = {e.seq: e for e in rec.log}
        self.assigned = {e.request.key for e in rec.log if e.request is not None}
        self.next_seq = len(rec.log) + 1  # a follower's: set again by the next view it leads
        self.decided = decided
        leader = self.cfg.leader(view)
        # what the leader has not decided yet it may need this replica's acceptance for
        out = [Send(leader, Accepted(view, e.seq, self.node)) for e in rec.log if e.seq > decided]
        out += self._execute(now)
        for src, msg in rec.early:
            out += self._dispatch(src, msg, now)
        return out


@dataclass
class _Recovering:
    """A learner's recovery: this round's nonce and answers, the leader's log so far."""

    nonce: int = 0
    sent_at: int = 0
    replies: dict[int, Recovery] = field(default_factory=dict)
    view: int = -1
    log: list[Entry] = field(default_factory=list)
    early: list[tuple[int, Any]] = field(default_factory=list)


def merge_logs(view: int, changes: Any, above: int = 0) -> tuple[Entry, ...]:
    """The new view's log above the commit point `above`: per sequence number the entry of
    the highest view, gaps as null (why that is safe: docs/design.md, "Bounded view change")."""
    best: dict[int, Entry] = {}
    for c in changes:
        for e in c.log:
            if e.seq > above and (e.seq not in best or e.view > best[e.seq].view):
                best[e.seq] = e
    top = max(best, default=above)
    return tuple(
        Entry(s, view, best[s].request if s in best else None) for s in range(above + 1, top + 1)
    )
