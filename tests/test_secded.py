"""Hamming(72,64) SECDED words and the ECC store: round trips, every 1- and 2-bit flip."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voter.core.secded import (
    CODE_BITS,
    EccStore,
    Status,
    UncorrectableError,
    decode_word,
    encode_word,
)

ALL_ONES = (1 << 64) - 1
EDGE_WORDS = [0, ALL_ONES, *(1 << i for i in range(64)), ALL_ONES ^ 1, ALL_ONES ^ (1 << 63)]
SAMPLE_WORDS = [0, ALL_ONES, 0x0123_4567_89AB_CDEF, 0xAAAA_AAAA_AAAA_AAAA]
words64 = st.integers(min_value=0, max_value=ALL_ONES)


@given(words64)
def test_round_trip_random_words(data: int) -> None:
    """A random 64-bit word encodes to 72 bits and decodes back intact."""
    code = encode_word(data)
    assert code >> CODE_BITS == 0
    assert (data, Status.OK) == decode_word(code)


@pytest.mark.parametrize("data", EDGE_WORDS)
def test_round_trip_edge_words(data: int) -> None:
    """Zero, all ones and every single-bit word round-trip."""
    assert (data, Status.OK) == decode_word(encode_word(data))


def test_known_codewords() -> None:
    """Data bit 0 sits at position 3, covered by parities 1 and 2, plus overall parity."""
    assert 0 == encode_word(0)
    assert 0b1111 == encode_word(1)


@pytest.mark.parametrize("data", SAMPLE_WORDS)
def test_every_single_flip_is_corrected(data: int) -> None:
    """Each of the 72 single-bit flips decodes to the original data, CORRECTED."""
    code = encode_word(data)
    for bit in range(CODE_BITS):
        assert (data, Status.CORRECTED) == decode_word(code ^ (1 << bit)), bit


@pytest.mark.parametrize("data", SAMPLE_WORDS)
def test_every_double_flip_is_detected(data: int) -> None:
    """Each of the C(72,2) = 2556 double flips is reported DOUBLE, never corrected."""
    code = encode_word(data)
    pairs = list(combinations(range(CODE_BITS), 2))
    assert 2556 == len(pairs)
    for a, b in pairs:
        assert Status.DOUBLE == decode_word(code ^ (1 << a) ^ (1 << b))[1], (a, b)


@pytest.mark.parametrize("data", SAMPLE_WORDS)
def test_triple_flip_with_syndrome_past_the_word_is_detected(data: int) -> None:
    """Flips at positions 1, 8 and 64 give syndrome 73, which names no bit: DOUBLE."""
    assert Status.DOUBLE == decode_word(encode_word(data) ^ (1 << 1) ^ (1 << 8) ^ (1 << 64))[1]


@given(words64, st.integers(0, CODE_BITS - 1))
def test_random_single_flip_is_corrected(data: int, bit: int) -> None:
    """A single flip anywhere in a random word's codeword is corrected."""
    assert (data, Status.CORRECTED) == decode_word(encode_word(data) ^ (1 << bit))


@given(words64, st.sets(st.integers(0, CODE_BITS - 1), min_size=2, max_size=2))
def test_random_double_flip_is_detected(data: int, bits: set[int]) -> None:
    """A double flip anywhere in a random word's codeword is detected."""
    a, b = bits
    assert Status.DOUBLE == decode_word(encode_word(data) ^ (1 << a) ^ (1 << b))[1]


@pytest.mark.parametrize("bad", [-1, 1 << 64])
def test_encode_rejects_out_of_range(bad: int) -> None:
    """Data outside 0..2**64-1 is a caller error."""
    with pytest.raises(ValueError):
        encode_word(bad)


@pytest.mark.parametrize("bad", [-1, 1 << 72])
def test_decode_rejects_out_of_range(bad: int) -> None:
    """A codeword wider than 72 bits is a caller error."""
    with pytest.raises(ValueError):
        decode_word(bad)


