"""What both command-log protocols hold: requests, replies, the replicated service, sends, counts.

PBFT (`voter.core.pbft`, Byzantine, N = 3f+1) and the crash-only Multi-Paxos
(`voter.core.paxos`, N = 2f+1) order the same client requests, execute them on
the same service and answer with the same replies, so the simulator, the
checker and the cost table treat them alike. Pure: no I/O, no clock (time is a
tick number passed in), no randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Protocol

import msgpack

from voter.core.crypto import KeyRing

#: Domain tag of every signed command-log message (never valid as an SM chain signature).
SMR_DOMAIN = b"voter/smr/1"
#: The digest that stands for a null request (a sequence number a new view fills with nothing).
NULL_DIGEST = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class Request:
    """A client's command: `op`, numbered `req` by client `client` (who signs it under PBFT)."""

    client: int
    req: int
    op: str
    sig: bytes = b""

    @property
    def key(self) -> tuple[int, int]:
        return (self.client, self.req)

    def command(self) -> dict[str, Any]:
        """The `command` of a commit event (SPEC.md): what the client asked for."""
        return {"client": self.client, "req": self.req, "op": self.op}


@dataclass(frozen=True, slots=True)
class Reply:
    """A replica's answer to the client: the result of executing request `req` at `seq`."""

    view: int
    client: int
    req: int
    seq: int
    result: str
    node: int
    sig: bytes = b""


def _plain(x: Any) -> Any:
    """A message as nested tuples for msgpack: dataclasses by kind and fields, signatures kept."""
    if is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, *(_plain(getattr(x, f.name)) for f in fields(x)))
    if isinstance(x, tuple | list):
        return tuple(_plain(v) for v in x)
    return x


def signed_bytes(msg: Any, cluster: str) -> bytes:
    """The bytes a sender signs: the domain, the cluster, the kind and every field but its own sig.

    Messages nested in a message (certificates in a view change) go in with their
    own signatures, so a certificate cannot be altered after it was signed.
    """
    body = tuple(_plain(getattr(msg, f.name)) for f in fields(msg) if f.name != "sig")
    packed: bytes = msgpack.packb(
        (SMR_DOMAIN, cluster, type(msg).__name__, body), use_bin_type=True
    )
    return packed


def digest(request: Request | None) -> bytes:
    """What prepares and commits vote on: SHA-256 of the request (signature included)."""
    if request is None:
        return NULL_DIGEST
    return hashlib.sha256(msgpack.packb(_plain(request), use_bin_type=True)).digest()


@dataclass(frozen=True, slots=True)
class Send:
    """One message to one destination (a replica id, or the client's id)."""

    dst: int
    msg: Any


@dataclass(frozen=True, slots=True)
class Executed:
    """One sequence number a replica executed: the source of its `commit` log event."""

    seq: int
    view: int
    request: Request | None
    result: str

    def event(self, node: int, tick: int) -> dict[str, Any]:
        """The decision-log line (SPEC.md `commit` event; `result` is an addition)."""
        return {
            "event": "commit",
            "node": node,
            "tick": tick,
            "seq": self.seq,
            "view": self.view,
            "command": None if self.request is None else self.request.command(),
            "result": self.result,
        }


@dataclass
class Service:
    """The replicated state machine: a hash chain over the executed sequence, exactly once.

    The state after sequence number n is SHA-256(previous state || n || request
    digest), null requests and repeats included, so a state names the whole
    sequence up to n: a log segment can be checked against a certified state by
    replaying it (PBFT's catch-up). The result of a request is the first 16 hex
    digits of the state after it, so two replicas agree on a result only when
    they executed the same commands in the same order; a request ordered twice
    (two views) runs once and answers its first result again.
    """

    state: bytes = b"\x00" * 32
    done: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)

    def apply(self, seq: int, request: Request | None) -> str:
        self.state = hashlib.sha256(self.state + seq.to_bytes(8, "big") + digest(request)).digest()
        if request is None:
            return self.state.hex()[:16]
        old = self.done.get(request.key)
        if old is not None:
            return old[1]
        result = self.state.hex()[:16]
        self.done[request.key] = (seq, result)
        return result


@dataclass
class Counts:
    """Messages this replica sent, per kind: the engine's own counts (docs/design.md)."""

    sent: dict[str, int] = field(default_factory=dict)
    view_changes: int = 0

    def add(self, sends: Iterable[Send]) -> None:
        for s in sends:
            kind = type(s.msg).__name__
            self.sent[kind] = self.sent.get(kind, 0) + 1

    @property
    def messages(self) -> int:
        return sum(self.sent.values())


class Replica(Protocol):
    """What the simulator (and later the daemon loop) drives: messages and ticks in, sends out."""

    node: int
    view: int
    #: False while changing view
    normal: bool
    counts: Counts
    executed: list[Executed]
    service: Service
    last_exec: int
    pending: dict[tuple[int, int], Request]

    def receive(self, src: int, msg: Any, now: int) -> list[Send]: ...

    def tick(self, now: int) -> list[Send]: ...


#: Requests a replica holds unanswered for one client. A client may pipeline (the log orders
#: 2K = 32 at a time under PBFT), so the bound is far above any window; a client past it is
#: faulty or runaway, and without a bound its fresh request numbers would grow every
#: replica's memory without end. Refused and counted.
PENDING_PER_CLIENT = 1024


def room_for(pending: dict[tuple[int, int], Request], req: Request) -> bool:
    """Whether `req` may wait in `pending`: already there, or its client is under the bound."""
    if req.key in pending:
        return True
    return sum(1 for client, _ in pending if client == req.client) < PENDING_PER_CLIENT


def broadcast(msg: Any, nodes: int, me: int) -> list[Send]:
    return [Send(j, msg) for j in range(nodes) if j != me]


def sign(keys: KeyRing, node: int, msg: Any, cluster: str) -> bytes:
    return keys.sign(node, signed_bytes(msg, cluster))


def verify(keys: KeyRing, node: int, msg: Any, cluster: str) -> bool:
    sig = getattr(msg, "sig", b"")
    return isinstance(sig, bytes) and keys.verify(node, signed_bytes(msg, cluster), sig)
