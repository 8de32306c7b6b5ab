"""Case codes: unique, of the documented alphabet, not sequential; typed codes are normalised."""

from __future__ import annotations

import re
from itertools import pairwise

from storage.codes import CODE_ALPHABET, new_case_code, normalise_case_code

CODE_SHAPE = re.compile(rf"^[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}$")


def test_100k_codes_are_unique_well_formed_and_not_sequential() -> None:
    codes = [new_case_code() for _ in range(100_000)]
    # 30^8 codes: 100,000 random ones collide about once in 130 runs (the birthday bound), and
    # filing retries a taken code (storage.reports.unused_code); three collisions would be a
    # one-in-a-hundred-million event, so a generator that repeats itself still fails here.
    assert len(codes) - len(set(codes)) <= 2
    assert all(CODE_SHAPE.match(code) for code in codes)
    # Not sequential: generation order is not sorted order, and neighbours share few positions.
    assert codes != sorted(codes)
    ascending = sum(1 for a, b in pairwise(codes) if a < b)
    assert 0.45 < ascending / (len(codes) - 1) < 0.55
    same_positions = sum(
        sum(x == y for x, y in zip(a, b, strict=True)) - 1  # minus the dash
        for a, b in pairwise(codes)
    ) / (len(codes) - 1)
    assert same_positions < 1.0  # random: 8 positions x 1/30 ≈ 0.27
    # Every character of the alphabet is used, in every position.
    for position in (0, 1, 2, 3, 5, 6, 7, 8):
        assert {code[position] for code in codes} == set(CODE_ALPHABET)


def test_alphabet_has_no_look_alikes() -> None:
    assert not set("01ILOU") & set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) == 30


def test_normalise_accepts_what_people_type() -> None:
    assert normalise_case_code("k7m4-9xq2") == "K7M4-9XQ2"
    assert normalise_case_code(" K7M4 9XQ2 ") == "K7M4-9XQ2"
    assert normalise_case_code("K7M49XQ2") == "K7M4-9XQ2"


def test_normalise_refuses_what_cannot_be_a_code() -> None:
    for text in ("", "K7M4", "K7M4-9XQ2-AAAA", "K7M0-9XQ2", "<b>&", "К7М4-9ХQ2-Б"):
        assert normalise_case_code(text) is None


def test_normalise_reads_cyrillic_lookalikes_and_drops_invisible_characters() -> None:
    """Issue 12, point 4: a code typed on a Cyrillic keyboard, or pasted with invisible marks."""
    assert normalise_case_code("ZС9Х-АКRА") == "ZC9X-AKRA"  # С, Х, А, К are Cyrillic
    assert normalise_case_code("К7М4-9ХQ2") == "K7M4-9XQ2"
    assert normalise_case_code("zс9х акrа") == "ZC9X-AKRA"
    assert normalise_case_code("ZC9X\u200b-\u2060AK\u200dRA\ufeff\u061c") == "ZC9X-AKRA"
    assert normalise_case_code("ZС9Х-АКRБ") is None  # Б looks like no letter of the alphabet
