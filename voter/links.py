"""Framed links to the peers: COBS frames split out of a byte link, drops counted, never raised.

A `Link` sits on any `voter.bytelink.ByteLink`: the daemon opens a pyserial port
(`SerialLink`: a UART, a USB adapter, a pty path, `loop://`), the simulator hands
it a `MemoryLink`. Reads take whatever arrived and split on 0x00 here; a broken or
full line is a counted error, because the peer at its far end may simply be dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voter.bytelink import ByteLink, LinkClosed, LinkFull, PortError, SerialLink
from voter.core.frame import FrameSplitter
from voter.core.smr_wire import LinkSplitter


class LinkError(Exception):
    """A port that cannot be opened (busy, missing, no permission): one line for the user."""


@dataclass
class Link:
    peer: int
    url: str
    wire: ByteLink
    #: this link's cluster: a frame from another one fails its CRC; a LinkSplitter also
    #: takes command-log frames (a cluster with [replication])
    splitter: FrameSplitter | LinkSplitter
    bytes_in: int = 0
    bytes_out: int = 0
    write_errors: int = 0
    read_errors: int = 0

    @classmethod
    def open(
        cls,
        peer: int,
        url: str,
        baud: int,
        cluster: str,
        write_timeout_s: float = 0.05,
        command_log: bool = False,
    ) -> Link:
        try:
            wire = SerialLink.open(url, baud, write_timeout_s)
        except PortError as e:
            raise LinkError(f"link to node {peer}: {e}") from None
        splitter = LinkSplitter(cluster) if command_log else FrameSplitter(cluster)
        return cls(peer, url, wire, splitter)

    def fileno(self) -> int | None:
        return self.wire.fileno()

    def read_frames(self) -> list[Any]:
        """Everything that arrived since the last call, as frames and drops (Frame | Drop;
        with a LinkSplitter also SmrFrame | Fragment, which the daemon routes)."""
        try:
            data = self.wire.read()
        except LinkClosed:
            self.read_errors += 1
            return []
        if not data:
            return []
        self.bytes_in += len(data)
        return self.splitter.feed(data)

    def write(self, data: bytes) -> bool:
        """Send bytes; a full or broken link is counted, never raised (the peer may be dead)."""
        try:
            self.wire.write(data)
        except (LinkFull, LinkClosed):
            self.write_errors += 1
            return False
        self.bytes_out += len(data)
        return True

    def close(self) -> None:
        self.wire.close()
