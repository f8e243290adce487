"""The fast paths of the engine agree with the slow, obviously-right ones they short-cut."""

from __future__ import annotations

import math
from itertools import product

import pytest

from voter.core.crypto import KeyRing, deterministic_seeds, keyring_from_seeds
from voter.core.ic import ic_params
from voter.core.monitor import vote as mon_vote
from voter.core.protocol import Algorithm, check_path, path_ok, valid_paths
from voter.core.values import Invalid, ReadingDomain
from voter.core.vote import vote_readings


@pytest.mark.parametrize(("nodes", "m", "alg"), [(4, 1, "om"), (5, 2, "sm"), (7, 2, "om")])
def test_valid_path_set_agrees_with_check_path(nodes: int, m: int, alg: str) -> None:
    """Any path of ids (or junk) is in the set exactly when check_path passes it."""
    params = ic_params(nodes, m, Algorithm(alg))
    ids = range(-1, nodes + 1)
    for me in range(nodes):
        valid = valid_paths(params, me)
        assert valid is not None
        for length in range(0, params.rounds + 2):
            for path in product(ids, repeat=length):
                for rnd in range(1, params.rounds + 1):
                    for src in range(nodes):
                        fast = path_ok(valid, rnd, src, path)
                        assert fast == (check_path(params, me, rnd, src, path) is None), path
        for junk in ([0], (0, [1]), "01", None, (True,), (0.0,)):
            assert not path_ok(valid, 1, 0, junk)


def test_valid_path_set_is_bounded() -> None:
    """A cluster with too many paths to list falls back to check_path (None), never a huge set."""
    assert valid_paths(ic_params(16, 6, Algorithm.OM), 0) is None
    assert not path_ok(None, 1, 0, (0,))


def test_reading_fast_path_matches_the_slow_one() -> None:
    """Canonical tuples pass through unchanged; everything else still goes the long way."""
    d = ReadingDomain(3)
    t = (1.0, -2.5, 3.0)
    assert d.normalize(t) is t
    assert d.normalize([1, None, 2.0]) == (1.0, None, 2.0)
    assert d.normalize((1.0, None, 2.0)) == (1.0, None, 2.0)
    for bad in ((1.0, math.nan, 2.0), (math.inf, 1.0, 2.0), (1.0, 2.0), (1.0, True, 2.0)):
        with pytest.raises(Invalid):
            d.normalize(bad)


def test_monitor_vote_matches_com_vote() -> None:
    """MON's heap selection gives COM's sorted lower median on mixed vectors."""
    vectors = [
        ((1.0, 2.0, None), None, (3.0, 1.0, None), (2.0, 2.0, 5.0)),
        ((9.0, 1.0, 1.0),),
        (None, None),
        ((4.0, 4.0, 4.0), (1.0, 9.0, 2.0), (7.0, -1.0, 3.0), (2.0, 0.0, None), (5.0, 5.0, 5.0)),
    ]
    for v in vectors:
        assert mon_vote(v, 3) == vote_readings(v, 3)


def test_keyring_raw_bindings_sign_and_verify_like_pynacl() -> None:
    """The raw-binding signatures are PyNaCl's, and a flipped bit fails verification."""
    seeds = deterministic_seeds(3)
    ring: KeyRing = keyring_from_seeds(seeds, [0, 1, 2])
    msg = b"voter tick 5"
    sig = ring.sign(1, msg)
    assert sig == ring.signing_keys[1].sign(msg).signature
    assert ring.verify(1, msg, sig)
    assert not ring.verify(2, msg, sig)
    assert not ring.verify(1, msg, bytes([sig[0] ^ 1]) + sig[1:])
    assert not ring.verify(1, msg + b"!", sig)


