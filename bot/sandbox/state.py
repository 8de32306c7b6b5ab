"""The sandbox's in-memory world: users, chats, messages, the update queue, callback queries.

Everything that changes wakes the waiters (tests, long polls) through one `Notifier`, so nobody
has to poll with sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.html import ParsedText

Button = tuple[str, str | None]
# What a message can carry besides text, in the order that decides its `kind` (an animation
# also carries its `document`, as on Telegram).
MEDIA_KINDS = (
    "photo",
    "animation",
    "document",
    "video",
    "audio",
    "voice",
    "video_note",
    "sticker",
    "location",
    "contact",
)
CAPTIONED_KINDS = frozenset({"photo", "animation", "document", "video", "audio", "voice"})


def message_kind(message: dict[str, Any]) -> str:
    """ "text", "photo", "document", "voice", ... for a Telegram `Message` object."""
    for kind in MEDIA_KINDS:
        if message.get(kind) is not None:
            return kind
    return "text"


class Notifier:
    """Wakes every waiter on each change; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0

    def notify(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109 - the test API is built around explicit timeouts
        """True once `predicate()` holds after a change was announced, False when `timeout`
        seconds passed first. A condition that came true without a `notify` is not seen when
        the time runs out: that is a missing wake-up, and a test waiting for it must fail
        rather than pass late (a missing wake-up once made every idle wait sleep 30 s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = self.version
            if predicate():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                return self.version != seen and predicate()  # announced as time ran out


@dataclass
class SandboxUser:
    """A Telegram user on the client side of the sandbox."""

    id: int
    first_name: str = "Test"
    language_code: str | None = "uk"
    last_name: str | None = None
    username: str | None = None
    blocked_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class SandboxChat:
    """A private chat (id == user id) or a group (negative id)."""

    id: int
    type: str
    title: str | None = None
    user: SandboxUser | None = None
    reply_keyboard: list[list[str]] | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title is not None:
            data["title"] = self.title
        if self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        return data


@dataclass
class Revision:
    """One earlier version of an edited bot message."""

    text: str | None
    plain: str
    buttons: list[list[Button]]
    edited_at: float


@dataclass
class BotMessage:
    """A message the bot sent, as the server stored it (and as tests read it)."""

    message_id: int
    chat_id: int
    text: str | None  # raw text (or caption) as sent
    plain: str
    parse_mode: str | None
    date: int
    bot_user: dict[str, Any]
    chat: dict[str, Any]
    entities: list[dict[str, Any]] = field(default_factory=list)
    safe_html: str = ""
    buttons: list[list[Button]] = field(default_factory=list)
    reply_keyboard: list[list[str]] | None = None
    remove_keyboard: bool = False
    force_reply: bool = False
    reply_markup: dict[str, Any] | None = None
    protect_content: bool = False
    link_preview_options: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    photo: list[dict[str, Any]] | None = None
    document: dict[str, Any] | None = None
    animation: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    voice: dict[str, Any] | None = None
    video_note: dict[str, Any] | None = None
    sticker: dict[str, Any] | None = None
    location: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None
    deleted: bool = False
    edits: list[Revision] = field(default_factory=list)
    edit_date: int | None = None
    sent_at: float = field(default_factory=time.monotonic)
    seq: int = 0

    @property
    def kind(self) -> str:
        """ "text", "photo", "document", "voice", "video", "audio", "animation", ..."""
        for kind in MEDIA_KINDS:
            if getattr(self, kind) is not None:
                return kind
        return "text"

    @property
    def is_caption(self) -> bool:
        """Whether `text` is a caption (of a photo, document, voice, ...)."""
        return self.kind in CAPTIONED_KINDS

    def media(self) -> dict[str, Any]:
        """The attachment fields of the `Message` object (an animation also as `document`)."""
        found = {kind: getattr(self, kind) for kind in MEDIA_KINDS}
        data = {kind: value for kind, value in found.items() if value is not None}
        if self.animation is not None and self.document is None:
            data["document"] = self.animation
        return data

    @property
    def callback_data(self) -> list[str]:
        """Every callback_data on the inline keyboard, row by row."""
        return [data for row in self.buttons for _, data in row if data is not None]

    def button_data(self, label: str) -> str:
        """The callback_data of the inline button whose text is `label` (or contains it)."""
        for row in self.buttons:
            for text, data in row:
                if text == label and data is not None:
                    return data
        for row in self.buttons:
            for text, data in row:
                if label in text and data is not None:
                    return data
        raise AssertionError(f"no button {label!r} on message {self.message_id}: {self.buttons}")

    def apply(self, parsed: ParsedText, text: str, parse_mode: str | None) -> None:
        self.text = text
        self.plain = parsed.plain
        self.entities = parsed.entities
        self.safe_html = parsed.safe_html
        self.parse_mode = parse_mode

    def to_api(self) -> dict[str, Any]:
        """The Telegram `Message` object for this message."""
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": self.chat,
            "from": self.bot_user,
        }
        kind = self.kind
        if kind != "text":
            if self.plain and kind in CAPTIONED_KINDS:
                data["caption"] = self.plain
                if self.entities:
                    data["caption_entities"] = self.entities
            data.update(self.media())
        else:
            data["text"] = self.plain
            if self.entities:
                data["entities"] = self.entities
            if self.link_preview_options:
                data["link_preview_options"] = self.link_preview_options
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.protect_content:
            data["has_protected_content"] = True
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        return data


@dataclass
class UserMessage:
    """A message a sandbox user sent (kept so replies and the web page can see it)."""

    message_id: int
    chat_id: int
    user_id: int
    text: str | None
    raw: dict[str, Any]
    seq: int = 0
    deleted: bool = False
    edited: bool = False
    reactions: list[str] = field(default_factory=list)  # the bot's reactions (emoji)

    @property
    def kind(self) -> str:
        return message_kind(self.raw)


@dataclass
class CallbackQuery:
    """A button press, and how the bot answered it."""

    id: str
    user_id: int
    chat_id: int | None
    message_id: int | None
    data: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    seq: int = 0


@dataclass
class SendRecord:
    """One successful send, for duplicate counting and benchmarks."""

    method: str
    chat_id: int
    text: str | None
    at: float
    message_id: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A request a fault refused: 429, a server error, or a dropped connection."""

    method: str
    chat_id: int | None
    kind: str
    """"429", "5xx" or "dropped"."""


@dataclass
class Stats:
    """Request counts and outcomes across the server's life."""

    requests: dict[str, int] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    status_429: int = 0
    status_403: int = 0
    dropped: int = 0
    server_errors: int = 0
    conflicts: int = 0
    sends: list[SendRecord] = field(default_factory=list)

    def sends_to(self, chat_id: int) -> list[SendRecord]:
        return [send for send in self.sends if send.chat_id == chat_id]

    def refused(self, chat_id: int | None = None, method: str | None = None) -> int:
        """How many requests (to that chat, of that method) a fault refused."""
        return sum(
            1
            for refusal in self.refusals
            if (chat_id is None or refusal.chat_id == chat_id)
            and (method is None or refusal.method == method)
        )

    def duplicates(self) -> dict[tuple[int, str], int]:
        """(chat_id, text) pairs that were sent more than once, with their counts."""
        counts: dict[tuple[int, str], int] = {}
        for send in self.sends:
            if send.text is not None:
                key = (send.chat_id, send.text)
                counts[key] = counts.get(key, 0) + 1
        return {key: count for key, count in counts.items() if count > 1}

    def reset(self) -> None:
        self.requests.clear()
        self.refusals.clear()
        self.status_429 = self.status_403 = self.dropped = 0
        self.server_errors = self.conflicts = 0
        self.sends.clear()


@dataclass
class Faults:
    """Switchable delivery faults for fault tests."""

    retry_after: int = 1
    retry_remaining: int | None = 0  # None: every matching request until healed
    retry_methods: frozenset[str] = frozenset()
    drop_remaining: int | None = 0
    drop_methods: frozenset[str] = frozenset()
    fail_status: int = 502
    fail_remaining: int | None = 0
    fail_methods: frozenset[str] = frozenset()
    chats: frozenset[int] | None = None
    """The chats the drops, server errors and forced 429s touch; None: every request."""
    latency: float = 0.0
    slow_answer: float = 0.0
    """Seconds a send's answer waits after the send was carried out (a slow API)."""
    slow_chats: frozenset[int] | None = None
    """The chats whose sends answer slowly; None: every chat."""
    holds: dict[int, asyncio.Event] = field(default_factory=dict)
    """Per chat: the next send is carried out, then its answer waits for the event."""

    @staticmethod
    def take(remaining: int | None) -> tuple[bool, int | None]:
        """Whether a fault fires now, and what is left of its count."""
        if remaining is None:
            return True, None
        if remaining > 0:
            return True, remaining - 1
        return False, 0

    def covers(self, method: str) -> bool:
        """Whether a fault is armed for this method (beyond the send methods: answering a
        button, say)."""
        return (
            method in self.retry_methods
            or method in self.drop_methods
            or (method in self.fail_methods)
        )


class World:
    """All sandbox state, shared by the Bot API side, the test API and the in-process API.

    Telegram's update ids only grow, and the bot keeps the ids it handled for a day (its inbox
    ignores an update delivered again): a sandbox started again on the same database must not
    count from 1 again, so `first_update_id` lets it go on from where time has got to."""

    def __init__(self, first_update_id: int = 1) -> None:
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, SandboxChat] = {}
        self.bot_messages: dict[int, list[BotMessage]] = {}
        self.user_messages: dict[int, list[UserMessage]] = {}
        self.updates: list[dict[str, Any]] = []
        self.callbacks: dict[str, CallbackQuery] = {}
        self.answered_callbacks: list[CallbackQuery] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] = {"url": ""}
        self.chat_actions: list[tuple[int, str]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.allowed_updates: list[str] | None = None
        self.handed_out = 0
        """The highest update_id given to the bot, by getUpdates or the webhook (confirmed or
        not: an update still in `updates` was not confirmed)."""
        self.notifier = Notifier()
        self._update_ids = itertools.count(first_update_id)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self.seq = 0
        self._file_ids = itertools.count(1)

    def next_seq(self) -> int:
        self.seq = next(self._seq)
        return self.seq

    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def next_callback_id(self) -> str:
        return str(4_000_000_000_000 + next(self._callback_ids))

    def next_file_id(self, kind: str) -> tuple[str, str]:
        number = next(self._file_ids)
        return f"sandbox-{kind}-{number}", f"uniq-{kind}-{number}"

    def add_file(self, kind: str, data: bytes, filename: str) -> tuple[str, str]:
        """Issue a file id (and unique id) of `kind` for `data`; getFile and sends accept it."""
        file_id, unique = self.next_file_id(kind)
        self.files[file_id] = (data, filename)
        return file_id, unique

    @staticmethod
    def file_kind(file_id: str) -> str | None:
        """The kind a sandbox file id was issued for ("photo", "voice", ...), else None."""
        if not file_id.startswith("sandbox-"):
            return None
        return file_id[len("sandbox-") :].rpartition("-")[0] or None

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        self.notifier.notify()
        return update

    def confirm_updates(self, offset: int) -> int:
        """A getUpdates with `offset` confirms every update below it (a negative offset keeps
        only the last -offset ones, as Telegram does); returns how many left the queue.

        Waiters are woken here, where the queue shrinks: `wait_for_updates_consumed` (and
        `tests.support.waiting.wait_until_idle`) wait for exactly this, and without the wake-up
        they slept their whole timeout and then passed."""
        before = len(self.updates)
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        confirmed = before - len(self.updates)
        if confirmed:
            self.notifier.notify()
        return confirmed

    def hand_out(self, update: dict[str, Any]) -> None:
        """The bot is given `update` (it may still be lost until the bot confirms it)."""
        if int(update["update_id"]) > self.handed_out:
            self.handed_out = int(update["update_id"])
            self.notifier.notify()

    def find_bot_message(self, chat_id: int, message_id: int) -> BotMessage | None:
        for message in self.bot_messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        return None

    def find_user_message(self, chat_id: int, message_id: int) -> UserMessage | None:
        """A user's message still in the chat (not deleted)."""
        for message in self.user_messages.get(chat_id, []):
            if message.message_id == message_id and not message.deleted:
                return message
        return None
