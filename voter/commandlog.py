"""The board's replicated command log in voterd: the port, its command socket, its slot.

Built by `voter.voterd` when cluster.toml has a [replication] table; the loop
(`voter.daemon`) hands it command-log frames as they are read and calls `slot`
once per tick right after the agreement decided (docs/design.md, Command log).
The port (`voter.core.smr_port`) does the protocol (PBFT, or the crash-only
Multi-Paxos: [replication] protocol); this module does the I/O:
the links' writes, the decision log's `commit` lines and the unix socket
`voter command send` talks to. The socket is SOCK_SEQPACKET: a client
connects (the answer needs no address of its own, so it works across the
service's private network namespace and /tmp) and sends commands as JSON
packets ``{"op": "...", "id": ...}`` (`id` optional, an integer or a string the
answer echoes, so one connection may have many commands in flight). Each gets
``{"ok": true, "id", "req", "seq", "result", "tick"}`` on the same connection
once f+1 replicas replied alike (crash-only: once the leader replied), or at
once ``{"ok": false, "id", "error"}`` for a command the board refuses. At most CONNECTIONS_MAX
clients at a time.

Under --hil, the `silent` traitor silences the command log too: the replica
still takes what arrives, but nothing it sends leaves the board.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voter.budget import view_timeout_ticks
from voter.config import ClusterConfig
from voter.core.crypto import KeyRing
from voter.core.paxos import PaxosConfig, PaxosReplica
from voter.core.pbft import PbftConfig, PbftReplica
from voter.core.smr_port import SmrPort
from voter.core.smr_wire import Fragment, SmrFrame
from voter.decision_log import KEEP_FILES, DecisionLog
from voter.exitcodes import SetupError
from voter.peerlinks import PeerLinks

#: the selector key data of the command socket and its connections (the links' is their Link)
COMMANDS = "commands"
#: a command packet's bytes, at most
PACKET_MAX = 4096
#: clients connected at a time, at most (more: refused by closing at once)
CONNECTIONS_MAX = 16


def build_port(
    cfg: ClusterConfig, me: int, keys: KeyRing, slot_bytes: int, first_req: int = 1
) -> SmrPort:
    """The replica and port of board `me` ([replication] must be set); its requests are
    numbered from `first_req` (voterd: the wall clock in µs, so a restart never repeats one).
    Every board is a client (of the commands sent to it). Crash-only Paxos signs nothing:
    `keys` serve PBFT only."""
    rep = cfg.replication
    assert rep is not None
    timeout = rep.timeout_ticks or view_timeout_ticks(slot_bytes)
    clients = tuple(range(cfg.n))
    replica: PbftReplica | PaxosReplica
    if rep.protocol == "paxos":
        replica = PaxosReplica(me, PaxosConfig(cfg.n, clients=clients, timeout_ticks=timeout))
    else:
        pcfg = PbftConfig(
            cfg.n,
            clients=clients,
            timeout_ticks=timeout,
            checkpoint_every=rep.checkpoint_every,
            cluster=cfg.id,
        )
        replica = PbftReplica(me, pcfg, keys)
    peers = tuple(n.id for n in cfg.nodes if n.id != me)
    return SmrPort(
        me,
        replica,
        cfg.id,
        peers,
        slot_bytes,
        resend_ticks=2 * timeout,
        next_req=first_req,
    )


def last_logged_commit(path: Path, keep: int = KEEP_FILES) -> int:
    """The sequence number of the last `commit` line in decision log `path`, or in the
    files it rotated to (`path`.1, .2, ...; 0: none)."""
    for k in range(keep + 1):
        seq = _last_commit_in(path if k == 0 else path.with_name(f"{path.name}.{k}"))
        if seq:
            return seq
    return 0


def _last_commit_in(path: Path, block: int = 64 * 1024) -> int:
    """Read backwards in blocks: on a restart the log may be long, and its newest commit
    may lie behind hours of per-tick lines. A line cut by a kill -9 is skipped."""
    try:
        fh = path.open("rb")
    except OSError:
        return 0
    with fh:
        end = fh.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            chunk = fh.read(end - start) + tail
            lines = chunk.split(b"\n")
            tail = lines.pop(0) if start > 0 else b""  # maybe cut: joined with the next block
            for raw in reversed(lines):
                if b'"event":"commit"' not in raw:
                    continue
                with contextlib.suppress(ValueError):
                    seq = json.loads(raw).get("seq")
                    if type(seq) is int:
                        return seq
            end = start
    return 0


class CommandLog:
    """The port of one board with its command socket; the daemon's loop drives it."""

    def __init__(
        self,
        port: SmrPort,
        path: Path,
        dlog: DecisionLog,
        silent: Callable[[int], bool] | None = None,
    ) -> None:
        self.port = port
        self.path = path
        self.dlog = dlog
        #: HIL: is this board a silent traitor at this tick (its sends are dropped)
        self.silent = silent
        self.sock: socket.socket | None = None
        self.sel: selectors.BaseSelector | None = None
        self.conns: set[socket.socket] = set()
        #: request number -> the connection to answer on and the client's id of the command
        self.waiting: dict[int, tuple[socket.socket, Any]] = {}
        self.tick = 0
        #: a restarted crash-only replica still learning the log (`joined`)
        self.recovering = False

    def open(self, sel: selectors.BaseSelector) -> None:
        """Listen on the command socket (SetupError: one line, exit 69)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)  # the board's user and group may submit commands
            sock.listen(CONNECTIONS_MAX)
        except OSError as e:
            sock.close()
            raise SetupError(f"cannot listen on command socket {self.path}: {e}") from None
        sock.setblocking(False)
        self.sock, self.sel = sock, sel
        sel.register(sock, selectors.EVENT_READ, COMMANDS)

    def close(self) -> None:
        for conn in list(self.conns):
            self._hang_up(conn)
        if self.sock is not None:
            self.sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def joined(self, how: str, tick: int) -> None:
        """The daemon joined (`how`: "peers", a running cluster; "cold" or "common-start").

        A crash-only replica that joins a running cluster was restarted and has lost what
        it accepted: it recovers as a learner (`voter.core.paxos`, docs/design.md "A
        restarted board") and does not log again the commits its decision log holds. On
        a cold or common start the whole cluster starts a new log: nothing to recover.
        """
        rep = self.port.replica
        if how == "peers" and isinstance(rep, PaxosReplica):
            self.port.logged_upto = last_logged_commit(self.dlog.path)
            rep.recover()
            self.recovering = True
            me, logged = self.port.me, self.port.logged_upto
            self.dlog.event("command-log-recovering", node=me, tick=tick, logged=logged)

    def totals(self) -> dict[str, Any]:
        """The `command-log` line at stop: what this board's replica sent, dropped, signed."""
        rep, port = self.port.replica, self.port
        # the board's key ring under PBFT (the agreement's own signatures too under SM);
        # crash-only Paxos signs and verifies nothing
        keys = rep.keys if isinstance(rep, PbftReplica) else None
        return {
            "protocol": "pbft" if isinstance(rep, PbftReplica) else "paxos",
            "view": rep.view,
            "view_changes": rep.counts.view_changes,
            "executed": rep.last_exec,
            "messages": dict(sorted(rep.counts.sent.items())),
            "refused": rep.refused,
            "dropped": dict(sorted(port.drops.items())),
            "bytes_sent": port.bytes_sent,
            "signatures": 0 if keys is None else keys.signs,
            "verifies": 0 if keys is None else keys.verifies,
        }

    def on_item(self, peer: int, item: SmrFrame | Fragment) -> None:
        self.port.on_item(peer, item)

    def on_readable(self, fileobj: Any) -> None:
        """The listening socket: take a client; a connection: take its commands."""
        if fileobj is self.sock:
            self._accept()
        elif fileobj in self.conns:
            self._read(fileobj)

    def _accept(self) -> None:
        assert self.sock is not None and self.sel is not None
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self.conns) >= CONNECTIONS_MAX:
            conn.close()
            return
        conn.setblocking(False)
        self.conns.add(conn)
        self.sel.register(conn, selectors.EVENT_READ, COMMANDS)

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                raw = conn.recv(PACKET_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                raw = b""
            if not raw:  # the client hung up: its pending answers go nowhere
                self._hang_up(conn)
                return
            self._command(raw, conn)

    def _hang_up(self, conn: socket.socket) -> None:
        self.conns.discard(conn)
        if self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(conn)
        conn.close()
        self.waiting = {r: w for r, w in self.waiting.items() if w[0] is not conn}

    def _command(self, raw: bytes, conn: socket.socket) -> None:
        cid: Any = None
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError('a command is {"op": "..."} with a non-empty op')
            cid = msg.get("id")
            if cid is not None and not (type(cid) is int or (type(cid) is str and len(cid) <= 64)):
                cid = None
                raise ValueError("id must be an integer or a string of at most 64 characters")
            op = msg.get("op")
            if not isinstance(op, str) or not op:
                raise ValueError('a command is {"op": "..."} with a non-empty op')
            req = self.port.submit(op, self.tick)
        except (ValueError, UnicodeDecodeError) as e:
            self._answer(conn, {"ok": False, "id": cid, "error": str(e)[:200]})
            self.dlog.event("command-rejected", node=self.port.me, error=str(e)[:200])
            return
        self.waiting[req] = (conn, cid)
        self.dlog.event("command", node=self.port.me, tick=self.tick, req=req, op=op)

    def _answer(self, conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            conn.send(json.dumps(reply).encode())
        except OSError:  # gone, or its buffer full (a client that does not read): let it go
            self._hang_up(conn)

    def slot(self, tick: int, links: PeerLinks, now: float) -> None:
        """Tick `tick`'s command-log slot: run the replica, write its frames, log commits."""
        self.tick = tick + 1
        sends, lines = self.port.step(tick)
        if self.silent is None or not self.silent(tick):
            for dst, data in sends:
                links.send(dst, data, now, now)
        for line in lines:
            self.dlog.write(line)
        rep = self.port.replica
        if self.recovering and isinstance(rep, PaxosReplica) and not rep.recovering:
            self.recovering = False
            self.dlog.event(
                "command-log-recovered",
                node=self.port.me,
                tick=tick,
                view=rep.view,
                executed=rep.last_exec,
            )
        for a in self.port.answered():
            to = self.waiting.pop(a.req, None)
            if to is not None and to[0] in self.conns:
                reply = {"ok": True, "id": to[1], "req": a.req, "seq": a.seq, "result": a.result}
                self._answer(to[0], {**reply, "tick": tick})


class CommandError(Exception):
    """`voter command send` got no answer, or a refusal (one line for the user).

    `unavailable`: no board listens on the socket at all (exit 69, not 1)."""

    def __init__(self, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


def connect(path: Path, timeout_s: float) -> socket.socket:
    """A connection to the board listening on `path` (CommandError, unavailable, if none)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError as e:
        sock.close()
        msg = f"no board listens on {path} ({e.strerror or e})"
        raise CommandError(msg, unavailable=True) from None
    return sock


def send_command(path: Path, op: str, timeout_s: float) -> dict[str, Any]:
    """Submit `op` through the board listening on `path`; its answer (CommandError if none)."""
    sock = connect(path, timeout_s)
    try:
        sock.send(json.dumps({"op": op, "id": 1}).encode())
        raw = sock.recv(PACKET_MAX)
    except TimeoutError:
        raise CommandError(
            f"no f+1 matching replies within {timeout_s:g} s (is the cluster running?)"
        ) from None
    except OSError as e:
        raise CommandError(f"the board closed the connection ({e.strerror or e})") from None
    finally:
        sock.close()
    if not raw:
        raise CommandError("the board closed the connection (too many clients, or stopping)")
    try:
        reply = json.loads(raw)
    except ValueError:
        raise CommandError("the board's answer is not JSON") from None
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        err = reply.get("error") if isinstance(reply, dict) else None
        raise CommandError(f"the board refused the command: {err}")
    return reply
