"""Field encryption and blind indexes for personal data.

A seized disk or a stolen backup must not reveal who was detained or who reported it. Personal
fields are sealed with Fernet (AES-128-CBC + HMAC-SHA256, authenticated) from the `cryptography`
package before they reach the database; `MultiFernet` lets a new key encrypt while older keys still
decrypt, which is what key rotation needs. Duplicate detection must not need the name in clear, so a
keyed HMAC over the normalised name and birth date (the blind index) is stored beside the sealed
fields, with a subkey derived from the data key by HKDF.

Envelope encryption (crypto-shredding): the key of `HOTLINE_DATA_KEY` (the *master* key) seals
little itself. Each case, each user's private conversations and each persistence entry has its
own random *data key*, kept sealed by the master key in the small `data_keys` table; a
`FieldCipher.for_data_key` seals with it. Erasing destroys the data key, so every copy of what it
sealed (SQLite WAL and free pages, PostgreSQL heap, a backup of the other tables) is noise, even
to someone who holds the master key. Rotating the master key re-seals only the data-key rows.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.confusables import fold_lookalikes

KEY_CHECK_PLAINTEXT = b"hotline-key-check-v1"


class DataKeyError(Exception):
    """The data key is missing, malformed, or does not open this database."""


def generate_key() -> str:
    """A fresh data key, printable and fit for `HOTLINE_DATA_KEY`."""
    return Fernet.generate_key().decode("ascii")


def _subkey(key: str, info: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(key.encode("ascii"))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(raw)


def _blind_index_key(key: str) -> bytes:
    return _subkey(key, b"hotline-blind-index")


INDEX_RULE = "uts39-1"
"""The name of `normalise_for_index`'s rule, stored in `meta`: indexes made by an older rule are
recomputed at start (`storage.keys.upgrade_index_rule`)."""
LEGACY_INDEX_RULE = "casefold-1"


def legacy_normalise_for_index(text: str) -> str:
    """The first rule (until 2026-12): case, accents, apostrophes and spacing."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    kept = [ch for ch in folded if ch.isalnum() or ch.isspace()]
    return " ".join("".join(kept).split())


def normalise_for_index(text: str) -> str:
    """Case, accents, apostrophes, spacing, invisible characters and look-alike letters of
    another script (Unicode's confusables, `storage.confusables`) must not defeat duplicate
    detection."""
    return legacy_normalise_for_index(fold_lookalikes(legacy_normalise_for_index(text)))


_NORMALISERS = {INDEX_RULE: normalise_for_index, LEGACY_INDEX_RULE: legacy_normalise_for_index}
OPENED_DATA_KEYS = 4096
"""How many opened data keys a master cipher keeps in memory (least recently used go first)."""


class FieldCipher:
    """Seals and opens personal fields; the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise DataKeyError("HOTLINE_DATA_KEY: no key given (make one: python -m bot keygen)")
        try:
            self._fernets = [Fernet(key.strip().encode("ascii")) for key in keys]
        except (ValueError, UnicodeEncodeError):
            raise DataKeyError(
                "HOTLINE_DATA_KEY: not a valid key (make one with: python -m bot keygen)"
            ) from None
        self._multi = MultiFernet(self._fernets)
        self._index_key = _blind_index_key(keys[0].strip())
        self._pseudonym_key = _subkey(keys[0].strip(), b"hotline-log-pseudonym")
        self._normalise = normalise_for_index
        self.key_id: int | None = None
        """The `data_keys` row this cipher seals with; None for the master key itself."""
        self._master = self
        self._opened: OrderedDict[bytes, FieldCipher] = OrderedDict()

    @classmethod
    def from_setting(cls, value: str) -> FieldCipher:
        """`HOTLINE_DATA_KEY` holds one key, or `new,old,...` while a rotation runs."""
        return cls([part for part in value.split(",") if part.strip()])

    def seal(self, plaintext: str | None) -> bytes | None:
        if plaintext is None:
            return None
        return self._multi.encrypt(plaintext.encode("utf-8"))

    def open(self, token: bytes | None) -> str | None:
        if token is None:
            return None
        try:
            return self._multi.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise DataKeyError("HOTLINE_DATA_KEY does not open this database's data") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the primary key (used by `python -m bot rotate-key`)."""
        return self._multi.rotate(bytes(token))

    def is_sealed_with_primary(self, token: bytes) -> bool:
        try:
            self._fernets[0].decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def can_open(self, token: bytes) -> bool:
        try:
            self._multi.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    # -- envelope encryption: data keys sealed by this (master) key --------------------------

    @property
    def master(self) -> FieldCipher:
        return self._master

    def new_data_key(self) -> bytes:
        """A fresh random data key, returned sealed by the master key (for `data_keys.sealed`)."""
        return self._master._multi.encrypt(Fernet.generate_key())

    def new_data_key_sealing(self, plaintext: str) -> tuple[bytes, bytes]:
        """A fresh data key sealed by the master key, and `plaintext` sealed with that data key:
        for a row and its key written together, without a round trip for the key's id."""
        raw = Fernet.generate_key()
        return self._master._multi.encrypt(raw), Fernet(raw).encrypt(plaintext.encode("utf-8"))

    def for_data_key(self, key_id: int, sealed: bytes) -> FieldCipher:
        """The cipher of one data key: it seals with the data key; it also opens values still
        sealed by the master key (written before envelope encryption). Opened keys are kept in a
        small cache keyed by the sealed bytes, which no other key ever has."""
        master = self._master
        sealed = bytes(sealed)
        cached = master._opened.get(sealed)
        if cached is not None and cached.key_id == key_id:
            master._opened.move_to_end(sealed)
            return cached
        try:
            raw = master._multi.decrypt(sealed)
        except InvalidToken:
            raise DataKeyError("HOTLINE_DATA_KEY does not open this database's data keys") from None
        other = copy.copy(master)
        other._fernets = [Fernet(raw), *master._fernets]
        other._multi = MultiFernet(other._fernets)
        other.key_id = key_id
        other._master = master
        other._opened = OrderedDict()
        master._opened[sealed] = other
        if len(master._opened) > OPENED_DATA_KEYS:
            master._opened.popitem(last=False)
        return other

    def forget_data_key(self, sealed: bytes) -> None:
        """Drop an opened data key from memory (it was destroyed)."""
        self._master._opened.pop(bytes(sealed), None)

    def blind_index(self, *parts: str | None) -> str:
        """A keyed hash of the normalised parts: equal inputs match, nothing can be read back."""
        message = "\x1f".join(self._normalise(part or "") for part in parts)
        return hmac.new(self._index_key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def pseudonym(self, value: int | str | None) -> str:
        """What a log line says instead of a Telegram id or a probed case code: a keyed hash, so
        one user's lines can be followed but not tied to a person without the data key."""
        if value is None:
            return "-"
        digest = hmac.new(self._pseudonym_key, str(value).encode("utf-8"), hashlib.sha256)
        return "p" + digest.hexdigest()[:12]

    def with_index_rule(self, rule: str) -> FieldCipher:
        """The same keys, computing blind indexes by an earlier `rule` (to recognise old ones)."""
        other = copy.copy(self)
        other._normalise = _NORMALISERS[rule]
        return other

    def key_check(self) -> bytes:
        """A sealed known value stored once, so a wrong key is caught at start."""
        return self._master._multi.encrypt(KEY_CHECK_PLAINTEXT)

    def verify_key_check(self, token: bytes) -> None:
        if self.open(token) != KEY_CHECK_PLAINTEXT.decode("ascii"):
            raise DataKeyError("HOTLINE_DATA_KEY does not open this database's data")
