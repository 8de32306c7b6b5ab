"""Public case codes such as ``K7M4-9XQ2``.

Families read codes aloud over the phone and type them on old keyboards, and an adversary must not
be able to enumerate cases, so codes are drawn from a CSPRNG (`secrets`) over an alphabet without
look-alike characters (no 0/O, 1/I/L or U): 30^8 ≈ 6.6e11 codes.
"""

from __future__ import annotations

import re
import secrets

from storage.confusables import fold_lookalikes

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
_CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}$")


def new_case_code() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_case_code(text: str) -> str | None:
    """Accept what a person types (lower case, spaces, no dash, Cyrillic letters that look like
    the code's Latin ones, as in `ZС9Х-АКRА`, invisible characters): None if it cannot be a code."""
    folded = fold_lookalikes(text.upper()).upper()
    cleaned = "".join(ch for ch in folded if ch.isalnum())
    if len(cleaned) != CODE_LENGTH:
        return None
    code = f"{cleaned[:4]}-{cleaned[4:]}"
    return code if _CODE_RE.match(code) else None
