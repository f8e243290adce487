"""The board's voted output: the local unix socket, and the opt-in network outputs.

Publishing never blocks and never fails the tick: with no consumer listening the
datagram is dropped and counted, and the decision is still in the decision log.
What can be wrong with an output (no pymavlink, a busy serial port, no network in
the sandbox) is found when it is opened, at start, and said in one line
(`OutputError`); what goes wrong later is counted.

The network outputs (`voter.output_udp`, `voter.output_mavlink`) see every decided
tick, published or withheld, because they also carry the board's health; a
withheld tick's values never leave the board (it does not vouch for them).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any, Protocol

from voter.config import ClusterConfig
from voter.core.record import DecisionRecord


class OutputError(Exception):
    """An output cannot be opened (one line for the user, at start)."""


class Sink(Protocol):
    """A network output: told every decided tick, with the board's health."""

    @property
    def errors(self) -> int:
        """Datagrams or messages that could not be sent (the tick went on)."""
        ...

    def decided(self, record: DecisionRecord, health: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def board_health(record: DecisionRecord, joined_tick: int) -> dict[str, Any]:
    """What a ground tool needs to judge this board's word: in sync, withheld and why, the
    clock precision it keeps, since when it decides, and whose entries it holds as ERROR."""
    vector = record.vector if isinstance(record.vector, list) else []
    return {
        "sync": record.sync,
        "withheld": record.withheld,
        "precision_us": record.timing.get("precision_us"),
        "joined_tick": joined_tick,
        "missing": [j for j, v in enumerate(vector) if v is None],
    }


class Output:
    """The local consumer's socket (`output_socket`; "" = none) and the network sinks."""

    def __init__(self, path: str, sinks: Sequence[Sink] = ()) -> None:
        self.path = path
        self.errors = 0
        self.sinks = list(sinks)
        self._sock: socket.socket | None = None
        self._joined_tick: int | None = None

    def open(self) -> None:
        if self.path:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def publish(self, msg: dict[str, Any]) -> None:
        """The voted output of a decision the board vouches for, to the local consumer."""
        if self._sock is None:
            return
        try:
            self._sock.sendto(json.dumps(msg).encode(), self.path)
        except OSError:
            self.errors += 1  # no consumer yet: the decision is still logged

    def decided(self, record: DecisionRecord) -> None:
        """Every decided tick, published or withheld, to the network sinks."""
        if not self.sinks:
            return
        if self._joined_tick is None:
            self._joined_tick = record.tick
        health = board_health(record, self._joined_tick)
        for sink in self.sinks:
            sink.decided(record, health)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def open_outputs(cfg: ClusterConfig, node_id: int) -> tuple[list[Sink], list[str]]:
    """The network outputs configured for this board, opened; and warnings to log once.

    OutputError (one line) when one cannot be opened; what is opened is closed again.
    """
    oc = cfg.output_for(node_id)
    sinks: list[Sink] = []
    warnings: list[str] = []
    try:
        if oc.udp:
            from voter.output_udp import UdpJsonOutput

            udp = UdpJsonOutput(oc.udp, cfg.id, cfg.channels)
            sinks.append(udp)
            warnings += udp.warnings
        if oc.mavlink:
            from voter.output_mavlink import MavlinkOutput

            mav = MavlinkOutput(oc, node_id, cfg.channels, cfg.tick_hz)
            sinks.append(mav)
            warnings += mav.warnings
    except OutputError:
        for sink in sinks:
            sink.close()
        raise
    return sinks, warnings
