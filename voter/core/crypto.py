"""Ed25519 signing for SM(m): the signed-bytes layout and the key ring.

Pure computation (PyNaCl); keys are handed in, nothing is read from disk here.
The signed bytes bind the domain tag, cluster, tick, commander, the signer path
up to and including the signer, and the value, so a signature cannot be replayed
into another cluster, tick, instance or chain position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgpack
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from voter.core.values import Value, canonical

DOMAIN_TAG = b"voter/sm/1"
SIGNATURE_BYTES = 64


def signed_bytes(cluster: str, tick: int, path: Sequence[int], value: Value) -> bytes:
    """The exact bytes signer path[-1] signs for `value` relayed along `path`."""
    # msgpack packs a tuple exactly as a list, so the path and a reading go in as
    # they are (the bytes are those of the canonical lists, without the copies).
    packed: bytes = _PACKER.pack(
        (DOMAIN_TAG, cluster, tick, path[0], path if type(path) is tuple else list(path), value)
        if type(value) is tuple or value is None or type(value) is str
        else (DOMAIN_TAG, cluster, tick, path[0], list(path), canonical(value))
    )
    return packed


#: `msgpack.packb(obj, use_bin_type=True)` builds a Packer per call, which cost more than the
#: packing (7 signed-bytes a node-tick under SM(1), N=4); one Packer gives the same bytes
#: (autoreset: each `pack` returns its own; msgpack resets it after a failed one, and it runs
#: under the GIL throughout, so no two calls interleave).
_PACKER = msgpack.Packer(use_bin_type=True)


@dataclass
class KeyRing:
    """Every node's verify key, plus the private keys this process may sign with.

    A loyal board holds one private key (its own). The in-process simulator and
    the adversary search hold the traitors' keys too, which is exactly what a
    colluding coalition of traitors has.

    Verification results are cached per (node, message, signature): Ed25519 is
    deterministic, so a cached answer is the answer; the cache is bounded.
    """

    verify_keys: Mapping[int, VerifyKey]
    signing_keys: dict[int, SigningKey] = field(default_factory=dict)
    cache_limit: int = 65536
    _sign_cache: dict[tuple[int, bytes], bytes] = field(default_factory=dict, repr=False)
    _verify_cache: dict[tuple[int, bytes, bytes], bool] = field(default_factory=dict, repr=False)
    # Raw key bytes for the libsodium bindings: the SigningKey/VerifyKey methods
    # wrap every call in SignedMessage objects and encoders, which cost a third
    # as much again as the Ed25519 arithmetic itself.
    _raw_sk: dict[int, bytes] = field(default_factory=dict, repr=False)
    _raw_pk: dict[int, bytes] = field(default_factory=dict, repr=False)
    signs: int = 0
    verifies: int = 0

    def can_sign(self, node: int) -> bool:
        return node in self.signing_keys

    def sign(self, node: int, message: bytes) -> bytes:
        key = (node, message)
        sig = self._sign_cache.get(key)
        if sig is None:
            self.signs += 1
            sk = self._raw_sk.get(node)
            if sk is None:
                sk = self._raw_sk[node] = crypto_sign_seed_keypair(bytes(self.signing_keys[node]))[
                    1
                ]
            sig = crypto_sign(message, sk)[:SIGNATURE_BYTES]
            if len(self._sign_cache) >= self.cache_limit:
                self._sign_cache.clear()
            self._sign_cache[key] = sig
        return sig

    def share_verify_cache(self, other: KeyRing) -> None:
        """Use `other`'s verification cache (same verify keys): for boards in one process.

        A verification's answer depends only on (verify key, message, signature),
        so boards simulated in one process can share it: each chain is checked
        once per cluster rather than once per receiving board. Real boards never
        share anything; `verifies` still counts this ring's own checks only.
        """
        if dict(self.verify_keys) != dict(other.verify_keys):
            raise ValueError("rings with different verify keys cannot share a cache")
        self._verify_cache = other._verify_cache

    def verify(self, node: int, message: bytes, signature: bytes) -> bool:
        vk = self.verify_keys.get(node)
        if vk is None or len(signature) != SIGNATURE_BYTES:
            return False
        key = (node, message, signature)
        ok = self._verify_cache.get(key)
        if ok is None:
            self.verifies += 1
            pk = self._raw_pk.get(node)
            if pk is None:
                pk = self._raw_pk[node] = bytes(vk)
            try:
                crypto_sign_open(signature + message, pk)
                ok = True
            except BadSignatureError:
                ok = False
            if len(self._verify_cache) >= self.cache_limit:
                self._verify_cache.clear()
            self._verify_cache[key] = ok
        return ok


def keyring_from_seeds(seeds: Mapping[int, bytes], own: Sequence[int]) -> KeyRing:
    """Build a ring from 32-byte Ed25519 seeds; private keys kept only for `own`."""
    signing = {n: SigningKey(s) for n, s in seeds.items()}
    return KeyRing(
        verify_keys={n: k.verify_key for n, k in signing.items()},
        signing_keys={n: signing[n] for n in own},
    )


def deterministic_seeds(nodes: int, label: bytes = b"voter-test") -> dict[int, bytes]:
    """Reproducible per-node seeds for simulations and tests (never for a real cluster)."""
    import hashlib

    return {n: hashlib.sha256(label + n.to_bytes(2, "big")).digest() for n in range(nodes)}
