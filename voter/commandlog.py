"""The board's replicated command log in voterd: the PBFT port, its command socket, its slot.

Built by `voter.voterd` when cluster.toml has a [replication] table; the loop
(`voter.daemon`) hands it command-log frames as they are read and calls `slot`
once per tick right after the agreement decided (docs/design.md, Command log).
The port (`voter.core.smr_port`) does the protocol; this module does the I/O:
the links' writes, the decision log's `commit` lines and the unix socket
`voter command send` talks to. The socket is SOCK_SEQPACKET: a client
connects (the answer needs no address of its own, so it works across the
service's private network namespace and /tmp) and sends commands as JSON
packets ``{"op": "...", "id": ...}`` (`id` optional, an integer or a string the
answer echoes, so one connection may have many commands in flight). Each gets
``{"ok": true, "id", "req", "seq", "result", "tick"}`` on the same connection
once f+1 replicas replied alike, or at once ``{"ok": false, "id", "error"}``
for a command the board refuses. At most CONNECTIONS_MAX clients at a time.

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
from voter.core.pbft import PbftConfig, PbftReplica
from voter.core.smr_port import SmrPort
from voter.core.smr_wire import Fragment, SmrFrame
from voter.decision_log import DecisionLog
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
    """The PBFT replica and port of board `me` ([replication] must be set); its requests are
    numbered from `first_req` (voterd: the wall clock in µs, so a restart never repeats one)."""
    rep = cfg.replication
    assert rep is not None
    timeout = rep.timeout_ticks or view_timeout_ticks(slot_bytes)
    pcfg = PbftConfig(
        cfg.n,
        clients=tuple(range(cfg.n)),  # each board is the client of the commands sent to it
        timeout_ticks=timeout,
        checkpoint_every=rep.checkpoint_every,
        cluster=cfg.id,
    )
    peers = tuple(n.id for n in cfg.nodes if n.id != me)
    return SmrPort(
        me,
        PbftReplica(me, pcfg, keys),
        cfg.id,
        peers,
        slot_bytes,
        resend_ticks=2 * timeout,
        next_req=first_req,
    )


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

    def totals(self) -> dict[str, Any]:
        """The `command-log` line at stop: what this board's replica sent, dropped, signed."""
        rep, port = self.port.replica, self.port
        return {
            "view": rep.view,
            "view_changes": rep.counts.view_changes,
            "executed": rep.last_exec,
            "messages": dict(sorted(rep.counts.sent.items())),
            "refused": rep.refused,
            "dropped": dict(sorted(port.drops.items())),
            "bytes_sent": port.bytes_sent,
            # the board's key ring: the agreement's own signatures too under SM
            "signatures": rep.keys.signs,
            "verifies": rep.keys.verifies,
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
