"""The UDP JSON output: one datagram per decided tick, the voted values and the board's health.

The format (docs/deploy.md, "Outputs") is for ground tools and scripts: any
language reads it with a UDP socket and a JSON parser. A withheld tick still
sends its datagram, with `"output": null`: the health says why.
"""

from __future__ import annotations

import json
import math
import socket
from typing import Any

from voter.config import parse_host_port
from voter.core.record import DecisionRecord
from voter.output import OutputError

#: the datagram format's version (the "v" key); a consumer checks it
FORMAT_VERSION = 1


def udp_socket(address: str, key: str) -> tuple[socket.socket, tuple[str, int], list[str]]:
    """A non-blocking UDP socket for `address` ("HOST:PORT"), the address, and warnings.

    No socket at all (the systemd unit's RestrictAddressFamilies=AF_UNIX without the
    network drop-in) is an OutputError. A destination that cannot be reached now (no
    route yet at boot) is only a warning: the board votes on and sends when it can.
    """
    host, port = parse_host_port(address)
    host = "127.0.0.1" if host == "localhost" else host  # no look-up per datagram
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as e:
        raise OutputError(
            f"{key} {address}: cannot open a UDP socket ({e.strerror or e}); under systemd, "
            "install the network drop-in (docs/deploy.md, Outputs)"
        ) from None
    sock.setblocking(False)
    warnings: list[str] = []
    try:
        # Connecting a UDP socket sends nothing; it asks the kernel for a route now.
        sock.connect((host, port))
    except OSError as e:
        warnings.append(f"{key} {address}: {e.strerror or e} (sending anyway)")
    return sock, (host, port), warnings


def _plain(value: object) -> object:
    """JSON has no NaN or infinity: such a value goes out as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class UdpJsonOutput:
    """Sends each decided tick as one JSON datagram to a host:port (e.g. a ground station)."""

    def __init__(self, address: str, cluster: str, channels: tuple[str, ...]) -> None:
        self.address = address
        self.cluster = cluster
        self.channels = list(channels)
        self.errors = 0
        self.sock, self.dest, self.warnings = udp_socket(address, "output.udp")

    def message(self, record: DecisionRecord, health: dict[str, Any]) -> dict[str, Any]:
        """The datagram's content; a withheld tick carries no values."""
        published = record.withheld is None
        output = record.output if published and isinstance(record.output, list) else None
        vector = record.vector if published and isinstance(record.vector, list) else None
        return {
            "v": FORMAT_VERSION,
            "cluster": self.cluster,
            "tick": record.tick,
            "node": record.node,
            "channels": self.channels,
            "output": None if output is None else [_plain(x) for x in output],
            "entries": None if vector is None else len(vector) - len(health["missing"]),
            "health": health,
        }

    def decided(self, record: DecisionRecord, health: dict[str, Any]) -> None:
        data = json.dumps(self.message(record, health), separators=(",", ":")).encode()
        try:
            self.sock.sendto(data, self.dest)
        except OSError:
            self.errors += 1  # nobody listening, or no route: the decision is still logged

    def close(self) -> None:
        self.sock.close()