def test_shared_verify_cache_checks_each_signature_once() -> None:
    """Rings in one process share answers (good and bad ones), never across clusters."""
    seeds = deterministic_seeds(3)
    a, b = keyring_from_seeds(seeds, [0]), keyring_from_seeds(seeds, [1])
    b.share_verify_cache(a)
    msg = b"chain"
    sig = a.sign(0, msg)
    bad = bytes(64)
    assert a.verify(0, msg, sig) and b.verify(0, msg, sig)
    assert not a.verify(0, msg, bad) and not b.verify(0, msg, bad)
    assert (2, 0) == (a.verifies, b.verifies)
    other = keyring_from_seeds(deterministic_seeds(3, b"other"), [0])
    with pytest.raises(ValueError):
        other.share_verify_cache(a)


def test_signed_bytes_are_the_canonical_list_layout() -> None:
    """Packing tuples directly gives byte-for-byte the documented list layout."""
    import msgpack

    from voter.core.crypto import DOMAIN_TAG, signed_bytes

    for path, value in [((0,), (1.5, None, -2.0)), ((2, 0), None), ((1, 3, 0), "attack")]:
        want = msgpack.packb(
            [
                DOMAIN_TAG,
                "c",
                7,
                path[0],
                list(path),
                list(value) if value.__class__ is tuple else value,
            ],
            use_bin_type=True,
        )
        assert want == signed_bytes("c", 7, path, value)
        assert want == signed_bytes("c", 7, list(path), value)


def _written_out_inits() -> list[tuple[type, dict[str, object]]]:
    """The dataclasses whose __init__ is written out (mypyc runs a generated one
    interpreted), each with a value for every field, none of them its default."""
    from voter.core.board import TickCounters, TickReport
    from voter.core.clock import Correction, Sample
    from voter.core.driver import Actions, Outgoing, _Pending, _TickRecord
    from voter.core.frame import Frame, SyncBlock
    from voter.core.ic import Decision
    from voter.core.mode import Census
    from voter.core.protocol import Counters, Entry
    from voter.core.record import DecisionRecord

    entry = Entry((0,), (1.5,), (b"s",))
    frame = Frame(1, "c", 0, 1, 7, 1, (entry,), SyncBlock(b"dg", 3, 4, 5))
    decision = Decision(7, 1, (1.0,), ((1.0,),), (1.0,), 3, 4, 5)
    return [
        (SyncBlock, {"digest": b"d", "heard": 5, "echo_us": 6, "lag_us": 7}),
        (Entry, {"path": (0, 1), "value": (2.5,), "sigs": (b"x",)}),
        (Frame, {f: getattr(frame, f) for f in frame.__dataclass_fields__}),
        (Counters, {"sent": 1, "received": 2, "rejected": 3, "reasons": {"r": 1}}),
        (Sample, {"tick": 3, "theta": 0.5, "rtt": 0.25}),
        (
            Correction,
            {"slew": 0.1, "step": 0.2, "midpoint": 0.3, "precision": 0.4, "in_sync": False},
        ),
        (TickCounters, {"late": 1, "dropped": 2, "reasons": {"r": 2}}),
        (
            TickReport,
            {
                "decision": decision,
                "late": 1,
                "dropped": 2,
                "reasons": {"r": 3},
                "corrected": 4,
                "events": ({"event": "e"},),
                "mode_peers": frozenset({2}),
            },
        ),
        (Decision, {f: getattr(decision, f) for f in decision.__dataclass_fields__}),
        (Census, {"manifest": 1, "isolated": 2}),
        (Outgoing, {"dst": 2, "raw": b"r", "frame": frame, "due": 0.5}),
        (
            Actions,
            {
                "sends": [Outgoing(1, None, frame, 0.0)],
                "lines": [{"event": "e"}],
                "publish": [{"tick": 1}],
                "stall_s": 0.5,
                "stall_when": "before-send",
                "decided": 3,
            },
        ),
        (
            _TickRecord,
            {
                "tick": 4,
                "cum": 0.5,
                "send_lag": 0.25,
                "arrivals": {1: 0.1},
                "late": True,
                "heard": 6,
                "digest": b"d",
                "invalid": {"a": "stale"},
                "blocks": {1: SyncBlock()},
            },
        ),
        (_Pending, {"tick": 1, "record": DecisionRecord(1, 2), "output": {"o": 1}, "reason": "x"}),
        (
            DecisionRecord,
            {
                "tick": 1,
                "node": 2,
                "algorithm": "om",
                "local": [1.0],
                "vector": [[1.0]],
                "output": [1.0],
                "messages": 3,
                "late": 4,
                "dropped": 5,
                "corrected": 6,
                "reasons": {"r": 1},
                "invalid": {"a": "stale"},
                "cpu_us": 7.5,
                "timing": {"decided_us": 8},
                "sync": False,
                "published_us": 9,
                "withheld": "clock",
            },
        ),
    ]


