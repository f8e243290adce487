"""The seal: payload -> COBS(payload + CRC-32C seeded by a domain) + 0x00, and back; it stays pure.

Links and the HIL control line share this framing, so line noise is a counted
`crc` (or `cobs`) drop on either and never a crash. The CRC is seeded with a
*domain*, never sent: a link frame's domain is its cluster id (as TTP/C folds
its membership into the CRC, a frame of another cluster fails like noise), the
control line has its own (`voter.control.CONTROL_DOMAIN`), so a packet of one
can never pass as the other on a miswired cable. The seed covers
``len(domain):u16 + domain (UTF-8)``; the CRC follows the payload big-endian.
"""

from __future__ import annotations

import functools

import crc32c

from voter.core.cobs import cobs_decode, cobs_encode
from voter.core.drops import DROP_COBS, DROP_CRC, DROP_TOO_LONG, Drop, drop
from voter.core.splitter import FRAME_BYTES_MAX

__all__ = [
    "CLUSTER_MAX",
    "CRC_BYTES",
    "crc_seed",
    "open_body",
    "payload_crc",
    "seal_payload",
    "unseal_payload",
]

#: The longest domain (cluster id) in characters.
CLUSTER_MAX = 64
CRC_BYTES = 4


def crc_seed(cluster: str) -> int:
    """CRC-32C of the domain prefix: the state the payload's CRC continues from.

    ValueError for a cluster no encoder may use (too long, or not UTF-8 encodable).
    """
    seed = _SEEDS.get(cluster) if type(cluster) is str else None
    if seed is not None:  # every frame asks twice (encode checks it, the seal uses it)
        return seed
    if type(cluster) is not str or len(cluster) > CLUSTER_MAX:
        raise ValueError(f"cluster must be a string of at most {CLUSTER_MAX} chars")
    seed = _crc_seed(cluster)
    if len(_SEEDS) < _SEEDS_MAX:
        _SEEDS[cluster] = seed
    return seed


#: Seeds of the clusters (domains) seen, for the lookup above; bounded like the cache below.
_SEEDS: dict[str, int] = {}
_SEEDS_MAX = 16


@functools.lru_cache(maxsize=16)
def _crc_seed(cluster: str) -> int:
    try:
        name = cluster.encode()
    except UnicodeEncodeError:
        raise ValueError("cluster must be encodable as UTF-8") from None
    seed: int = crc32c.crc32c(len(name).to_bytes(2, "big") + name)
    return seed


def payload_crc(payload: bytes, domain: str) -> int:
    """The CRC-32C a payload of `domain` carries (ValueError for an impossible domain)."""
    crc: int = crc32c.crc32c(payload, crc_seed(domain))
    return crc


def seal_payload(payload: bytes, cluster: str) -> bytes:
    """Wrap a raw payload as wire bytes for `cluster`: CRC-32C, COBS, the 0x00.

    `encode_frame` uses it; tests use it to build well-framed frames with wrong
    contents (a schema error must reach the schema check).
    """
    seed = _SEEDS.get(cluster) if type(cluster) is str else None  # `crc_seed`, inline
    crc: int = crc32c.crc32c(payload, crc_seed(cluster) if seed is None else seed)
    return cobs_encode(payload + crc.to_bytes(CRC_BYTES, "big")) + b"\x00"


def open_body(body: bytes | bytearray | memoryview) -> tuple[bytes, int] | Drop:
    """Length, COBS and size checks of one delimited body: (payload, the CRC it carries).

    The CRC is not checked here: `decode_frame` tells a version-1 frame from noise by it.
    """
    if len(body) > FRAME_BYTES_MAX:
        return drop(DROP_TOO_LONG, f"{len(body)} bytes, limit {FRAME_BYTES_MAX}")
    # A bytearray or memoryview read buffer becomes bytes once, so the byte
    # checks below (`in`, slicing) behave as on bytes.
    data = body if type(body) is bytes else bytes(body)
    try:
        raw = cobs_decode(data)
    except ValueError as exc:
        return drop(DROP_COBS, exc)
    if len(raw) <= CRC_BYTES:
        return drop(DROP_CRC, f"{len(raw)} bytes is too short for payload + CRC")
    return raw[:-CRC_BYTES], int.from_bytes(raw[-CRC_BYTES:], "big")


def unseal_payload(body: bytes | bytearray | memoryview, domain: str) -> bytes | Drop:
    """Invert `seal_payload` for one delimited body of `domain`: COBS, then CRC-32C.

    For packets that are not protocol frames (the HIL control line). Never raises.
    """
    opened = open_body(body)
    if isinstance(opened, Drop):
        return opened
    payload, got = opened
    want = payload_crc(payload, domain)
    if got != want:
        return drop(DROP_CRC, f"got {got:08x}, computed {want:08x}")
    return payload
