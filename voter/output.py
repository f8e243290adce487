"""The board's voted output, published as JSON datagrams on a local unix socket.

Publishing never blocks and never fails the tick: with no consumer listening the
datagram is dropped and counted, and the decision is still in the decision log.
"""

from __future__ import annotations

import json
import socket
from typing import Any


class Output:
    """The local consumer's socket (`output_socket` in the config); an empty path = none."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors = 0
        self._sock: socket.socket | None = None

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

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