def test_status_values_are_strings() -> None:
    """Status members compare equal to their lowercase names (for logs and metrics)."""
    assert ["ok", "corrected", "double"] == [s.value for s in Status]


# --- store -------------------------------------------------------------------


@given(st.binary(max_size=100))
def test_store_round_trip_random_blobs(blob: bytes) -> None:
    """Any blob, including empty and ragged lengths, comes back unchanged."""
    store = EccStore()
    store.put("k", blob)
    assert blob == store.get("k")
    assert (0, 0) == (store.corrected, store.detected)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 15, 16, 17])
def test_store_sizes_and_bit_count(size: int) -> None:
    """A blob takes one length word plus ceil(size / 8) data words of 72 bits."""
    store = EccStore()
    blob = bytes(range(1, size + 1))
    store.put("k", blob)
    assert blob == store.get("k")
    assert CODE_BITS * (1 + -(-size // 8)) == store.bit_count("k")


def test_store_trailing_zero_bytes_kept() -> None:
    """Trailing zero bytes are data, not padding: the stored length keeps them."""
    store = EccStore()
    store.put("k", b"\x00\x01\x00\x00")
    assert b"\x00\x01\x00\x00" == store.get("k")


def test_every_bit_flip_of_small_blob_is_corrected() -> None:
    """Flipping any one raw bit (length word included) is corrected by get and counted."""
    blob = b"flight-computer"
    store = EccStore()
    store.put("k", blob)
    total = store.bit_count("k")
    for bit in range(total):
        store.flip_bit("k", bit)
        assert blob == store.get("k"), bit
    assert total == store.corrected
    assert 0 == store.detected


def test_correction_is_written_back() -> None:
    """After a corrected read, a second read corrects nothing and a new flip stays single."""
    store = EccStore()
    store.put("k", b"abcdefgh")
    store.flip_bit("k", 72 + 5)
    assert b"abcdefgh" == store.get("k")
    assert 1 == store.corrected
    assert b"abcdefgh" == store.get("k")
    assert 1 == store.corrected
    # Without write-back this second flip in the same word would make a double.
    store.flip_bit("k", 72 + 40)
    assert b"abcdefgh" == store.get("k")
    assert (2, 0) == (store.corrected, store.detected)


def test_reads_of_unchanged_data_reuse_checks_and_still_find_every_flip() -> None:
    """A read of data unchanged since `put` reuses the check bytes `put` computed; a flip of
    any raw bit after a clean read (data or check bits) is still corrected, a flip undone
    before the read leaves nothing to correct, and a double in a word still raises."""
    blob = b"reused checks, same findings"
    for bit in range(CODE_BITS * 5):  # every bit of the length word and 4 data words
        store = EccStore()
        store.put("k", blob)
        assert blob == store.get("k")
        store.flip_bit("k", bit)
        assert blob == store.get("k"), bit
        assert (1, 0) == (store.corrected, store.detected), bit
        store.flip_bit("k", bit)
        store.flip_bit("k", bit)  # flipped and restored: the data equals what was written
        assert blob == store.get("k")
        assert (1, 0) == (store.corrected, store.detected), bit
    store = EccStore()
    store.put("k", blob)
    assert blob == store.get("k")
    store.flip_bit("k", CODE_BITS + 3)
    store.flip_bit("k", CODE_BITS + 30)
    with pytest.raises(UncorrectableError):
        store.get("k")
    store.put("k", blob)  # a new put replaces the data and what reads compare it with
    assert blob == store.get("k")


def test_two_flips_in_one_word_raise() -> None:
    """Two flips in the same word raise UncorrectableError naming key and word, counted."""
    store = EccStore()
    store.put("table", bytes(24))
    store.flip_bit("table", 2 * 72 + 3)
    store.flip_bit("table", 2 * 72 + 70)
    with pytest.raises(UncorrectableError, match=r"'table' word 2"):
        store.get("table")
    assert (0, 1) == (store.corrected, store.detected)


def test_two_flips_in_different_words_are_corrected() -> None:
    """One flip in each of two words is two single errors, both corrected."""
    store = EccStore()
    blob = bytes(range(20))
    store.put("k", blob)
    store.flip_bit("k", 0)
    store.flip_bit("k", 3 * 72 + 71)
    assert blob == store.get("k")
    assert (2, 0) == (store.corrected, store.detected)


def test_length_word_rewritten_to_other_valid_codeword_is_caught() -> None:
    """A many-bit hit turning the length into another valid codeword is still detected."""
    store = EccStore()
    store.put("k", b"0123456789A")
    diff = encode_word(11) ^ encode_word(40)
    for bit in range(CODE_BITS):
        if diff >> bit & 1:
            store.flip_bit("k", bit)
    with pytest.raises(UncorrectableError, match="length"):
        store.get("k")
    assert 1 == store.detected


def test_length_word_shrunk_into_nonzero_tail_is_caught() -> None:
    """A length cut short within the last word exposes nonzero bytes where padding belongs."""
    store = EccStore()
    store.put("k", b"0123456789A")
    diff = encode_word(11) ^ encode_word(10)
    for bit in range(CODE_BITS):
        if diff >> bit & 1:
            store.flip_bit("k", bit)
    with pytest.raises(UncorrectableError, match="length"):
        store.get("k")


def test_flip_bit_bad_target() -> None:
    """Flipping outside the key's bits is IndexError; an unknown key is KeyError."""
    store = EccStore()
    store.put("k", b"x")
    with pytest.raises(IndexError):
        store.flip_bit("k", store.bit_count("k"))
    with pytest.raises(IndexError):
        store.flip_bit("k", -1)
    with pytest.raises(KeyError):
        store.flip_bit("missing", 0)
    assert b"x" == store.get("k")


def test_scrub_corrects_all_keys() -> None:
    """scrub fixes single flips across keys, returns how many, and leaves nothing for get."""
    store = EccStore()
    store.put("a", b"alpha-state")
    store.put("b", b"beta")
    store.flip_bit("a", 7)
    store.flip_bit("a", 72 + 7)
    store.flip_bit("b", 100)
    assert 3 == store.scrub()
    assert 0 == store.scrub()
    assert b"alpha-state" == store.get("a")
    assert b"beta" == store.get("b")
    assert 3 == store.corrected


def test_scrub_raises_on_double() -> None:
    """scrub raises UncorrectableError on a double error and counts it."""
    store = EccStore()
    store.put("a", b"ok")
    store.put("b", b"bad")
    store.flip_bit("b", 80)
    store.flip_bit("b", 81)
    with pytest.raises(UncorrectableError, match=r"'b' word 1"):
        store.scrub()
    assert 1 == store.detected


def test_keys_contains_delete_clear() -> None:
    """keys, in, delete and clear behave like a dict of blobs."""
    store = EccStore()
    store.put("a", b"1")
    store.put("b", b"2")
    store.put("a", b"3")
    assert ["a", "b"] == store.keys()
    assert "a" in store
    assert b"3" == store.get("a")
    store.delete("a")
    assert "a" not in store
    with pytest.raises(KeyError):
        store.delete("a")
    with pytest.raises(KeyError):
        store.get("a")
    store.clear()
    assert [] == store.keys()


def test_obj_round_trip() -> None:
    """put_obj/get_obj round-trip nested msgpack data (floats, None, ints, str, bytes)."""
    store = EccStore()
    obj = {
        "tick": 5,
        "vector": [[1.0, None, 2.5], None],
        "table": {0: [b"\x00\xff", "lie"], 3: -1},
    }
    store.put_obj("state", obj)
    assert obj == store.get_obj("state")


def test_obj_survives_single_flips() -> None:
    """Single flips in a packed object's words are corrected before unpacking."""
    store = EccStore()
    obj = {"tick": 5, "vector": [[1.0, None, 2.5], None]}
    store.put_obj("state", obj)
    for bit in range(0, store.bit_count("state"), 72 + 1):
        store.flip_bit("state", bit)
    assert obj == store.get_obj("state")


def test_table_encoder_matches_the_bit_by_bit_reference() -> None:
    """The table-driven encoder equals the reference on every single-bit and random word."""
    import random

    from voter.core.secded import _encode_reference

    rng = random.Random(5)
    words = [1 << b for b in range(64)] + [rng.getrandbits(64) for _ in range(2000)]
    assert [_encode_reference(w) for w in words] == [encode_word(w) for w in words]


def _reference_get(blob: bytes, flips: list[int]) -> tuple[bytes | str, int]:
    """The store's contract, word by word with encode_word/decode_word: blob or error, corrected."""
    size = len(blob)
    padded = blob + bytes(-size % 8)
    words = [encode_word(size)] + [
        encode_word(int.from_bytes(padded[i : i + 8], "little")) for i in range(0, size, 8)
    ]
    for bit in flips:
        words[bit // CODE_BITS] ^= 1 << (bit % CODE_BITS)
    data, corrected = [], 0
    for index, code in enumerate(words):
        value, status = decode_word(code)
        if status is Status.DOUBLE:
            return f"word {index}", corrected
        corrected += status is Status.CORRECTED
        data.append(value)
    full, tail = divmod(data[0], 8)
    if full + (tail > 0) != len(data) - 1 or (tail and data[-1] >> (8 * tail)):
        return "length", corrected
    raw = b"".join(w.to_bytes(8, "little") for w in data[1:])
    return raw[: data[0]], corrected


@given(st.binary(max_size=40), st.lists(st.integers(min_value=0, max_value=10**6), max_size=6))
def test_store_layout_is_the_word_by_word_code(blob: bytes, picks: list[int]) -> None:
    """The store (systematic layout, whole-blob check) behaves exactly as decoding each
    Hamming codeword in turn would: same blob, same corrections, same word or length error."""
    store = EccStore()
    store.put("k", blob)
    flips = sorted({p % store.bit_count("k") for p in picks})
    for bit in flips:
        store.flip_bit("k", bit)
    want, corrected = _reference_get(blob, flips)
    if isinstance(want, bytes):
        assert want == store.get("k")
    else:
        with pytest.raises(UncorrectableError, match=want):
            store.get("k")
    assert corrected == store.corrected


#: A board's message table as `finish_tick` stores it (OM, N=4, readings of 3 channels).
TABLE = [[[c], [1.0 + c, 2.0, 3.0]] for c in range(4)] + [
    [[c, j], [1.0 + c, 2.0, 3.0]] for c in range(4) for j in range(4) if j != c
]


def test_multi_bit_flips_only_ever_raise_uncorrectable() -> None:
    """3 to 6 flips in one word (seeded): an object back, or UncorrectableError, never a
    decoder's exception, even where a miscorrection leaves bytes that do not unpack."""
    import random

    import msgpack

    rng = random.Random(72)
    undecodable = 0
    for trial in range(2000):
        store = EccStore()
        store.put_obj("table", TABLE)
        word = rng.randrange(store.bit_count("table") // CODE_BITS)
        for bit in rng.sample(range(CODE_BITS), rng.randint(3, 6)):
            store.flip_bit("table", word * CODE_BITS + bit)
        try:
            raw = store.get("table")  # corrects (or miscorrects) in place, or detects
        except UncorrectableError:
            continue
        try:
            msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception:  # any decoder error at all: the case under test
            undecodable += 1
            detected = store.detected
            with pytest.raises(UncorrectableError, match="table"):
                store.get_obj("table")
            assert detected + 1 == store.detected, trial
        else:
            store.get_obj("table")  # decodes (to the table or another object): no raise
    assert undecodable > 100  # the miscorrected-but-undecodable case really was exercised
