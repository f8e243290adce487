"""Does a cluster fit its links? Frame sizes measured from real frames, not a formula.

One loyal tick of the cluster is run in memory with the same Board objects as
the daemons, every frame is encoded, and the largest frame of each round on any
link gives the time that round needs on an 8N1 line (10 bits per byte). The
rounds share ROUNDS_FRACTION of the period in equal slots, as in voterd.
"""

from __future__ import annotations

from dataclasses import dataclass

from voter.core.board import Board
from voter.core.frame import Frame, encoded_size
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm
from voter.testing import board_keys

#: fraction of the period given to the rounds; the rest is for deciding and logging
ROUNDS_FRACTION = 0.8


@dataclass(frozen=True)
class Budget:
    round_bytes: tuple[int, ...]  # largest frame (bytes on the wire) per round
    link_tick_bytes: int  # bytes one link direction carries per tick

    @property
    def largest_body(self) -> int:
        """The largest frame body (between delimiters), as FRAME_BYTES_MAX bounds it."""
        return max(self.round_bytes) - 1

    def round_time_s(self, baud: int, latency_s: float = 0.0) -> float:
        return max(self.round_bytes) * 10 / baud + latency_s

    def max_tick_hz(self, baud: int, latency_s: float = 0.0) -> float:
        """The highest rate whose every round's frame fits its slot."""
        rounds = len(self.round_bytes)
        return ROUNDS_FRACTION / (rounds * self.round_time_s(baud, latency_s))


def one_tick_frames(
    nodes: int, m: int, algorithm: Algorithm, channels: int, cluster: str = "sim-budget"
) -> list[list[Frame]]:
    """Every frame of one loyal tick, per round, through real Board objects.

    The readings are full-width float64 values: the largest a reading gets on the wire.
    """
    params = ic_params(nodes, m, algorithm, cluster)
    keys = board_keys(nodes, cluster)
    boards = [Board(params, i, channels, keys[i]) for i in range(nodes)]
    out = [
        b.begin_tick(1, tuple(1000.123456 + i + c for c in range(channels)))
        for i, b in enumerate(boards)
    ]
    rounds: list[list[Frame]] = []
    for _ in range(params.rounds):
        sent = [f for frames in out for f in frames]
        for f in sent:
            boards[f.dst].on_frame(f.src, f)
        rounds.append(sent)
        out = [b.next_round() for b in boards]
    return rounds


def measure(nodes: int, m: int, algorithm: Algorithm, channels: int) -> Budget:
    round_bytes: list[int] = []
    per_link: dict[tuple[int, int], int] = {}
    for sent in one_tick_frames(nodes, m, algorithm, channels):
        biggest = 0
        for f in sent:
            size = encoded_size(f)
            biggest = max(biggest, size)
            per_link[(f.src, f.dst)] = per_link.get((f.src, f.dst), 0) + size
        round_bytes.append(biggest)
    return Budget(tuple(round_bytes), max(per_link.values()))


def check_cluster(nodes: int, m: int, algorithm: Algorithm, channels: int) -> Budget:
    """The budget, or ValueError (one line) when a round's frame exceeds FRAME_BYTES_MAX."""
    from voter.core.frame import FRAME_BYTES_MAX

    budget = measure(nodes, m, algorithm, channels)
    if budget.largest_body > FRAME_BYTES_MAX:
        raise ValueError(
            f"{algorithm.upper()}({m}) with {nodes} nodes needs {budget.largest_body}-byte frames; "
            f"the frame limit is {FRAME_BYTES_MAX} bytes (use fewer nodes or a smaller m)"
        )
    return budget
