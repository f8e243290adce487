"""Deterministic keys for clusters run in memory: simulation, benchmarks, budget measurement.

Production code (voterd's start-up budget, `voter cluster init`) runs real Board
objects in memory to measure its own CPU cost and frame sizes, and SM boards
need Ed25519 keys for that. The keys come from fixed seeds so a measurement is
reproducible; they never sign anything that leaves the process. This module
lives outside `voter.testing` so that production code does not import test
tooling; `voter.testing` re-exports both functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from voter.core.crypto import KeyRing, deterministic_seeds, keyring_from_seeds


def cluster_keys(
    nodes: int, traitors: Sequence[int], cluster: str = "voter"
) -> tuple[KeyRing, KeyRing]:
    """(one ring holding every node's key, the traitor coalition's ring) from fixed seeds."""
    seeds = deterministic_seeds(nodes, cluster.encode())
    return keyring_from_seeds(seeds, range(nodes)), keyring_from_seeds(seeds, traitors)


def board_keys(nodes: int, cluster: str = "voter") -> dict[int, KeyRing]:
    """One ring per node with only its own private key and its own caches, as on the boards."""
    seeds = deterministic_seeds(nodes, cluster.encode())
    return {i: keyring_from_seeds(seeds, [i]) for i in range(nodes)}