@pytest.mark.parametrize(("cls", "values"), _written_out_inits(), ids=lambda x: str(x)[-20:])
def test_written_out_inits_are_the_dataclass_ones(cls: type, values: dict[str, object]) -> None:
    """Every field is a parameter of the same name, in field order, with the field's default."""
    import dataclasses

    fields = dataclasses.fields(cls)
    assert [f.name for f in fields] == list(values)
    by_name = cls(**values)
    by_position = cls(*values.values())
    for f in fields:
        assert getattr(by_name, f.name) == values[f.name], f.name
        assert getattr(by_position, f.name) == values[f.name], f.name
    required = {f.name: values[f.name] for f in fields if _no_default(f)}
    plain = cls(**required)
    for f in fields:
        if not _no_default(f):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            assert getattr(plain, f.name) == default, f.name
            assert getattr(plain, f.name) != values[f.name], f"{f.name}: pick a non-default value"


def _no_default(f: object) -> bool:
    import dataclasses

    assert isinstance(f, dataclasses.Field)
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def test_signed_bytes_are_packb_ones_after_a_failed_pack() -> None:
    """The one shared Packer gives msgpack.packb's bytes, also right after a pack that failed."""
    import msgpack

    from voter.core.crypto import DOMAIN_TAG, signed_bytes

    cases = [((0,), (1.0, -2.5, 3.0)), ((2, 1), None), ((3, 0, 1), "ERR"), ((1,), (1.0, None))]
    for path, value in cases:
        want = msgpack.packb((DOMAIN_TAG, "c", 7, path[0], list(path), value), use_bin_type=True)
        assert signed_bytes("c", 7, path, value) == want
        with pytest.raises(TypeError):
            signed_bytes("c", 7, (0, object()), (1.0,))  # type: ignore[arg-type]
        assert signed_bytes("c", 7, path, value) == want


def test_stored_vector_bytes_are_those_of_its_json_form() -> None:
    """The board stores the agreed vector and V as they are: msgpack packs their tuples as
    the lists they were once copied into, byte for byte, so the ECC store holds the same."""
    import msgpack

    from voter.core.board import Board
    from voter.core.ic import as_json_vector
    from voter.core.monitor import sm_table
    from voter.simkeys import board_keys

    params = ic_params(4, 1, Algorithm.SM, "c")
    keys = board_keys(4, "c")
    board = Board(params, 0, 3, keys[0])
    board.begin_tick(1, (1.0, None, 3.0))
    board.next_round()
    report = board.finish_tick()
    vector = report.decision.vector
    assert any(type(v) is tuple for v in vector) and None in vector
    want = msgpack.packb(as_json_vector(vector), use_bin_type=True)
    assert board.store.get("vector") == want
    # and the SM table (V per commander) as the lists it was once copied into
    accepted = {0: [(1.0, None, 3.0)], 1: [(2.0, 5.0, 6.0), "x", None], 2: []}
    lists = [[c, [list(v) if type(v) is tuple else v for v in vs]] for c, vs in accepted.items()]
    packed = msgpack.packb(sm_table(accepted), use_bin_type=True)
    assert packed == msgpack.packb(lists, use_bin_type=True)
