"""The decoder at soak sizes: corrupted real frames (none may be accepted) and fuzzed inputs.

The corpus is real traffic: four `Board`s of OM(1) and of SM(1) (real Ed25519
signatures) exchange a few ticks of simulated air data, and round-1 frames carry
timing blocks as on the wire. Corruption goes through the links' own
`FrameSplitter` (COBS, CRC-32C, the parser): an accepted frame that is not the
one sent is an undetected error. The fuzz loop is seeded (replayable) and feeds
random bytes, damaged frames and *re-sealed* damaged payloads (valid COBS and
CRC, so the parser itself is exercised, not only the CRC) into the decoder; any
exception that escapes is counted with its first example.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from voter.core.board import Board
from voter.core.drops import Drop
from voter.core.frame import Frame, FrameSplitter, SyncBlock, decode_frame, encode_frame
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm
from voter.core.seal import seal_payload, unseal_payload
from voter.sensors import SimSensor
from voter.simkeys import board_keys

NODES = 4
CHANNELS = 3
CLUSTER = "soak-frames"
Progress = Callable[[int], None] | None


def _tick_frames(boards: list[Board], tick: int, sensors: list[SimSensor]) -> list[Frame]:
    """Every frame of one tick, delivered as the links would (each round to its peers)."""
    sent: list[Frame] = []
    frames = [f for i, b in enumerate(boards) for f in b.begin_tick(tick, sensors[i].read(tick))]
    while frames:
        sent += frames
        for f in frames:
            boards[f.dst].on_frame(f.src, f)
        frames = [f for b in boards for f in b.next_round()]
    for b in boards:
        b.finish_tick()
    return sent


def frame_corpus(seed: int, ticks: int = 6) -> list[tuple[bytes, Frame]]:
    """(wire bytes, frame) of real OM(1) and SM(1) traffic, round 1 with timing blocks."""
    rng = random.Random(seed)
    out: list[tuple[bytes, Frame]] = []
    for algorithm in (Algorithm.OM, Algorithm.SM):
        params = ic_params(NODES, 1, algorithm, CLUSTER)
        keys = board_keys(NODES, CLUSTER)
        boards = [Board(params, i, CHANNELS, keys[i]) for i in range(NODES)]
        sensors = [SimSensor(CHANNELS, i, seed, 0.02) for i in range(NODES)]
        for tick in range(ticks):
            for f in _tick_frames(boards, tick, sensors):
                if f.round == 1 and tick:
                    block = SyncBlock(
                        rng.randbytes(4), rng.randrange(16), rng.randrange(20_000), 300
                    )
                    f = replace(f, sync=block)
                out.append((encode_frame(f), f))
    return out


def _damage(rng: random.Random, wire: bytes) -> bytes:
    """Bit errors as a line makes them: 1, 2, 3-8 scattered bits, or a burst of up to 16."""
    data = bytearray(wire)
    nbits = len(data) * 8
    kind = rng.random()
    if kind < 0.4:
        positions = [rng.randrange(nbits)]
    elif kind < 0.6:
        positions = rng.sample(range(nbits), 2)
    elif kind < 0.85:
        positions = rng.sample(range(nbits), rng.randint(3, 8))
    else:
        start = rng.randrange(nbits)
        positions = [p for p in range(start, min(nbits, start + rng.randint(2, 16)))]
        positions = [p for p in positions if rng.random() < 0.5] or [start]
    for p in positions:
        data[p // 8] ^= 1 << (p % 8)
    return bytes(data)


def corrupt_frames(count: int, seed: int, progress: Progress = None) -> dict[str, Any]:
    """`count` damaged frames through a fresh splitter each: rejected, or accepted (undetected)."""
    from hil.stats import proportion

    rng = random.Random(seed)
    corpus = frame_corpus(seed)
    undetected = intact = 0
    examples: list[dict[str, str]] = []
    for n in range(count):
        wire, frame = corpus[rng.randrange(len(corpus))]
        bad = _damage(rng, wire)
        splitter = FrameSplitter(CLUSTER)
        # A flipped delimiter merges the frame with the next: a 0x00 ends it as the next would.
        items = splitter.feed(bad + b"\x00")
        for item in items:
            if isinstance(item, Frame):
                if repr(item) == repr(frame):
                    intact += 1
                else:
                    undetected += 1
                    if len(examples) < 5:
                        examples.append({"sent": wire.hex(), "received": bad.hex()})
        if progress is not None and n % 1000 == 999:
            progress(1000)
    return {
        "corrupted": count,
        "corpus_frames": len(corpus),
        "accepted_wrong": undetected,
        "accepted_intact": intact,
        "undetected": proportion(undetected, count),
        "examples": examples,
    }


def _fuzz_input(rng: random.Random, corpus: list[tuple[bytes, Frame]]) -> bytes:
    """One decoder input: random bytes, a damaged body, or a damaged payload sealed anew."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(300))
    wire = corpus[rng.randrange(len(corpus))][0][:-1]
    if kind == 1:
        return _damage(rng, wire).replace(b"\x00", b"\x01")
    payload = unseal_payload(wire, CLUSTER)
    assert isinstance(payload, bytes)
    raw = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        at = rng.randrange(len(raw) + 1)
        if op == 0 and raw:
            raw[min(at, len(raw) - 1)] = rng.randrange(256)
        elif op == 1:
            raw[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del raw[at : at + rng.randint(1, 8)]
        else:
            raw = raw[:at]
    return seal_payload(bytes(raw), CLUSTER)[:-1]


def fuzz_decoder(count: int, seed: int, progress: Progress = None) -> dict[str, Any]:
    """`count` seeded inputs into `decode_frame`; results are Frames or Drops, never exceptions."""
    rng = random.Random(seed)
    corpus = frame_corpus(seed)
    frames = drops = escaped = 0
    first: str | None = None
    for n in range(count):
        data = _fuzz_input(rng, corpus)
        try:
            result = decode_frame(data, CLUSTER)
        except Exception as e:  # counting escapes is the point
            escaped += 1
            if first is None:
                first = f"{type(e).__name__}: {e} on input {data.hex()}"
            continue
        if isinstance(result, Drop):
            drops += 1
        else:
            frames += 1
        if progress is not None and n % 1000 == 999:
            progress(1000)
    return {"inputs": count, "frames": frames, "drops": drops, "escaped": escaped, "first": first}
