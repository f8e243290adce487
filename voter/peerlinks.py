"""The board's serial links by peer, as the daemon's loop waits on them and writes to them.

Links with a file descriptor are waited on in select(2); the rest (pyserial URL
handlers such as loop://) are polled. A write the driver dates in the future (the
HIL link-delay fault) is held here until it is due.
"""

from __future__ import annotations

import selectors

from voter.links import Link


class PeerLinks:
    """Links to the peers, keyed by peer id, and the writes held until their due time."""

    def __init__(self, links: dict[int, Link]) -> None:
        self.by_peer = links
        self.polled: list[Link] = []
        self.held: list[tuple[float, Link, bytes]] = []

    def register(self, sel: selectors.BaseSelector) -> None:
        """Wait on every link that has a descriptor; remember the others for polling."""
        for link in self.by_peer.values():
            fd = link.fileno()
            if fd is None:
                self.polled.append(link)
            else:
                sel.register(fd, selectors.EVENT_READ, link)

    @property
    def busy(self) -> bool:
        """Links to poll or writes held: the loop must come back within half a millisecond."""
        return bool(self.polled or self.held)

    def send(self, dst: int, data: bytes, due: float, now: float) -> None:
        """Write to `dst` now, or hold the bytes until `due` (local seconds)."""
        link = self.by_peer.get(dst)
        if link is None:
            return
        if due > now:
            self.held.append((due, link, data))
        else:
            link.write(data)

    def flush_due(self, now: float) -> None:
        """Write the held bytes that are due by `now`, in the order they were held."""
        keep = []
        for due, link, data in self.held:
            if due <= now:
                link.write(data)
            else:
                keep.append((due, link, data))
        self.held = keep

    def close(self) -> None:
        for link in self.by_peer.values():
            link.close()
