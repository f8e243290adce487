"""What a traitor replica does to the command log: the HIL strategies on PBFT and Paxos sends.

One implementation for both places a traitor acts: the command-log simulator
(`hil.smr_sim`, which holds every replica) and voterd under --hil
(`voter.commandlog`, where the board told to be a traitor rewrites its own
replica's sends in its command-log layer, `BoardTraitor`). voter/ holds it so
the daemon needs nothing from hil/.

A traitor runs the honest replica (voter.core.pbft / voter.core.paxos) and this
module rewrites what it sends, per receiver, as the rig would: `silent` (a
silent primary), `late` (a slow one), `withhold` (each message only to the lower
half of its receivers), `lie` (prepares, commits, checkpoints and replies for a
wrong digest or result; under Paxos a changed command in every accept), `forge`
(a broken signature), `random` (per message honest, a lie or nothing, seeded)
and `equivocate`: as primary or leader a *different* request for the same
sequence number to each receiver (the other requests it holds: it cannot forge
the client's signature), and, with every other equivocating traitor (a
coalition: the simulator holds their keys; a board holds only its own, so on
boards the coalition is the board alone), a prepare and a commit for exactly
what each receiver was sent, at once. One equivocator cannot make a loyal PBFT
replica prepare (2f backup prepares must match); two of four can (2f+1 = 3
includes both), which is the bound. Under Paxos one is enough: nothing checks.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from voter.core import paxos, pbft
from voter.core.adversary import Strategy
from voter.core.crypto import KeyRing
from voter.core.smr import Reply, Request, Send, digest, sign

#: the strategies the command log gives a meaning (others are refused when a scenario is read)
SMR_STRATEGIES = frozenset(
    {
        Strategy.SILENT,
        Strategy.EQUIVOCATE,
        Strategy.LIE,
        Strategy.LATE,
        Strategy.WITHHOLD,
        Strategy.FORGE,
        Strategy.RANDOM,
    }
)


def _lie(d: bytes) -> bytes:
    return hashlib.sha256(b"lie" + d).digest()


@dataclass
class Coalition:
    """What the equivocating traitors share: what each receiver was sent, per (view, seq)."""

    keys: KeyRing
    cluster: str
    nodes: int
    members: set[int] = field(default_factory=set)
    sent: dict[tuple[int, int], dict[int, bytes]] = field(default_factory=dict)

    def signed(self, node: int, msg: Any) -> Any:
        if not hasattr(msg, "sig"):
            return msg
        return replace(msg, sig=sign(self.keys, node, msg, self.cluster))


def variant(src: int, dst: int, nodes: int, honest: Request | None, held: list[Request]) -> Any:
    """The request an equivocator sends `dst`: the rank of dst among the receivers picks one."""
    if honest is None:
        return None
    others = [j for j in range(nodes) if j != src]
    choices = [honest, *(r for r in held if r.key != honest.key)]
    return choices[others.index(dst) % len(choices)]


def equivocate(c: Coalition, src: int, s: Send, held: list[Request]) -> list[Send]:
    """An equivocator's sends for one honest send: variants as primary, echoes as backup."""
    msg, dst = s.msg, s.dst
    if isinstance(msg, pbft.PrePrepare) and dst < c.nodes:
        req = variant(src, dst, c.nodes, msg.request, held)
        d = digest(req)
        c.sent.setdefault((msg.view, msg.seq), {})[dst] = d
        out = [Send(dst, c.signed(src, replace(msg, request=req, digest=d)))]
        for t in sorted(c.members):  # the coalition votes for what dst got, before anyone else
            if t not in (dst, src):
                out.append(Send(dst, c.signed(t, pbft.Prepare(msg.view, msg.seq, d, t))))
            if t != dst:
                out.append(Send(dst, c.signed(t, pbft.Commit(msg.view, msg.seq, d, t))))
        return out
    if isinstance(msg, pbft.Prepare | pbft.Commit):
        told = c.sent.get((msg.view, msg.seq), {}).get(dst)
        return [Send(dst, msg if told is None else c.signed(src, replace(msg, digest=told)))]
    if isinstance(msg, paxos.Accept) and dst < c.nodes:
        return [Send(dst, replace(msg, request=variant(src, dst, c.nodes, msg.request, held)))]
    return [s]


