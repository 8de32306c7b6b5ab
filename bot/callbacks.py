"""Typed callback data: one small codec per family of buttons, every family listed here.

A button's data is ``family:verb:arg:arg`` (at most 64 bytes, as Telegram allows), or
``family:arg`` for a family without verbs (``show:42``, ``lang:uk``). Each family declares its
verbs and what each argument may be; handlers build buttons, route presses and parse them
through the same object, and tests build presses with it too, so there are no hand-written
callback strings to drift apart.

`pattern` (and `pattern_of(verbs)`) matches only well-formed data of the family, so a handler
never sees a malformed press: a stale, mangled or forged button of any family falls through to
`handlers.fallbacks.stale_button`, which answers it. The data still comes from the user's client:
every handler re-checks the role on the server and the case's state in storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.i18n import LANGUAGES
from storage.codes import CODE_ALPHABET
from storage.enums import AlertFilter, CaseStatus, CloseReason, Region, SignOfLife
from storage.relatives import VERIFICATION_METHODS

MAX_BYTES = 64


@dataclass(frozen=True)
class Arg:
    """What one argument may be: a regex its text must match in full (and one value that does,
    for tests and documentation)."""

    regex: str
    example: str


TEXT = Arg(r"[^:]+", "word")
NUMBER = Arg(r"\d{1,19}", "42")
CASE_CODE = Arg(f"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", "K7M4-9XQ2")


def one_of(values: Iterable[object]) -> Arg:
    """One of a fixed vocabulary (an enumeration's values)."""
    words = [str(value) for value in values]
    return Arg("(?:" + "|".join(re.escape(word) for word in words) + ")", words[0])


@dataclass(frozen=True)
class Pressed:
    """A parsed button press; its arguments matched their declared kinds."""

    verb: str
    args: tuple[str, ...]

    def int_arg(self, index: int) -> int | None:
        value = self.args[index] if index < len(self.args) else ""
        return int(value) if value.isdigit() else None


class CallbackFamily:
    """The buttons of one feature: `prefix` and, per verb, its arguments (their kinds, or how
    many free-text ones). The verb "" is a family's only form when it has no verbs."""

    def __init__(self, prefix: str, verbs: Mapping[str, int | tuple[Arg, ...]]) -> None:
        self.prefix = prefix
        self.verbs: dict[str, tuple[Arg, ...]] = {
            verb: (TEXT,) * kinds if isinstance(kinds, int) else kinds
            for verb, kinds in verbs.items()
        }
        if "" in self.verbs and not self.verbs[""]:
            raise ValueError("a family without verbs needs at least one argument")
        self._each = {verb: re.compile(self._regex(verb)) for verb in self.verbs}

    def _regex(self, verb: str) -> str:
        parts = ([re.escape(verb)] if verb else []) + [kind.regex for kind in self.verbs[verb]]
        return ":".join(parts)

    @property
    def pattern(self) -> str:
        """The regex a CallbackQueryHandler routes this family with: well-formed data only."""
        return self.pattern_of(*self.verbs)

    def pattern_of(self, *verbs: str) -> str:
        """The regex for some of the family's verbs (each handler routes its own)."""
        unknown = set(verbs) - set(self.verbs)
        if unknown or not verbs:
            raise ValueError(f"{self.prefix}: unknown verbs {sorted(unknown)}")
        forms = "|".join(self._regex(verb) for verb in verbs)
        return f"^{re.escape(self.prefix)}:(?:{forms})$"

    def head(self, verb: str = "") -> str:
        """How the data of `verb` (or of the whole family) begins, e.g. "case:show:"."""
        return f"{self.prefix}:{verb}:" if verb else f"{self.prefix}:"

    def build(self, verb: str, *args: object) -> str:
        kinds = self.verbs.get(verb)
        if kinds is None or len(kinds) != len(args):
            raise ValueError(f"{self.prefix}:{verb} takes {len(kinds or ())} arguments")
        data = ":".join([self.prefix, *([verb] if verb else []), *(str(arg) for arg in args)])
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes")
        if self.parse(data) != Pressed(verb, tuple(str(arg) for arg in args)):
            raise ValueError(f"{self.prefix}:{verb}: an argument is not of its kind")
        return data

    def bare(self, *args: object) -> str:
        """The data of a family without verbs: `SHOW.bare(42)` is "show:42"."""
        return self.build("", *args)

    def parse(self, data: str | None) -> Pressed | None:
        """The press, or None when the data is not a well-formed button of this family."""
        if not data or not data.startswith(self.head()):
            return None
        rest = data[len(self.head()) :]
        for verb, regex in sorted(self._each.items(), key=lambda item: item[0] == ""):
            if regex.fullmatch(rest):
                args = rest.split(":")
                return Pressed(verb, tuple(args[1:] if verb else args))
        return None


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
RECORD = CallbackFamily(
    "rec",
    {
        "menu": 1,  # target: a case code, or g<group id>
        "field": 2,  # target, field key
        "set": 3,  # target, field key, chosen value ("-" clears)
        "tell": 3,  # target, field key, whom to tell (storage.record.Tell)
    },
)
"""The prisoner's record editor (handlers/record_edit.py), for a case or a group."""

LIFE = CallbackFamily(
    "life", {"show": (CASE_CODE,), "log": (CASE_CODE, one_of(SignOfLife)), "date": (NUMBER,)}
)
"""/letters: a case's page, log a sign of life (code, kind), correct its day (entry id)."""

_STATUS = one_of(CaseStatus)
CASE = CallbackFamily(
    "case",
    {
        # the card (handlers.staff)
        "show": (CASE_CODE,),
        # moves (handlers.staff_actions)
        "st": (CASE_CODE, _STATUS),  # ask to confirm a move to the status
        "ok": (CASE_CODE, _STATUS),  # confirmed
        "close": (CASE_CODE,),  # choose a reason
        "cls": (CASE_CODE, one_of(CloseReason)),  # close for the reason
        # typed input (handlers.staff_input)
        "inote": (CASE_CODE,),  # internal note
        "ask": (CASE_CODE,),  # question to the family
        "merge": (CASE_CODE,),  # the code of the case to keep
        # who hears about the case (handlers.staff_contacts)
        "note": (CASE_CODE,),  # note for the family (and monitors, on a public case)
        "fnote": (CASE_CODE,),  # note for the family only
        "okn": (CASE_CODE, _STATUS),  # confirmed, with a note for the family
        "link": (CASE_CODE, NUMBER),  # compare a waiting relative (user key)
        "lok": (CASE_CODE, NUMBER, one_of(VERIFICATION_METHODS)),  # link them, verified by a method
        "mok": (CASE_CODE, CASE_CODE),  # merge confirmed: into the second case
    },
)
"""Staff acting on a case: its card and every button under it."""

INBOX = CallbackFamily(
    "inbox",
    {
        "n": (NUMBER, NUMBER, NUMBER),  # the next page: its number, the last row's key
        "p": (NUMBER, NUMBER, NUMBER),  # the previous page: its number, the first row's key
        "": (NUMBER,),  # a button from before keyset pages: the first page
    },
)
"""A page of the staff inbox (`storage.case_views.inbox`): a key is the row's creation time
in microseconds since 1970 and its case id, so a page is found by an index range, not OFFSET."""

STATUS = CallbackFamily("status", {"show": (CASE_CODE,)})
"""A family's /status: one of their cases."""

MONITOR = CallbackFamily(
    "mon",
    {
        "approve": (NUMBER,),  # an admin decides a monitor request
        "refuse": (NUMBER,),
        "follow": (CASE_CODE,),  # offer to follow a case
        "region": (one_of(Region),),  # offer to follow a region
        "sub-case": (CASE_CODE, one_of(AlertFilter)),  # follow, with the filter chosen
        "sub-region": (one_of(Region), one_of(AlertFilter)),
        "sub-all": (one_of(AlertFilter),),
        "unf-case": (CASE_CODE,),  # stop following
        "unf-region": (one_of(Region),),
        "unf-group": (NUMBER,),
        "unf-filter": (Arg(r"[0-9a-f]{16}", "0123456789abcdef"),),  # a saved library filter
        "unf-all": (),
    },
)
"""Monitors: access requests, following and unfollowing."""

PRIVACY = CallbackFamily(
    "priv", {"discreet": (one_of(("on", "off")),), "pin": (one_of(("set", "remove")),)}
)
"""The switches of /privacy."""

FORGET = CallbackFamily("forget", {"yes": (), "no": ()})
"""/forget's confirmation."""

HIDE = CallbackFamily("hide", {"chat": ()})
""""Hide this chat"."""

SHOW = CallbackFamily("show", {"": (NUMBER,)})
"""The Show button of a discreet notification (its outbox row)."""

MENU = CallbackFamily("menu", {"report": (), "status": (), "language": ()})
"""The main menu of /start."""

LANGUAGE = CallbackFamily("lang", {"keep": (), "": (one_of(LANGUAGES),)})
"""A language chosen (or the Crimean Tatar offer declined: keep)."""

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

URGENT = CallbackFamily(
    "urg",
    {
        "start": 0,  # the first screen's button
        "a": 2,  # question, answer (a choice)
        "skip": 1,  # question
        "now": 1,  # question: send the alert with what was answered so far
    },
)
"""A family's "it is happening now" questions."""

DUTY = CallbackFamily(
    "duty",
    {
        "take": 1,  # case code: "I'll take it"
        "step": 2,  # case code, step: what the family is told
        "on": 0,  # go on call
        "off": 0,  # go off call
    },
)
"""Staff on call: taking an urgent case and telling the family each step."""

FAMILIES: tuple[CallbackFamily, ...] = (
    DESK,
    FAMILY,
    CASE,
    INBOX,
    STATUS,
    MONITOR,
    PRIVACY,
    FORGET,
    HIDE,
    SHOW,
    MENU,
    LANGUAGE,
    BROADCAST,
    BROADCASTS,
    GUIDE,
    REPORT,
    RECORD,
    LIFE,
    FIND,
    EXPORT,
    LIBRARY,
    URGENT,
    DUTY,
)
"""Every family of the bot; tests press a malformed button of each."""
