"""Tests of the seal (voter.core.seal): COBS + CRC-32C seeded by a domain, and its checks."""

from __future__ import annotations

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.frames import GOLDEN_OM, body, clusters
from voter.control import CONTROL_DOMAIN
from voter.core.cobs import cobs_decode, cobs_encode
from voter.core.drops import DROP_COBS, DROP_CRC, DROP_TOO_LONG, Drop
from voter.core.seal import CLUSTER_MAX, crc_seed, open_body, seal_payload, unseal_payload
from voter.core.splitter import FRAME_BYTES_MAX


def test_crc_is_crc32c_over_cluster_then_payload_big_endian() -> None:
    """The last four decoded bytes: CRC-32C of len(cluster) (u16), cluster, payload; big-endian."""
    raw = cobs_decode(body(GOLDEN_OM))
    covered = b"\x00\x05voter" + raw[:-4]
    assert crc32c.crc32c(covered).to_bytes(4, "big") == raw[-4:]


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=600), clusters)
def test_seal_round_trip(payload: bytes, domain: str) -> None:
    """A sealed payload ends in its only 0x00 and unseals to itself in its domain (300)."""
    wire = seal_payload(payload, domain)
    assert (0, b"\x00") == (wire[:-1].count(0), wire[-1:])
    assert payload == unseal_payload(wire[:-1], domain)


def test_an_empty_payload_does_not_unseal() -> None:
    """No frame or control packet is empty, so a body of the CRC alone is a crc drop."""
    result = unseal_payload(seal_payload(b"", "voter")[:-1], "voter")
    assert DROP_CRC == getattr(result, "reason", None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), clusters, clusters)
def test_another_domain_is_a_crc_drop(payload: bytes, ours: str, theirs: str) -> None:
    """A packet sealed for another domain fails the CRC like noise (300 examples)."""
    if ours == theirs:
        return
    result = unseal_payload(seal_payload(payload, theirs)[:-1], ours)
    assert isinstance(result, Drop)
    assert DROP_CRC == result.reason


def test_control_packets_never_pass_as_a_clusters_and_back() -> None:
    """The control line's domain and a cluster named like it still differ by CRC domain only."""
    sealed = seal_payload(b"C{}", CONTROL_DOMAIN)[:-1]
    assert b"C{}" == unseal_payload(sealed, CONTROL_DOMAIN)
    assert DROP_CRC == getattr(unseal_payload(sealed, "voter"), "reason", None)
    framed = seal_payload(b"C{}", "voter")[:-1]
    assert DROP_CRC == getattr(unseal_payload(framed, CONTROL_DOMAIN), "reason", None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01" * (FRAME_BYTES_MAX + 1), DROP_TOO_LONG),
        (b"", DROP_COBS),
        (b"\x02\x00", DROP_COBS),
        (b"\x09\x01", DROP_COBS),
        (cobs_encode(b"\x01\x02\x03\x04"), DROP_CRC),  # CRC alone, no payload
    ],
)
def test_open_body_rejects_what_is_no_sealed_body(data: bytes, reason: str) -> None:
    """Length is checked before COBS, COBS before the CRC is even cut off."""
    for opened in (open_body(data), unseal_payload(data, "voter")):
        assert isinstance(opened, Drop)
        assert reason == opened.reason


def test_unseal_accepts_read_buffers() -> None:
    """A bytearray or memoryview body (a read buffer) unseals like bytes."""
    sealed = seal_payload(b"abc\x00def", "voter")[:-1]
    got = [unseal_payload(bytearray(sealed), "voter"), unseal_payload(memoryview(sealed), "voter")]
    assert [b"abc\x00def"] * 2 == got


@pytest.mark.parametrize("domain", ["x" * (CLUSTER_MAX + 1), "\ud800", b"voter", None])
def test_crc_seed_refuses_a_domain_no_packet_can_carry(domain: object) -> None:
    """Too long, not UTF-8 encodable or not a string: our bug, a ValueError."""
    with pytest.raises(ValueError):
        crc_seed(domain)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        seal_payload(b"x", domain)  # type: ignore[arg-type]
