"""Look-alike letters and invisible characters, as Unicode defines them (UTS #39, category Cf).

A Cyrillic "а", "е", "о" or "і" inside a Latin name looks the same as the Latin letter, and a
relative typing on a phone with two keyboards mixes them without knowing; an adversary can do it
on purpose to file a report that duplicate detection misses. The Unicode Consortium's confusables
data, through ICU's `SpoofChecker.getSkeleton` (PyICU, in the `pyicu-wheels` package that bundles
ICU), maps each character to its prototype: Cyrillic "а" and Latin "a" to "a".

Only single-character prototypes are used. The skeleton also maps some letters to sequences
("m" to "rn"), which would join "Kemal" and "Kernal"; a keyboard swaps one letter for one letter.
Case is folded before the skeleton, so an upper-case-only look-alike (Cyrillic "К" and Latin "K")
counts as its lower-case letter, and distinct letters of one alphabet (Ukrainian, Russian,
Crimean Tatar) keep distinct prototypes (tests/security/test_lookalikes.py checks every pair);
the one join within an alphabet is Crimean Tatar's dotless "ı" with "i", which keyboards swap.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import icu


def is_invisible(ch: str) -> bool:
    """Format characters (category Cf): zero-width spaces and joiners, word joiner, byte-order
    mark, Arabic letter mark, direction marks and overrides, soft hyphen, and the rest."""
    return unicodedata.category(ch) == "Cf"


def remove_invisible(text: str) -> str:
    return "".join(ch for ch in text if not is_invisible(ch))


_CHECKER = icu.SpoofChecker()


@lru_cache(maxsize=4096)
def prototype(ch: str) -> str:
    """The character's UTS #39 prototype when it is one character, else the character itself."""
    skeleton = unicodedata.normalize("NFC", _CHECKER.getSkeleton(0, ch))
    return skeleton if len(skeleton) == 1 else ch


def fold_lookalikes(text: str) -> str:
    """Each character replaced by its single-character prototype; invisible characters removed."""
    return "".join(prototype(ch) for ch in text if not is_invisible(ch))
