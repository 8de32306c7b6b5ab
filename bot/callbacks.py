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

BROADCAST = CallbackFamily(
    "bc",
    {
        "aud": 1,  # audience
        "of": 2,  # audience, its argument (a language or a region)
        "lang": 1,  # language code: write (or rewrite) the text in that language
        "done": 0,  # no more languages
        "nophoto": 0,
        "send": 0,
        "edit": 0,
        "cancel": 0,
    },
)
"""Composing an announcement (/broadcast)."""

BROADCASTS = CallbackFamily("bcs", {"pause": 1, "resume": 1, "cancel": 1})  # broadcast id
"""Managing announcements under way (/broadcasts)."""

GUIDE = CallbackFamily(
    "gd",
    {
        "open": 1,  # pages shown first ("-": none): opens the guide in a new message
        "p": 2,  # page id, pages shown first: shows a page in place
        "toc": 1,  # pages shown first: the contents, in place
    },
)
"""The "what to do" guide (/guide, the menu, the button after a report)."""
REPORT = CallbackFamily(
    "rep",
    {
        "consent": 1,  # yes | no
        "a": 2,  # field key, the value of the button (a choice, or an extra: here, done)
        "skip": 1,  # field key
        "back": 1,  # field key
        "edit": 1,  # field key (a button of the summary)
        "confirm": 0,
    },
)
"""The report form: the field key in a question's buttons tells a stale button from a current
one."""
