"""PBFT (Castro and Liskov, OSDI 1999): one replica's state machine; messages, ticks in, sends out.

Normal case: the primary of view v (v mod N) assigns a sequence number to a
client request (pre-prepare), every backup that accepts it says so to all
(prepare), a replica holding the pre-prepare and 2f matching prepares from
backups is *prepared* and says so to all (commit), and 2f+1 matching commits
make the request committed; requests execute in sequence order and each
replica replies to the client, who accepts f+1 matching replies. A primary that
stops making progress (silent, slow, equivocating) is replaced: backups time
out, send view-change messages carrying their prepared certificates, and the
next primary's new-view re-proposes every request some certificate shows, so a
sequence number that committed anywhere keeps its request. Checkpoints every K
sequence numbers, stable at 2f+1 matching, bound the log (watermarks h..h+2K)
and let everything at or below them go.

A replica that missed messages catches up: up to a stable checkpoint by a
fetched segment that must replay to the certified state, beyond it by f+1
matching accounts of what was executed (docs/design.md).

Every protocol message is Ed25519-signed (voter.core.crypto.KeyRing, counted
there): view-change certificates must convince third parties, which MACs
cannot. The catch-up messages are not: a segment is checked by replaying it,
and a request for one asks nothing of the receiver's state. Pure: no I/O, no
clock (ticks are passed in), no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from voter.core.crypto import KeyRing
from voter.core.smr import (
    NULL_DIGEST,
    Counts,
    Executed,
    Reply,
    Request,
    Send,
    Service,
    broadcast,
    digest,
    room_for,
    sign,
    verify,
)

#: messages of a view not yet entered, kept until it is (a bound: TigerBeetle's "limit everything")
FUTURE_MAX = 4096
#: executed sequence numbers kept to hand to a replica left behind (catch-up), at most
HISTORY_MAX = 1024
#: how far above its stable checkpoint a replica takes others' checkpoints, in checkpoints
CHECKPOINTS_AHEAD = 64
#: how many views ahead of its own a replica keeps messages for (a faulty peer's inventions)
VIEWS_AHEAD = 64


@dataclass(frozen=True, slots=True)
class PrePrepare:
    view: int
    seq: int
    digest: bytes
    request: Request | None
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    seq: int
    digest: bytes
    node: int
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class Commit:
    view: int
    seq: int
    digest: bytes
    node: int
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    state: bytes
    node: int
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A prepared certificate: the pre-prepare and 2f matching signed prepares (unsigned itself)."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True, slots=True)
class ViewChange:
    view: int
    stable: int
    proof: tuple[Checkpoint, ...]
    prepared: tuple[Prepared, ...]
    node: int
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class NewView:
    view: int
    changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    sig: bytes = b""


@dataclass(frozen=True, slots=True)
class Fetch:
    """A replica left behind a stable checkpoint asks for what was executed in first..last."""

    first: int
    last: int
    node: int


@dataclass(frozen=True, slots=True)
class Segment:
    """(view, request) per sequence number from `first`: checked by replaying it against the
    state 2f+1 signed checkpoints certify, so it needs no signature of its own."""

    first: int
    entries: tuple[tuple[int, Request | None], ...]
    node: int


@dataclass(frozen=True, slots=True)
class AskView:
    """f+1 replicas talk in a later view than mine: send me its (signed) new-view."""

    view: int
    node: int


@dataclass(frozen=True)
class PbftConfig:
    nodes: int
    clients: tuple[int, ...]
    #: ticks without progress on a pending request before a backup asks for a new view
    timeout_ticks: int = 20
    #: K: a checkpoint every K sequence numbers; the log holds at most 2K above the stable one
    checkpoint_every: int = 16
    cluster: str = "voter"

    @property
    def f(self) -> int:
        return (self.nodes - 1) // 3

    @property
    def log_size(self) -> int:
        return 2 * self.checkpoint_every

    def primary(self, view: int) -> int:
        return view % self.nodes


@dataclass
class Slot:
    """One sequence number in the current view."""

    pre_prepare: PrePrepare | None = None
    prepares: dict[int, Prepare] = field(default_factory=dict)
    commits: dict[int, bytes] = field(default_factory=dict)
    prepared: bool = False
    request: Request | None = None
    committed: bool = False


@dataclass
class PbftReplica:
    node: int
    cfg: PbftConfig
    keys: KeyRing
    view: int = 0
    #: False while changing view (only checkpoints, view changes and new views are taken)
    normal: bool = True
    counts: Counts = field(default_factory=Counts)
    executed: list[Executed] = field(default_factory=list)
    service: Service = field(default_factory=Service)
    slots: dict[int, Slot] = field(default_factory=dict)
    certs: dict[int, Prepared] = field(default_factory=dict)
    last_exec: int = 0
    stable: int = 0
    proof: tuple[Checkpoint, ...] = ()
    checkpoints: dict[int, dict[int, Checkpoint]] = field(default_factory=dict)
    pending: dict[tuple[int, int], Request] = field(default_factory=dict)
    assigned: set[tuple[int, int]] = field(default_factory=set)
    next_seq: int = 1
    progress_at: int = 0
    vc_started: int = 0
    vc_attempt: int = 0
    changes: dict[int, dict[int, ViewChange]] = field(default_factory=dict)
    sent_new_view: set[int] = field(default_factory=set)
    future: list[tuple[int, Any]] = field(default_factory=list)
    #: catch-up: what this replica executed (seq -> view, request), the last HISTORY_MAX
    history: dict[int, tuple[int, Request | None]] = field(default_factory=dict)
    #: catch-up: the certified checkpoint this replica is fetching up to, and when it asked
    fetching: tuple[int, bytes, tuple[Checkpoint, ...]] | None = None
    fetch_at: int = 0
    #: catch-up without a checkpoint: what each replica says it executed from last_exec+1
    tails: dict[int, Segment] = field(default_factory=dict)
    #: the new-view that started this view (handed to a replica that missed it)
    new_view_msg: NewView | None = None
    #: replicas heard talking in a later view, per view; when this replica last asked
    ahead: dict[int, set[int]] = field(default_factory=dict)
    asked_at: int = -(10**9)
    #: messages refused (bad signature, wrong sender, out of window): counted, never raised
    refused: int = 0

    # -- the driving interface (voter.core.smr.Replica) ---------------------------------
    def receive(self, src: int, msg: Any, now: int) -> list[Send]:
        out = self._dispatch(src, msg, now)
        self.counts.add(out)
        return out

    def tick(self, now: int) -> list[Send]:
        """The view-change timer: no progress on a pending request for a timeout -> next view."""
        out: list[Send] = []
        if self.fetching is not None and now - self.fetch_at > self.cfg.timeout_ticks:
            out = self._send_fetch(now)
        elif self.normal:
            if self.pending and now - self.progress_at > self.cfg.timeout_ticks:
                out = self._start_view_change(self.view + 1, now)
        else:
            if now - self.fetch_at > self.cfg.timeout_ticks:  # stuck: ask what others executed
                self.fetch_at, self.tails = now, {}
                out = broadcast(Fetch(self.last_exec + 1, 0, self.node), self.cfg.nodes, self.node)
            if self.pending and now - self.vc_started > self.cfg.timeout_ticks * 2 ** min(
                self.vc_attempt, 6
            ):
                out += self._start_view_change(self.view + 1, now)
        self.counts.add(out)
        return out

    def _dispatch(self, src: int, msg: Any, now: int) -> list[Send]:
        if isinstance(msg, Request):
            return self._on_request(src, msg, now)
        if isinstance(msg, Checkpoint):
            return self._on_checkpoint(src, msg, now)
        if isinstance(msg, Fetch | Segment | AskView):
            return self._on_catch_up(src, msg, now)
        if isinstance(msg, ViewChange):
            return self._on_view_change(src, msg, now)
        if isinstance(msg, NewView):
            return self._on_new_view(src, msg, now)
        if isinstance(msg, PrePrepare | Prepare | Commit):
            if msg.view > self.view + VIEWS_AHEAD:
                return self._refuse()
            if msg.view > self.view or (msg.view == self.view and not self.normal):
                if len(self.future) < FUTURE_MAX:
                    self.future.append((src, msg))
                return self._heard_ahead(src, msg.view, now)
            if msg.view < self.view or not self._in_window(msg.seq):
                return self._refuse()
            if isinstance(msg, PrePrepare):
                return self._on_pre_prepare(src, msg, now)
            if isinstance(msg, Prepare):
                return self._on_prepare(src, msg, now)
            return self._on_commit(src, msg, now)
        return self._refuse()

    # -- helpers --------------------------------------------------------------------------
    @property
    def is_primary(self) -> bool:
        return self.cfg.primary(self.view) == self.node

    def _refuse(self) -> list[Send]:
        self.refused += 1
        return []

    def _in_window(self, seq: int) -> bool:
        return self.stable < seq <= self.stable + self.cfg.log_size

    def _signed(self, msg: Any) -> Any:
        return replace(msg, sig=sign(self.keys, self.node, msg, self.cfg.cluster))

    def _ok(self, node: int, msg: Any) -> bool:
        return verify(self.keys, node, msg, self.cfg.cluster)

    def _valid_request(self, req: Request | None) -> bool:
        if req is None:
            return False
        return req.client in self.cfg.clients and self._ok(req.client, req)

    # -- normal case ---------------------------------------------------------------------
    def _on_request(self, src: int, req: Request, now: int) -> list[Send]:
        if src != req.client or not self._valid_request(req):
            return self._refuse()
        done = self.service.done.get(req.key)
        if done is not None:  # a retransmission: the reply again
            return [Send(req.client, self._reply(req, done[0], done[1]))]
        if not room_for(self.pending, req):
            return self._refuse()
        if req.key not in self.pending:
            if not self.pending:
                self.progress_at = now
            self.pending[req.key] = req
        return self._propose() if self.is_primary and self.normal else []

    def _propose(self) -> list[Send]:
        """The primary orders every pending request it has not ordered yet, within the window."""
        out: list[Send] = []
        for key, req in list(self.pending.items()):
            if self.next_seq > self.stable + self.cfg.log_size:
                break
            if key in self.assigned:
                continue
            seq = self.next_seq
            self.next_seq += 1
            self.assigned.add(key)
            pp = self._signed(PrePrepare(self.view, seq, digest(req), req))
            self.slots.setdefault(seq, Slot()).pre_prepare = pp
            out += broadcast(pp, self.cfg.nodes, self.node)
        return out

    def _on_pre_prepare(self, src: int, pp: PrePrepare, now: int) -> list[Send]:
        if src != self.cfg.primary(self.view) or self.is_primary:
            return self._refuse()
        req = pp.request
        if req is None or digest(req) != pp.digest or not self._valid_request(req):
            return self._refuse()
        if not self._ok(src, pp):
            return self._refuse()
        slot = self.slots.setdefault(pp.seq, Slot())
        if slot.pre_prepare is not None:  # a second, different one is the primary's lie
            return [] if slot.pre_prepare.digest == pp.digest else self._refuse()
        slot.pre_prepare = pp
        if req.key not in self.service.done:
            self.pending.setdefault(req.key, req)
        return self._send_prepare(slot, pp, now)

    def _send_prepare(self, slot: Slot, pp: PrePrepare, now: int) -> list[Send]:
        prepare = self._signed(Prepare(pp.view, pp.seq, pp.digest, self.node))
        slot.prepares[self.node] = prepare
        return broadcast(prepare, self.cfg.nodes, self.node) + self._advance(pp.seq, now)

    def _on_prepare(self, src: int, p: Prepare, now: int) -> list[Send]:
        if src != p.node or p.node == self.cfg.primary(self.view) or not self._ok(src, p):
            return self._refuse()
        slot = self.slots.setdefault(p.seq, Slot())
        slot.prepares.setdefault(p.node, p)
        return self._advance(p.seq, now)

    def _on_commit(self, src: int, c: Commit, now: int) -> list[Send]:
        if src != c.node or not self._ok(src, c):
            return self._refuse()
        slot = self.slots.setdefault(c.seq, Slot())
        slot.commits.setdefault(c.node, c.digest)
        return self._advance(c.seq, now)

    def _advance(self, seq: int, now: int) -> list[Send]:
        """Prepared -> send commit; 2f+1 matching commits -> committed; then execute in order."""
        slot = self.slots[seq]
        pp, f = slot.pre_prepare, self.cfg.f
        out: list[Send] = []
        if pp is not None and not slot.prepared:
            matching = [p for p in slot.prepares.values() if p.digest == pp.digest]
            if len(matching) >= 2 * f:
                slot.prepared = True
                self.certs[seq] = Prepared(pp, tuple(sorted(matching, key=lambda p: p.node)))
                commit = self._signed(Commit(pp.view, seq, pp.digest, self.node))
                slot.commits[self.node] = pp.digest
                out += broadcast(commit, self.cfg.nodes, self.node)
        if not slot.committed:
            self._try_commit(slot)
        return out + self._execute(now)

    def _try_commit(self, slot: Slot) -> None:
        """2f+1 matching commits commit a digest. A replica that missed the pre-prepare (the
        primary withheld it) still commits it if it holds the request: 2f+1 commits mean f+1
        loyal replicas prepared it, so every later view keeps it (the view-change argument)."""
        votes: dict[bytes, int] = {}
        for d in slot.commits.values():
            votes[d] = votes.get(d, 0) + 1
        for d, n in votes.items():
            if n < 2 * self.cfg.f + 1:
                continue
            pp = slot.pre_prepare
            if pp is not None and pp.digest == d:
                slot.committed, slot.request = True, pp.request
                return
            if d == NULL_DIGEST:
                slot.committed, slot.request = True, None
                return
            req = next((r for r in self.pending.values() if digest(r) == d), None)
            if req is not None:
                slot.committed, slot.request = True, req
                return

    def _execute(self, now: int) -> list[Send]:
        out: list[Send] = []
        while (slot := self.slots.get(self.last_exec + 1)) is not None and slot.committed:
            seq = self.last_exec + 1
            req = slot.request
            result = self.service.apply(seq, req)
            self.executed.append(Executed(seq, self.view, req, result))
            self._remember(seq, self.view, req)
            self.last_exec = seq
            self.progress_at = now
            if req is not None:
                self.pending.pop(req.key, None)
                out.append(Send(req.client, self._reply(req, seq, result)))
            if seq % self.cfg.checkpoint_every == 0:
                out += self._checkpoint(seq, now)
        return out

    def _remember(self, seq: int, view: int, req: Request | None) -> None:
        self.history[seq] = (view, req)
        if len(self.history) > HISTORY_MAX:
            del self.history[min(self.history)]

    def _reply(self, req: Request, seq: int, result: str) -> Reply:
        reply = Reply(self.view, req.client, req.req, seq, result, self.node)
        return replace(reply, sig=sign(self.keys, self.node, reply, self.cfg.cluster))

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self, seq: int, now: int) -> list[Send]:
        cp = self._signed(Checkpoint(seq, self.service.state, self.node))
        self.checkpoints.setdefault(seq, {})[self.node] = cp
        return broadcast(cp, self.cfg.nodes, self.node) + self._maybe_stable(seq, now)

    def _on_checkpoint(self, src: int, cp: Checkpoint, now: int) -> list[Send]:
        k = self.cfg.checkpoint_every
        if (
            src != cp.node
            or cp.seq % k
            or not self.stable < cp.seq <= self.stable + CHECKPOINTS_AHEAD * k
        ):
            return self._refuse()
        if not self._ok(src, cp):
            return self._refuse()
        self.checkpoints.setdefault(cp.seq, {}).setdefault(cp.node, cp)
        out = self._maybe_stable(cp.seq, now)
        return out + (self._propose() if self.is_primary and self.normal else [])

    def _maybe_stable(self, seq: int, now: int) -> list[Send]:
        """2f+1 matching checkpoints: collect garbage below them, or, if this replica has not
        executed that far (it missed messages), fetch what it missed."""
        if seq <= self.stable:
            return []
        by_state: dict[bytes, list[Checkpoint]] = {}
        for c in self.checkpoints[seq].values():
            by_state.setdefault(c.state, []).append(c)
        state, proof = max(by_state.items(), key=lambda kv: len(kv[1]))
        if len(proof) < 2 * self.cfg.f + 1:
            return []
        proof_t = tuple(sorted(proof, key=lambda c: c.node))
        if seq <= self.last_exec:
            if self.node in {c.node for c in proof}:
                self._set_stable(seq, proof_t)
            return []
        if self.fetching is None or self.fetching[0] < seq:
            self.fetching = (seq, state, proof_t)
            return self._send_fetch(now)
        return []

    def _set_stable(self, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        self.stable, self.proof = seq, proof
        self.slots = {s: x for s, x in self.slots.items() if s > seq}
        self.certs = {s: c for s, c in self.certs.items() if s > seq}
        self.checkpoints = {s: c for s, c in self.checkpoints.items() if s >= seq}

    # -- catch-up: a replica that missed messages (lost frames, a partition) -----------------
    def _send_fetch(self, now: int) -> list[Send]:
        assert self.fetching is not None
        seq, _, proof = self.fetching
        self.fetch_at = now
        ask = Fetch(self.last_exec + 1, seq, self.node)
        return [Send(c.node, ask) for c in proof if c.node != self.node]

    def _on_catch_up(self, src: int, msg: Fetch | Segment | AskView, now: int) -> list[Send]:
        if src != msg.node:
            return self._refuse()
        if isinstance(msg, AskView):
            nv = self.new_view_msg
            return [Send(src, nv)] if nv is not None and nv.view >= msg.view else []
        if isinstance(msg, Fetch):
            last = msg.last or min(self.last_exec, msg.first + HISTORY_MAX - 1)  # 0: all I have
            span = range(msg.first, last + 1)
            if not 0 < len(span) <= HISTORY_MAX or any(s not in self.history for s in span):
                return []
            return [Send(src, Segment(msg.first, tuple(self.history[s] for s in span), self.node))]
        if self.fetching is None:
            return self._on_tail(msg, now)
        return self._on_segment(msg, now)

    def _on_tail(self, seg: Segment, now: int) -> list[Send]:
        """Execute, in order, each sequence number for which f+1 replicas sent the same request:
        one of them is loyal, and a loyal replica executes only what committed."""
        if seg.first != self.last_exec + 1:
            return []
        self.tails[seg.node] = seg
        k = 0
        while True:
            votes: dict[bytes, list[tuple[int, Request | None]]] = {}
            for t in self.tails.values():
                if k < len(t.entries):
                    votes.setdefault(digest(t.entries[k][1]), []).append(t.entries[k])
            best = max(votes.values(), key=len, default=[])
            if len(best) < self.cfg.f + 1:
                break
            view, req = best[0]
            n = self.last_exec + 1
            self.executed.append(Executed(n, view, req, self.service.apply(n, req)))
            self._remember(n, view, req)
            if req is not None:
                self.pending.pop(req.key, None)
            self.last_exec, self.progress_at, k = n, now, k + 1
        if k:
            self.tails = {}
            self.slots = {s: x for s, x in self.slots.items() if s > self.last_exec}
        return []

    def _on_segment(self, seg: Segment, now: int) -> list[Send]:
        """Execute a fetched segment if replaying it ends in the certified state, else refuse."""
        if self.fetching is None or seg.first != self.last_exec + 1:
            return []
        seq, state, proof = self.fetching
        if seg.first + len(seg.entries) - 1 != seq:
            return self._refuse()
        trial = Service(self.service.state)
        for k, (_, req) in enumerate(seg.entries):
            trial.apply(seg.first + k, req)
        if trial.state != state:
            return self._refuse()  # a faulty replica's segment: another will answer the retry
        for k, (view, req) in enumerate(seg.entries):
            n = seg.first + k
            self.executed.append(Executed(n, view, req, self.service.apply(n, req)))
            self._remember(n, view, req)
            if req is not None:
                self.pending.pop(req.key, None)
        self.last_exec, self.fetching, self.progress_at = seq, None, now
        self._set_stable(seq, proof)
        return self._execute(now)

    def _heard_ahead(self, src: int, view: int, now: int) -> list[Send]:
        """f+1 replicas in later views: one is loyal and entered one, so ask them for its
        new-view (signed by that view's primary, checked like any other)."""
        self.ahead.setdefault(view, set()).add(src)
        senders = {n for v, s in self.ahead.items() if v >= self.view for n in s}
        if len(senders) < self.cfg.f + 1 or now - self.asked_at <= self.cfg.timeout_ticks:
            return []
        self.asked_at = now
        ask = AskView(self.view + (1 if self.normal else 0), self.node)
        return [Send(n, ask) for n in sorted(senders)]

    # -- view change -----------------------------------------------------------------------
    def _start_view_change(self, view: int, now: int) -> list[Send]:
        self.view, self.normal = view, False
        self.vc_started, self.vc_attempt = now, self.vc_attempt + 1
        prepared = tuple(self.certs[s] for s in sorted(self.certs) if s > self.stable)
        vc = self._signed(ViewChange(view, self.stable, self.proof, prepared, self.node))
        self.changes.setdefault(view, {})[self.node] = vc
        return broadcast(vc, self.cfg.nodes, self.node) + self._try_new_view(view, now)

    def _on_view_change(self, src: int, vc: ViewChange, now: int) -> list[Send]:
        if src != vc.node or vc.view < self.view or (vc.view == self.view and self.normal):
            return self._refuse()
        if not self._valid_view_change(vc):
            return self._refuse()
        self.changes.setdefault(vc.view, {}).setdefault(vc.node, vc)
        # f+1 replicas want views above this one: one of them is loyal, so join the lowest
        above = [v for v in self.changes if v > self.view]
        senders = {n for v in above for n in self.changes[v] if n != self.node}
        if len(senders) >= self.cfg.f + 1:
            return self._start_view_change(min(above), now)
        return self._try_new_view(vc.view, now)

    def _valid_view_change(self, vc: ViewChange) -> bool:
        f = self.cfg.f
        if not self._ok(vc.node, vc):
            return False
        if vc.stable:
            cps = vc.proof
            if len({c.node for c in cps}) < 2 * f + 1 or len({(c.seq, c.state) for c in cps}) != 1:
                return False
            if cps[0].seq != vc.stable or not all(self._ok(c.node, c) for c in cps):
                return False
        return all(self._valid_cert(c, vc) for c in vc.prepared)

    def _valid_cert(self, cert: Prepared, vc: ViewChange) -> bool:
        pp, f = cert.pre_prepare, self.cfg.f
        primary = self.cfg.primary(pp.view)
        if not vc.stable < pp.seq <= vc.stable + self.cfg.log_size or pp.view >= vc.view:
            return False
        if digest(pp.request) != pp.digest or not self._ok(primary, pp):
            return False
        good = {
            p.node
            for p in cert.prepares
            if (p.view, p.seq, p.digest) == (pp.view, pp.seq, pp.digest)
            and p.node != primary
            and self._ok(p.node, p)
        }
        return len(good) >= 2 * f

    def _try_new_view(self, view: int, now: int) -> list[Send]:
        """As the next primary, with 2f+1 view changes: announce the new view and enter it."""
        got = self.changes.get(view, {})
        if self.cfg.primary(view) != self.node or view in self.sent_new_view:
            return []
        if self.view != view or self.normal or len(got) < 2 * self.cfg.f + 1:
            return []
        self.sent_new_view.add(view)
        chosen = [self.node, *sorted(n for n in got if n != self.node)][: 2 * self.cfg.f + 1]
        changes = tuple(got[n] for n in sorted(chosen))
        o = tuple(self._signed(pp) for pp in reproposals(view, changes))
        nv = self._signed(NewView(view, changes, o))
        return broadcast(nv, self.cfg.nodes, self.node) + self._enter(nv, now)

    def _on_new_view(self, src: int, nv: NewView, now: int) -> list[Send]:
        """From the primary, or relayed by a replica to one that missed it (AskView): the
        primary's signature is what counts, and the view-changes inside are re-checked."""
        primary = self.cfg.primary(nv.view)
        if nv.view < self.view or (nv.view == self.view and self.normal):
            return []
        senders = {c.node for c in nv.changes}
        if len(senders) < 2 * self.cfg.f + 1 or not self._ok(primary, nv):
            return self._refuse()
        if any(c.view != nv.view or not self._valid_view_change(c) for c in nv.changes):
            return self._refuse()
        expected = reproposals(nv.view, nv.changes)
        if [replace(p, sig=b"") for p in nv.pre_prepares] != expected:
            return self._refuse()
        if not all(self._ok(primary, p) for p in nv.pre_prepares):
            return self._refuse()
        return self._enter(nv, now)

    def _enter(self, nv: NewView, now: int) -> list[Send]:
        """Start view nv.view: adopt its stable checkpoint, take its pre-prepares, resume."""
        self.view, self.normal, self.new_view_msg = nv.view, True, nv
        self.ahead = {v: s for v, s in self.ahead.items() if v > nv.view}
        self.progress_at, self.vc_attempt = now, 0
        self.counts.view_changes += 1
        self.slots, self.assigned = {}, set()
        self.changes = {v: d for v, d in self.changes.items() if v > nv.view}
        best = max(nv.changes, key=lambda c: c.stable)
        out: list[Send] = []
        if self.last_exec >= best.stable > self.stable:
            self._set_stable(best.stable, best.proof)
        elif best.stable > self.last_exec and (
            self.fetching is None or self.fetching[0] < best.stable
        ):
            # behind the new view's checkpoint (verified with the view change): fetch up to it
            self.fetching = (best.stable, best.proof[0].state, best.proof)
            out += self._send_fetch(now)
        top = max((p.seq for p in nv.pre_prepares), default=best.stable)
        self.next_seq = max(top, self.last_exec, self.stable) + 1
        for pp in nv.pre_prepares:
            if pp.request is not None:
                self.assigned.add(pp.request.key)
            slot = self.slots.setdefault(pp.seq, Slot())
            slot.pre_prepare = pp
            if not self.is_primary and self._in_window(pp.seq):
                out += self._send_prepare(slot, pp, now)
        if self.is_primary:
            out += self._propose()
        waiting, self.future = self.future, []
        for src, msg in waiting:
            out += self._dispatch(src, msg, now)
        return out


def reproposals(view: int, changes: tuple[ViewChange, ...]) -> list[PrePrepare]:
    """The new view's pre-prepares (unsigned), a function of its view changes only.

    Above the highest stable checkpoint any of them proves, every sequence number
    some certificate shows gets the request of the certificate from the highest
    view; the gaps get a null request. Any request committed in an earlier view was
    prepared by f+1 loyal replicas, one of whom is among any 2f+1 view changes, so
    it is here (PBFT's safety argument, docs/design.md).
    """
    low = max((c.stable for c in changes), default=0)
    best: dict[int, PrePrepare] = {}
    for c in changes:
        for cert in c.prepared:
            pp = cert.pre_prepare
            if pp.seq > low and (pp.seq not in best or pp.view > best[pp.seq].view):
                best[pp.seq] = pp
    top = max(best, default=low)
    out = []
    for seq in range(low + 1, top + 1):
        req = best[seq].request if seq in best else None
        out.append(PrePrepare(view, seq, digest(req), req))
    return out
