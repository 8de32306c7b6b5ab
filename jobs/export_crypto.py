"""Export files encrypted to a passphrase, written and read as a stream.

The `cryptography` package's Fernet (AES-128-CBC with HMAC-SHA256, the same construction the
database's sealed fields use) encrypts each 1 MiB chunk; the key is derived from the passphrase
with Scrypt (n=2**15, r=8, p=1) and a random 16-byte salt kept in the header. Each chunk's
plaintext starts with its number and a "last" flag, so chunks cannot be reordered, dropped or
cut off at the end without the reader noticing. Fernet needs whole messages, which is why the
file is chunked: a 100,000-case export never sits in memory whole.

File: ``HOTLINE-EXPORT-1\\n`` + salt (16 bytes) + chunks, each a 4-byte big-endian length and a
Fernet token. `python -m bot decrypt-export FILE OUT` reads it back.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"HOTLINE-EXPORT-1\n"
SALT_BYTES = 16
CHUNK = 1 << 20
_HEAD = struct.Struct(">QB")  # chunk number, last flag
_LENGTH = struct.Struct(">I")


class WrongPassphrase(ValueError):
    """The passphrase does not open the file, or the file was changed or cut short."""


def derive_key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode("utf-8")))


class EncryptingWriter:
    """A binary file-like sink: what is written is encrypted chunk by chunk into `target`."""

    def __init__(self, target: BinaryIO, passphrase: str) -> None:
        if not passphrase:
            raise ValueError("an empty passphrase")
        salt = os.urandom(SALT_BYTES)
        self._fernet = Fernet(derive_key(passphrase, salt))
        self._target = target
        self._buffer = bytearray()
        self._number = 0
        self.closed = False
        target.write(MAGIC + salt)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, data: bytes, *, last: bool) -> None:
        token = self._fernet.encrypt(_HEAD.pack(self._number, int(last)) + data)
        self._target.write(_LENGTH.pack(len(token)) + token)
        self._number += 1

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._target.flush()
            self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


def decrypt_chunks(source: BinaryIO, passphrase: str) -> Iterator[bytes]:
    """The plaintext of an encrypted export, chunk by chunk; WrongPassphrase if anything is off
    (write to a temporary file and keep it only when the last chunk was read)."""
    if source.read(len(MAGIC)) != MAGIC:
        raise WrongPassphrase("not an encrypted hotline export")
    salt = source.read(SALT_BYTES)
    fernet = Fernet(derive_key(passphrase, salt))
    expected = 0
    while True:
        length = source.read(_LENGTH.size)
        if len(length) < _LENGTH.size:
            raise WrongPassphrase("the file ends before its last chunk")
        token = source.read(_LENGTH.unpack(length)[0])
        try:
            plain = fernet.decrypt(token)
        except InvalidToken:
            raise WrongPassphrase("wrong passphrase, or the file was changed") from None
        number, last = _HEAD.unpack(plain[: _HEAD.size])
        if number != expected:
            raise WrongPassphrase("chunks out of order")
        expected += 1
        yield plain[_HEAD.size :]
        if last:
            if source.read(1):
                raise WrongPassphrase("data after the last chunk")
            return
