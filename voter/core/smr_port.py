"""One board's command-log port: its replica, bounded queues, per-tick byte budget; pure.

The daemon hands it what the links delivered (`on_item`, any time: only
queued) and, once per tick after the agreement rounds decided, calls `step`:
the queued messages go to the replica (its `now` is the tick number), its
sends are queued per peer, and at most `bytes_per_tick` wire bytes per link
leave in this tick's command-log slot (docs/design.md, Command log). Messages
larger than what a slot may carry go as fragments over several ticks. The
board is also the client of the commands submitted on it (`submit`): the
request goes to every replica and the answer is the first result f+1 replicas
sent alike (PBFT: signed requests and replies), or the leader's reply
(crash-only Paxos: unsigned, only the leader replies, nobody lies). No I/O,
no clock, no randomness; every queue is bounded and a message that does not
fit is a counted drop (PBFT retransmits, times out and catches up; Paxos
changes leader: a lost message costs time, never safety).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from voter.core import paxos
from voter.core.drops import Drop
from voter.core.paxos import PaxosReplica
from voter.core.pbft import Commit, NewView, PbftReplica, Prepare, PrePrepare, ViewChange
from voter.core.smr import Reply, Request, Send, sign, verify
from voter.core.smr_wire import (
    BATCH_MAX,
    MESSAGE_BYTES_MAX,
    Fragment,
    SmrFrame,
    decode_message,
    encode_message,
    seal_batch,
    seal_fragment,
)
from voter.core.splitter import FRAME_BYTES_MAX

#: received messages waiting for the next slot, at most (beyond: counted drops)
INBOX_MAX = 4096
#: messages one slot hands to the replica, at most (the rest wait for the next slot): bounds
#: the slot's CPU (Ed25519 verifies) in the decide phase whatever a peer floods the link with
MESSAGES_PER_SLOT = 128
#: encoded bytes queued for one peer, at most (beyond: counted drops)
OUTBOX_BYTES_MAX = 256 * 1024
#: wire bytes a batch or fragment frame adds to its messages, at most (header, array,
#: CRC, COBS for a body under 4 KiB, delimiter)
FRAME_OVERHEAD = 2 + 3 + 4 + (FRAME_BYTES_MAX // 254 + 1) + 1
#: the smallest per-tick slot that can carry a fragment
SLOT_BYTES_MIN = FRAME_OVERHEAD + 32
#: commands submitted on this board and not yet answered, at most
CLIENT_PENDING_MAX = 64
#: messages of a view: once this replica is in a later one, a queued one is not worth its bytes
_VIEW_BOUND = (
    PrePrepare,
    Prepare,
    Commit,
    ViewChange,
    NewView,
    paxos.Accept,
    paxos.Accepted,
    paxos.Decide,
    paxos.DoViewChange,
    paxos.StartView,
)


@dataclass
class Answer:
    """A command submitted on this board: the result f+1 replicas agreed on, or none yet."""

    req: int
    op: str
    submitted: int
    replies: dict[int, tuple[int, str]] = field(default_factory=dict)
    seq: int | None = None
    result: str | None = None


@dataclass
class _Reassembly:
    msg_no: int
    next_index: int
    data: bytearray


@dataclass
class SmrPort:
    """The command log of board `me`: replica, queues, slot filling, its own client."""

    me: int
    replica: PbftReplica | PaxosReplica
    cluster: str
    peers: tuple[int, ...]
    #: wire bytes per link per tick in the command-log slot
    bytes_per_tick: int
    #: ticks a submitted command is re-sent after, while unanswered (PBFT client retransmission)
    resend_ticks: int = 40
    inbox: deque[tuple[int, Any]] = field(default_factory=deque)
    outbox: dict[int, deque[tuple[Any, bytes]]] = field(default_factory=dict)
    queued: dict[int, int] = field(default_factory=dict)
    #: per peer: (msg_no, encoded message, bytes sent, next index) of a message sent in chunks
    sending: dict[int, tuple[int, bytes, int, int]] = field(default_factory=dict)
    msg_no: int = 0
    partial: dict[int, _Reassembly] = field(default_factory=dict)
    answers: dict[int, Answer] = field(default_factory=dict)
    #: this board's next request number as a client: it must never repeat, also across
    #: restarts (a replica answers a repeated (client, req) with the first one's result), so
    #: the daemon starts it from the wall clock in microseconds, as PBFT's client timestamps
    next_req: int = 1
    logged: int = 0
    #: commit lines up to this sequence number are already in the decision log (a restarted
    #: board that recovers the log replays them without logging them twice)
    logged_upto: int = 0
    #: HIL: a traitor's rewrite of this replica's sends (tick, sends, requests it holds);
    #: `voter.smr_faults.BoardTraitor`. None: loyal
    rewrite: Callable[[int, list[Send], list[Request]], list[Send]] | None = None
    drops: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        if self.bytes_per_tick < SLOT_BYTES_MIN:
            raise ValueError(f"bytes_per_tick must be at least {SLOT_BYTES_MIN}")
        for p in self.peers:
            self.outbox.setdefault(p, deque())
            self.queued.setdefault(p, 0)

    @property
    def f(self) -> int:
        return self.replica.cfg.f

    @property
    def reply_quorum(self) -> int:
        """Matching replies an answer needs: f+1 under PBFT, the leader's one when crash-only."""
        return self.f + 1 if isinstance(self.replica, PbftReplica) else 1

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    # -- in ------------------------------------------------------------------------------
    def on_item(self, peer: int, item: SmrFrame | Fragment) -> None:
        """A command-log frame read from `peer`'s link: queue its messages for the next slot."""
        if item.src != peer or item.dst != self.me:
            self._drop("link")
            return
        if isinstance(item, SmrFrame):
            for msg in item.messages:
                self._queue_in(peer, msg)
            return
        msg = self._reassemble(peer, item)
        if isinstance(msg, Drop):
            self._drop(msg.reason)
        elif msg is not None:
            self._queue_in(peer, msg)

    def _queue_in(self, peer: int, msg: Any) -> None:
        if len(self.inbox) >= INBOX_MAX:
            self._drop("inbox-full")
            return
        self.inbox.append((peer, msg))

    def _reassemble(self, peer: int, frag: Fragment) -> Any | Drop | None:
        """The whole message once its last fragment is in; a gap discards it (counted)."""
        cur = self.partial.get(peer)
        if frag.index == 0:
            if cur is not None:
                self._drop("fragment-gap")
            cur = self.partial[peer] = _Reassembly(frag.msg_no, 0, bytearray())
        elif cur is None or (cur.msg_no, cur.next_index) != (frag.msg_no, frag.index):
            self.partial.pop(peer, None)
            self._drop("fragment-gap")
            return None
        if len(cur.data) + len(frag.chunk) > MESSAGE_BYTES_MAX:
            self.partial.pop(peer, None)
            self._drop("too-long")
            return None
        cur.data += frag.chunk
        cur.next_index += 1
        if not frag.last:
            return None
        del self.partial[peer]
        return decode_message(bytes(cur.data))

    # -- the client on this board --------------------------------------------------------
    def submit(self, op: str, tick: int) -> int:
        """Submit `op` as this board's client; its request number (ValueError: too many)."""
        if len(self.answers) >= CLIENT_PENDING_MAX:
            raise ValueError(f"{CLIENT_PENDING_MAX} commands already wait for their answer")
        self._request(self.next_req, op)  # its limits and encoding: ValueError before it counts
        req_no = self.next_req
        self.next_req += 1
        self.answers[req_no] = Answer(req_no, op, tick)
        self._send_request(req_no, op, tick)
        return req_no

    def _request(self, req_no: int, op: str) -> Request:
        """The request (signed under PBFT); ValueError for an op the codec refuses (too long,
        not UTF-8)."""
        rep = self.replica
        req = Request(self.me, req_no, op)
        if isinstance(rep, PbftReplica):
            req = replace(req, sig=sign(rep.keys, self.me, req, rep.cfg.cluster))
        encode_message(req)
        return req

    def _send_request(self, req_no: int, op: str, tick: int) -> None:
        req = self._request(req_no, op)
        for p in self.peers:
            self._queue_out(p, req)
        self.inbox.append((self.me, req))

    def _on_reply(self, src: int, reply: Reply) -> None:
        rep = self.replica
        ans = self.answers.get(reply.req)
        if ans is None or ans.result is not None or reply.client != self.me or src != reply.node:
            return
        if isinstance(rep, PbftReplica) and not verify(
            rep.keys, reply.node, reply, rep.cfg.cluster
        ):
            self._drop("reply-signature")
            return
        ans.replies[reply.node] = (reply.seq, reply.result)
        votes = list(ans.replies.values())
        for v in set(votes):
            if votes.count(v) >= self.reply_quorum:
                ans.seq, ans.result = v
                return

    def answered(self) -> list[Answer]:
        """Commands that got f+1 matching replies since the last call (forgotten here)."""
        done = [a for a in self.answers.values() if a.result is not None]
        for a in done:
            del self.answers[a.req]
        return done

    # -- the slot ------------------------------------------------------------------------
    def step(self, tick: int) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]]]:
        """This tick's command-log slot: (wire bytes per peer, `commit` log lines)."""
        sends: list[Send] = []
        for _ in range(min(len(self.inbox), MESSAGES_PER_SLOT)):
            src, msg = self.inbox.popleft()
            if isinstance(msg, Reply):
                self._on_reply(src, msg)
            else:
                sends += self.replica.receive(src, msg, tick)
        sends += self.replica.tick(tick)
        if self.rewrite is not None:
            sends = self.rewrite(tick, sends, list(self.replica.pending.values()))
        for a in self.answers.values():
            waited = tick - a.submitted
            if a.result is None and waited > 0 and waited % self.resend_ticks == 0:
                self._send_request(a.req, a.op, tick)
        self._route(sends, tick)
        lines = [e.event(self.me, tick) for e in self.replica.executed if e.seq > self.logged_upto]
        self.logged += len(lines)
        self.replica.executed.clear()  # logged: a board runs for months, the list must not grow
        return [(p, w) for p in self.peers for w in self._fill(p)], lines

    def _route(self, sends: list[Send], tick: int) -> None:
        """Replies to this board's own client stay here; the rest is queued per peer."""
        for s in sends:
            if s.dst == self.me:
                if isinstance(s.msg, Reply):
                    self._on_reply(self.me, s.msg)
            elif s.dst in self.outbox:
                self._queue_out(s.dst, s.msg)

    def _queue_out(self, peer: int, msg: Any) -> None:
        try:
            data = encode_message(msg)
        except ValueError:  # a catch-up segment beyond MESSAGE_BYTES_MAX: asked again later
            self._drop("too-long")
            return
        if self.queued[peer] + len(data) > OUTBOX_BYTES_MAX:
            self._drop("outbox-full")
            return
        self.outbox[peer].append((msg, data))
        self.queued[peer] += len(data)

    def _prune(self, peer: int) -> None:
        """Drop queued messages of views this replica has left (head-of-line blocking: on a
        slow slot a view change must not wait behind the old view's traffic)."""
        queue, view = self.outbox[peer], self.replica.view
        while queue and isinstance(queue[0][0], _VIEW_BOUND) and queue[0][0].view < view:
            self._pop(peer)
            self._drop("stale")

    def _fill(self, peer: int) -> list[bytes]:
        """The frames to `peer` this tick: at most bytes_per_tick wire bytes in all."""
        budget, frames = self.bytes_per_tick, []
        queue = self.outbox[peer]
        batch: list[bytes] = []
        used = FRAME_OVERHEAD
        while budget >= SLOT_BYTES_MIN:
            chunk_max = min(budget, FRAME_BYTES_MAX) - FRAME_OVERHEAD - 12
            if peer in self.sending:
                wire = self._next_fragment(peer, chunk_max)
                frames.append(wire)
                budget -= len(wire)
                continue
            self._prune(peer)
            if not queue:
                break
            size = len(queue[0][1])
            if size + FRAME_OVERHEAD > min(self.bytes_per_tick, FRAME_BYTES_MAX):
                if batch:
                    break  # the big one starts next tick, on a slot of its own
                self.msg_no += 1
                self.sending[peer] = (self.msg_no, self._pop(peer), 0, 0)
                continue
            if used + size > budget or len(batch) >= BATCH_MAX:
                break
            batch.append(self._pop(peer))
            used += size
        if batch:
            frames.append(seal_batch(self.me, peer, batch, self.cluster))
        self.bytes_sent += sum(len(w) for w in frames)
        return frames

    def _pop(self, peer: int) -> bytes:
        _, data = self.outbox[peer].popleft()
        self.queued[peer] -= len(data)
        return data

    def _next_fragment(self, peer: int, chunk_max: int) -> bytes:
        msg_no, data, sent, index = self.sending[peer]
        chunk = data[sent : sent + chunk_max]
        last = sent + len(chunk) >= len(data)
        if last:
            del self.sending[peer]
        else:
            self.sending[peer] = (msg_no, data, sent + len(chunk), index + 1)
        return seal_fragment(self.me, peer, msg_no, index, last, chunk, self.cluster)
