"""Ed25519 key files: format, 0600 creation, permission refusal, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from voter.keys import (
    KeyFileError,
    generate_key,
    load_signing_key,
    parse_public_key,
    public_key_hex,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_lowercase_hex_seed_mode_0600(tmp_path: Path) -> None:
    """A new key file is 64 lowercase hex chars + newline, mode 0600, matching the returned key."""
    path = tmp_path / "node0.key"
    vk = generate_key(path)
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n")
    assert text[:-1] == text[:-1].lower() and bytes.fromhex(text[:-1])
    assert _mode(path) == 0o600
    assert load_signing_key(path).verify_key == vk


def test_generate_is_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    """A umask of 0 does not widen the key file's mode."""
    old = os.umask(0)
    try:
        generate_key(tmp_path / "k")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k") == 0o600


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing key file is never overwritten, and the error says so."""
    path = tmp_path / "k"
    generate_key(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key(path)
    assert path.read_bytes() == before


def test_generate_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    """Creating a key in a folder that does not exist names the path."""
    with pytest.raises(KeyFileError, match=r"cannot create .*nope"):
        generate_key(tmp_path / "nope" / "k")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o400 | 0o004])
def test_load_refuses_group_or_other_readable_with_chmod_hint(tmp_path: Path, mode: int) -> None:
    """A key readable by group/others is refused with its mode and the chmod to run."""
    path = tmp_path / "node0.key"
    generate_key(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as exc:
        load_signing_key(path)
    msg = str(exc.value)
    assert msg == (f"{path} is readable by group/others (mode {mode:04o}); run: chmod 600 {path}")
    assert "\n" not in msg


def test_load_accepts_0400(tmp_path: Path) -> None:
    """An owner-read-only key (0400) is fine."""
    path = tmp_path / "k"
    vk = generate_key(path)
    os.chmod(path, 0o400)
    assert load_signing_key(path).verify_key == vk


def test_load_missing_file(tmp_path: Path) -> None:
    """A missing key file is named in the error."""
    with pytest.raises(KeyFileError, match=r"key file .*absent\.key does not exist"):
        load_signing_key(tmp_path / "absent.key")


def test_load_directory_is_refused(tmp_path: Path) -> None:
    """A folder where the key should be is not a key file."""
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signing_key(d)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"ab" * 31 + b"\n", "expected 64 hex characters, found 62"),
        (b"ab" * 33 + b"\n", "expected 64 hex characters, found 66"),
        (b"", "found 0"),
        (b"zz" * 32 + b"\n", "not hexadecimal"),
        (b"ab " * 21 + b"a\n", "not hexadecimal"),
        (b"\xff" * 64, "not hexadecimal"),
        (b"ab" * 32 + b"\n\n", "found 65"),
    ],
)
def test_load_malformed_content(tmp_path: Path, content: bytes, problem: str) -> None:
    """Wrong length, non-hex or binary content gives a one-line error naming the file."""
    path = tmp_path / "bad.key"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileError) as exc:
        load_signing_key(path)
    assert problem in str(exc.value) and str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_load_tolerates_crlf(tmp_path: Path) -> None:
    """A key saved by an editor with CRLF still loads to the same key."""
    seed = bytes(range(32))
    path = tmp_path / "k"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, seed.hex().encode() + b"\r\n")
    os.close(fd)
    assert bytes(load_signing_key(path)) == seed


def test_public_key_hex_round_trip_and_signatures() -> None:
    """public_key_hex/parse_public_key round-trip, and the parsed key verifies signatures."""
    sk = SigningKey(bytes(range(32)))
    text = public_key_hex(sk.verify_key)
    assert len(text) == 64 and text == text.lower()
    vk = parse_public_key(text)
    assert vk == sk.verify_key
    assert vk.verify(sk.sign(b"tick 7")) == b"tick 7"
    assert parse_public_key(text.upper()) == vk


@pytest.mark.parametrize("text", ["", "ab" * 31, "ab" * 33, "g" * 64, " " + "a" * 63])
def test_parse_public_key_rejects_bad_hex(text: str) -> None:
    """Malformed public keys raise KeyFileError, not ValueError."""
    with pytest.raises(KeyFileError, match="public key"):
        parse_public_key(text)
