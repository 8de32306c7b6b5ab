"""`describe_error`: the type and our code's place, never the exception's message."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.logs import describe_error
from storage.enums import Role
from storage.users import set_role


def _caught(error_factory: object) -> BaseException:
    try:
        error_factory()  # type: ignore[operator]
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


def test_the_innermost_frame_in_our_packages_is_named() -> None:
    # set_role refuses before it touches the session: a real error raised in storage/.
    error = _caught(lambda: asyncio.run(set_role(None, 1, Role.ADMIN)))  # type: ignore[arg-type]
    text = describe_error(error)
    assert text.startswith("ValueError in storage.users.set_role (storage/users.py:"), text
    assert "HOTLINE_ADMIN_IDS" not in text  # the message is never logged


def test_an_error_raised_outside_our_code_is_placed_by_what_led_to_it() -> None:
    try:
        try:
            asyncio.run(set_role(None, 1, Role.ADMIN))  # type: ignore[arg-type]
        except ValueError as inner:
            json.loads("{ a secret the user typed")  # raised in a library, during handling
            raise AssertionError from inner
    except json.JSONDecodeError as error:
        text = describe_error(error)
    assert text.startswith("JSONDecodeError in storage.users.set_role"), text
    assert "secret" not in text


def test_without_our_frames_the_last_places_are_given() -> None:
    error = _caught(lambda: json.loads("{ the user's words"))
    text = describe_error(error)
    assert text.startswith("JSONDecodeError at "), text
    assert "decoder.py" in text and "words" not in text


def test_an_error_never_raised_is_its_type() -> None:
    assert describe_error(KeyError("Olena")) == "KeyError"


@pytest.mark.parametrize("message", ["Olena Bariieva", "+380675551234"])
def test_no_message_text_ever(message: str) -> None:
    error = _caught(lambda: {}[message])
    assert message not in describe_error(error)
