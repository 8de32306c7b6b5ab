"""Field encryption and the blind index."""

from __future__ import annotations

import pytest

from storage.crypto import DataKeyError, FieldCipher, generate_key


def test_seal_and_open_round_trip() -> None:
    cipher = FieldCipher([generate_key()])
    token = cipher.seal("Ільмі Умеров")
    assert token is not None and "Умеров".encode() not in token
    assert cipher.open(token) == "Ільмі Умеров"
    assert cipher.seal(None) is None and cipher.open(None) is None


def test_tampered_or_foreign_token_is_refused() -> None:
    cipher = FieldCipher([generate_key()])
    token = cipher.seal("name")
    assert token is not None
    with pytest.raises(DataKeyError):
        FieldCipher([generate_key()]).open(token)
    middle = len(token) // 2
    swapped = b"A" if token[middle : middle + 1] != b"A" else b"B"
    tampered = token[:middle] + swapped + token[middle + 1 :]
    with pytest.raises(DataKeyError):
        cipher.open(tampered)


def test_older_key_still_opens_and_rotation_moves_to_the_new_one() -> None:
    old, new = generate_key(), generate_key()
    token = FieldCipher([old]).seal("secret")
    assert token is not None
    both = FieldCipher.from_setting(f"{new},{old}")
    assert both.open(token) == "secret"
    assert not both.is_sealed_with_primary(token)
    rotated = both.rotate(token)
    assert both.is_sealed_with_primary(rotated)
    assert FieldCipher([new]).open(rotated) == "secret"


def test_blind_index_matches_normalised_names_only_under_the_same_key() -> None:
    cipher = FieldCipher([generate_key()])
    a = cipher.blind_index("Server  Mustafayev", "1986-01-07")
    assert a == cipher.blind_index("server mustafayev", "1986-01-07")
    assert a != cipher.blind_index("Server Mustafayev", "1986-01-08")
    assert a != FieldCipher([generate_key()]).blind_index("Server Mustafayev", "1986-01-07")
    assert "Mustafayev".lower() not in a


def test_bad_keys_are_refused_clearly() -> None:
    with pytest.raises(DataKeyError, match="HOTLINE_DATA_KEY"):
        FieldCipher([])
    with pytest.raises(DataKeyError, match="HOTLINE_DATA_KEY"):
        FieldCipher(["not a key"])
