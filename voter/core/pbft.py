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

Every message is Ed25519-signed (voter.core.crypto.KeyRing, counted there):
view-change certificates must convince third parties, which MACs cannot.
Pure: no I/O, no clock (ticks are passed in), no randomness.
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
    sign,
    verify,
)

#: messages of a view not yet entered, kept until it is (a bound: TigerBeetle's "limit everything")
FUTURE_MAX = 4096


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
        if self.normal:
            if self.pending and now - self.progress_at > self.cfg.timeout_ticks:
                out = self._start_view_change(self.view + 1, now)
        elif now - self.vc_started > self.cfg.timeout_ticks * 2 ** min(self.vc_attempt, 6):
            out = self._start_view_change(self.view + 1, now)
        self.counts.add(out)
        return out

    def _dispatch(self, src: int, msg: Any, now: int) -> list[Send]:
        if isinstance(msg, Request):
            return self._on_request(src, msg, now)
        if isinstance(msg, Checkpoint):
            return self._on_checkpoint(src, msg)
        if isinstance(msg, ViewChange):
            return self._on_view_change(src, msg, now)
        if isinstance(msg, NewView):
            return self._on_new_view(src, msg, now)
        if isinstance(msg, PrePrepare | Prepare | Commit):
            if msg.view > self.view or (msg.view == self.view and not self.normal):
                if len(self.future) < FUTURE_MAX:
                    self.future.append((src, msg))
                return []
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
            self.last_exec = seq
            self.progress_at = now
            if req is not None:
                self.pending.pop(req.key, None)
                out.append(Send(req.client, self._reply(req, seq, result)))
            if seq % self.cfg.checkpoint_every == 0:
                out += self._checkpoint(seq)
        return out

    def _reply(self, req: Request, seq: int, result: str) -> Reply:
        reply = Reply(self.view, req.client, req.req, seq, result, self.node)
        return replace(reply, sig=sign(self.keys, self.node, reply, self.cfg.cluster))

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self, seq: int) -> list[Send]:
        cp = self._signed(Checkpoint(seq, self.service.state, self.node))
        self.checkpoints.setdefault(seq, {})[self.node] = cp
        self._maybe_stable(seq)
        return broadcast(cp, self.cfg.nodes, self.node)

    def _on_checkpoint(self, src: int, cp: Checkpoint) -> list[Send]:
        if src != cp.node or cp.seq % self.cfg.checkpoint_every or not self._in_window(cp.seq):
            return self._refuse()
        if not self._ok(src, cp):
            return self._refuse()
        self.checkpoints.setdefault(cp.seq, {}).setdefault(cp.node, cp)
        self._maybe_stable(cp.seq)
        return self._propose() if self.is_primary and self.normal else []

    def _maybe_stable(self, seq: int) -> None:
        """2f+1 matching checkpoints at a sequence number this replica executed: collect garbage."""
        if seq <= self.stable or seq > self.last_exec:
            return
        mine = self.checkpoints[seq].get(self.node)
        if mine is None:
            return
        proof = [c for c in self.checkpoints[seq].values() if c.state == mine.state]
        if len(proof) >= 2 * self.cfg.f + 1:
            self._set_stable(seq, tuple(sorted(proof, key=lambda c: c.node)))

    def _set_stable(self, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        self.stable, self.proof = seq, proof
        self.slots = {s: x for s, x in self.slots.items() if s > seq}
        self.certs = {s: c for s, c in self.certs.items() if s > seq}
        self.checkpoints = {s: c for s, c in self.checkpoints.items() if s >= seq}

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
        if src != self.cfg.primary(nv.view) or nv.view < self.view:
            return self._refuse()
        if nv.view == self.view and self.normal:
            return []
        senders = {c.node for c in nv.changes}
        if len(senders) < 2 * self.cfg.f + 1 or not self._ok(src, nv):
            return self._refuse()
        if any(c.view != nv.view or not self._valid_view_change(c) for c in nv.changes):
            return self._refuse()
        expected = reproposals(nv.view, nv.changes)
        if [replace(p, sig=b"") for p in nv.pre_prepares] != expected:
            return self._refuse()
        if not all(self._ok(src, p) for p in nv.pre_prepares):
            return self._refuse()
        return self._enter(nv, now)

    def _enter(self, nv: NewView, now: int) -> list[Send]:
        """Start view nv.view: adopt its stable checkpoint, take its pre-prepares, resume."""
        self.view, self.normal = nv.view, True
        self.progress_at, self.vc_attempt = now, 0
        self.counts.view_changes += 1
        self.slots, self.assigned = {}, set()
        self.changes = {v: d for v, d in self.changes.items() if v > nv.view}
        best = max(nv.changes, key=lambda c: c.stable)
        if self.last_exec >= best.stable > self.stable:
            self._set_stable(best.stable, best.proof)
        out: list[Send] = []
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
