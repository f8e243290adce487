"""What a rejected frame or packet is: `Drop` and its reasons; no logic beyond bounding the detail.

The splitter, the seal and the frame codec all turn a peer's bad bytes into a
`Drop` (an event the daemon counts and logs, never an exception), so the type
and the reason names sit below all three: each of them imports this module and
none of them imports another just to name a drop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_DROP_REASONS",
    "DETAIL_MAX",
    "DROP_CLUSTER",
    "DROP_COBS",
    "DROP_CRC",
    "DROP_LINK",
    "DROP_SCHEMA",
    "DROP_STALE",
    "DROP_TOO_LONG",
    "DROP_VERSION",
    "Drop",
    "drop",
]

DROP_COBS = "cobs"  # the body is no COBS any encoder writes (seal)
DROP_TOO_LONG = "too-long"  # no 0x00 within the body limit (splitter, seal)
DROP_CRC = "crc"  # line noise, or another cluster's or domain's CRC (seal)
DROP_SCHEMA = "schema"  # the payload breaks the frame layout (frame)
DROP_VERSION = "version"  # another wire version (frame)
DROP_CLUSTER = "cluster"  # a frame handed over in memory names another cluster (frame)
DROP_LINK = "link"  # src/dst are not this link's (frame)
DROP_STALE = "stale"  # not the tick or round being collected (frame)
ALL_DROP_REASONS = (
    DROP_COBS,
    DROP_TOO_LONG,
    DROP_CRC,
    DROP_SCHEMA,
    DROP_VERSION,
    DROP_CLUSTER,
    DROP_LINK,
    DROP_STALE,
)

#: A peer's detail text ends up in logs; keep it bounded like everything else.
DETAIL_MAX = 120


@dataclass(frozen=True, slots=True)
class Drop:
    """A rejected frame (an event to count and log, never an exception)."""

    reason: str
    detail: str = ""


def drop(reason: str, detail: object = "") -> Drop:
    """A Drop whose detail is cut to DETAIL_MAX characters."""
    return Drop(reason, str(detail)[:DETAIL_MAX])
