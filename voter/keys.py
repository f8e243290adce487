"""Ed25519 key files: create, load and check permissions; public keys as hex.

A key file holds the 32-byte Ed25519 seed as 64 lowercase hex characters and a
newline. Files are created with mode 0600 in one O_EXCL open, so a key is never
briefly world-readable and an existing key is never overwritten. This module
must not log, print or otherwise reveal seed material, and must not loosen or
"fix" file permissions on its own: a readable key is refused, the operator
decides.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

SEED_BYTES = 32
HEX_CHARS = 2 * SEED_BYTES
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class KeyFileError(Exception):
    """A key file is missing, malformed or has unsafe permissions (one-line message)."""


def _check_hex(text: str, what: str) -> bytes:
    """Decode exactly 64 hex characters to 32 bytes; `what` names the source in errors."""
    if len(text) != HEX_CHARS:
        raise KeyFileError(f"{what}: expected {HEX_CHARS} hex characters, found {len(text)}")
    # bytes.fromhex accepts whitespace between pairs; be strict so a damaged file is noticed.
    if not set(text) <= _HEX_DIGITS:
        raise KeyFileError(f"{what}: not hexadecimal")
    return bytes.fromhex(text)


def generate_key(path: Path) -> VerifyKey:
    """Write a fresh key to `path` (mode 0600, never overwriting) and return its verify key."""
    key = SigningKey.generate()
    data = (bytes(key).hex() + "\n").encode("ascii")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from None
    try:
        # The umask can only remove bits, but make the mode explicit regardless of it.
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        # Do not leave a truncated key behind that a later load would half-accept.
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    return key.verify_key


def load_signing_key(path: Path) -> SigningKey:
    """Read a key file, refusing it unless only its owner can read it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        # fstat on the opened descriptor: the mode checked is the mode of what we read.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{path} is readable by group/others (mode {mode:04o}); run: chmod 600 {path}"
            )
        raw = os.read(fd, 4 * HEX_CHARS)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path}: not hexadecimal") from None
    # One trailing newline is the format; tolerate CRLF from an editor, nothing more.
    text = text.removesuffix("\n").removesuffix("\r")
    seed = _check_hex(text, f"key file {path}")
    return SigningKey(seed)


def public_key_hex(vk: VerifyKey) -> str:
    """The verify key as 64 lowercase hex characters (the form used in cluster.toml)."""
    return bytes(vk).hex()


def parse_public_key(text: str) -> VerifyKey:
    """Parse 64 hex characters into a verify key; raises KeyFileError on bad input."""
    raw = _check_hex(text, "public key")
    try:
        return VerifyKey(raw)
    except (CryptoError, ValueError, TypeError) as exc:
        raise KeyFileError(f"public key: {exc}") from None
