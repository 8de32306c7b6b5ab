"""Typed callback data: one small codec per family of buttons.

A button's data is ``family:verb:arg:arg`` (at most 64 bytes, as Telegram allows). Each family
declares its verbs and how many arguments each takes; handlers build buttons, route presses and
parse them through the same object, and tests build forged presses with it too, so there are no
hand-written callback strings to drift apart. The data comes from the user's client: a parse
that fails is a stale or forged button, and every handler re-checks the role on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BYTES = 64


@dataclass(frozen=True)
class Pressed:
    """A parsed button press."""

    verb: str
    args: tuple[str, ...]

    def int_arg(self, index: int) -> int | None:
        value = self.args[index] if index < len(self.args) else ""
        return int(value) if value.isdigit() else None


class CallbackFamily:
    """The buttons of one feature: `prefix` and, per verb, the number of arguments it takes."""

    def __init__(self, prefix: str, verbs: dict[str, int]) -> None:
        self.prefix = prefix
        self.verbs = dict(verbs)

    @property
    def pattern(self) -> str:
        """The regex a CallbackQueryHandler routes this family with."""
        return f"^{self.prefix}:"

    def build(self, verb: str, *args: object) -> str:
        if self.verbs.get(verb) != len(args):
            raise ValueError(f"{self.prefix}:{verb} takes {self.verbs.get(verb)} arguments")
        parts = [self.prefix, verb, *(str(arg) for arg in args)]
        if any(":" in part or not part for part in parts):
            raise ValueError("callback parts must be non-empty and free of ':'")
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes")
        return data

    def parse(self, data: str | None) -> Pressed | None:
        """The press, or None when the data is not a well-formed button of this family."""
        if not data:
            return None
        prefix, _, rest = data.partition(":")
        if prefix != self.prefix or not rest:
            return None
        verb, *args = rest.split(":")
        if self.verbs.get(verb) != len(args) or not all(args):
            return None
        return Pressed(verb, tuple(args))


DESK = CallbackFamily(
    "desk",
    {
        "open": 1,  # thread id
        "reply": 1,  # thread id
        "take": 1,  # thread id
        "release": 1,  # thread id
        "join": 1,  # thread id
        "list": 2,  # filter, page
        "mopen": 1,  # thread message id (a notice names the message: it may move thread)
        "mreply": 1,  # thread message id
        "pick": 2,  # thread id, prepared answer key
        "send": 2,  # thread id, prepared answer key
        "case": 1,  # case code: the threads of a case
    },
)
"""The staff desk: family threads, taking, answering."""

FAMILY = CallbackFamily("fam", {"case": 2})  # thread message id, case code
"""A family member says which case a message is about."""

FIND = CallbackFamily("find", {"open": 1, "page": 1})  # case code; page number
"""Staff search results (handlers/find.py): open a case's card, turn the page."""

EXPORT = CallbackFamily("exp", {"what": 1, "go": 3})  # what; what, format, kind
"""Admins' /export choices (handlers/export.py)."""

LIBRARY = CallbackFamily(
    "lib",
    {
        "page": 1,  # page number
        "save": 1,  # alert filter
        "ask": 0,  # the monitor asks for the anonymised export
        "get": 1,  # format of the anonymised export
        "grant": 1,  # monitor's user key (an admin approves)
        "deny": 1,  # monitor's user key (an admin refuses)
    },
)
"""The monitors' case library (handlers/case_library.py)."""