def lie(c: Coalition, src: int, s: Send) -> Send:
    msg = s.msg
    if isinstance(msg, pbft.Prepare | pbft.Commit):
        return Send(s.dst, c.signed(src, replace(msg, digest=_lie(msg.digest))))
    if isinstance(msg, pbft.Checkpoint):
        return Send(s.dst, c.signed(src, replace(msg, state=_lie(msg.state))))
    if isinstance(msg, Reply):
        return Send(s.dst, c.signed(src, replace(msg, result="0" * 16)))
    if isinstance(msg, paxos.Accept) and msg.request is not None:
        r = msg.request
        return Send(s.dst, replace(msg, request=replace(r, op=r.op + "/lie")))
    return s


def forge(s: Send) -> Send:
    if hasattr(s.msg, "sig"):
        return Send(s.dst, replace(s.msg, sig=b"\x00" * 64))
    return s


@dataclass
class Adversary:
    """Rewrites one traitor's sends; `late` is an extra delay in ticks the network adds."""

    node: int
    strategy: Strategy
    coalition: Coalition
    rng: random.Random
    late_ticks: int = 0

    def rewrite(self, sends: list[Send], held: list[Request]) -> list[Send]:
        st = self.strategy
        if st == Strategy.SILENT:
            return []
        if st == Strategy.WITHHOLD:
            receivers = sorted({s.dst for s in sends if s.dst < self.coalition.nodes})
            keep = set(receivers[: len(receivers) // 2])
            return [s for s in sends if s.dst in keep or s.dst >= self.coalition.nodes]
        out: list[Send] = []
        for s in sends:
            if st == Strategy.EQUIVOCATE:
                out += equivocate(self.coalition, self.node, s, held)
            elif st == Strategy.LIE:
                out.append(lie(self.coalition, self.node, s))
            elif st == Strategy.FORGE:
                out.append(forge(s))
            elif st == Strategy.RANDOM:
                pick = self.rng.randrange(3)
                if pick == 1:
                    out.append(lie(self.coalition, self.node, s))
                elif pick == 0:
                    out.append(s)
            else:  # late: honest, delayed by the network
                out.append(s)
        return out


#: the strategies a board acts out in its own command-log layer (`late` needs the
#: simulator's network to delay; `silent` is the daemon's: it drops the slot's writes)
BOARD_STRATEGIES = SMR_STRATEGIES - {Strategy.LATE, Strategy.SILENT}


@dataclass
class BoardTraitor:
    """A board's own command-log traitor under --hil: the rewrite `SmrPort.step` calls.

    `strategy(tick)` is the traitor the fault agent was told to be at that tick (None:
    loyal); the board signs its lies with its own key (its coalition is itself). The
    coalition's memory of what it told whom grows with the run: for HIL runs only.
    """

    node: int
    nodes: int
    cluster: str
    keys: KeyRing
    strategy: Callable[[int], Strategy | None]
    rng: random.Random
    _advs: dict[Strategy, Adversary] = field(default_factory=dict)

    def __call__(self, tick: int, sends: list[Send], held: list[Request]) -> list[Send]:
        st = self.strategy(tick)
        if st is None or st not in BOARD_STRATEGIES:
            return sends
        adv = self._advs.get(st)
        if adv is None:
            members = {self.node} if st == Strategy.EQUIVOCATE else set()
            c = Coalition(self.keys, self.cluster, self.nodes, members)
            adv = self._advs[st] = Adversary(self.node, st, c, self.rng)
        return adv.rewrite(sends, held)
