"""What every Bot API send method shares: the asking bot, the target chat, text and caption
parsing, reply markup, replies, and storing the sent message where tests and the page read it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.html import EntityParseError, ParsedText, parse_text
from bot.sandbox.params import ApiError, Params, bad_request
from bot.sandbox.state import BotMessage, Button, SandboxChat, SendRecord, Stats, World

MAX_TEXT = 4096
MAX_CAPTION = 1024
Handler = Callable[["BotContext", Params], Awaitable[Any]]


@dataclass
class BotContext:
    """Who is asking (the bot behind the token) and the world it acts on."""

    world: World
    stats: Stats
    bot_id: int
    bot_username: str

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Hotline Sandbox Bot",
            "username": self.bot_username,
        }


def chat_for_send(ctx: BotContext, chat_id: int) -> SandboxChat:
    chat = ctx.world.chats.get(chat_id)
    if chat is None:
        raise bad_request("chat not found")
    if chat.user is not None and chat.user.blocked_bot:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def parse(text: str, parse_mode: str | None) -> ParsedText:
    try:
        return parse_text(text, parse_mode)
    except EntityParseError as err:
        raise ApiError(400, str(err)) from None


def caption(params: Params) -> tuple[str, ParsedText]:
    """The `caption` with `parse_mode`, validated like a message text."""
    text = params.get_str("caption") or ""
    parsed = parse(text, params.get_str("parse_mode"))
    if len(parsed.plain) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return text, parsed


def parse_markup(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        for row in raw["inline_keyboard"]:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text is empty")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if len(button) < 2:
                    raise bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
    return raw


def _inline_buttons(markup: dict[str, Any] | None) -> list[list[Button]]:
    if not markup or "inline_keyboard" not in markup:
        return []
    return [
        [(str(b["text"]), b.get("callback_data", b.get("url"))) for b in row]
        for row in markup["inline_keyboard"]
    ]


def _keyboard_rows(markup: dict[str, Any]) -> list[list[str]]:
    return [
        [b if isinstance(b, str) else str(b.get("text", "")) for b in row]
        for row in markup.get("keyboard", [])
    ]


def apply_markup(ctx: BotContext, message: BotMessage, markup: dict[str, Any] | None) -> None:
    message.reply_markup = markup
    message.buttons = _inline_buttons(markup)
    if markup is None:
        return
    chat = ctx.world.chats.get(message.chat_id)
    if "keyboard" in markup:
        message.reply_keyboard = _keyboard_rows(markup)
        if chat is not None:
            chat.reply_keyboard = message.reply_keyboard
    elif markup.get("remove_keyboard"):
        message.remove_keyboard = True
        if chat is not None:
            chat.reply_keyboard = None
    elif markup.get("force_reply"):
        message.force_reply = True


def _reply_to(ctx: BotContext, chat_id: int, params: Params) -> int | None:
    reply = params.get_json("reply_parameters")
    if reply is None and params.has("reply_to_message_id"):
        reply = {"message_id": params.get_int("reply_to_message_id")}
    if not isinstance(reply, dict) or "message_id" not in reply:
        return None
    message_id = int(reply["message_id"])
    target_chat = int(reply.get("chat_id", chat_id))
    world = ctx.world
    bot_message = world.find_bot_message(target_chat, message_id)
    found = (bot_message is not None and not bot_message.deleted) or (
        world.find_user_message(target_chat, message_id) is not None
    )
    if not found:
        if reply.get("allow_sending_without_reply") or params.get_bool(
            "allow_sending_without_reply"
        ):
            return None
        raise bad_request("message to be replied not found")
    return message_id


def store(
    ctx: BotContext,
    chat: SandboxChat,
    method: str,
    params: Params,
    text: str | None,
    parsed: ParsedText,
    media: dict[str, Any] | None = None,
) -> BotMessage:
    """Keep the sent message (with its markup, reply, protection and attachment), count the send."""
    world = ctx.world
    message = BotMessage(
        message_id=world.next_message_id(chat.id),
        chat_id=chat.id,
        text=text,
        plain=parsed.plain,
        parse_mode=params.get_str("parse_mode"),
        date=int(time.time()),
        bot_user=ctx.bot_user,
        chat=chat.to_api(),
        entities=parsed.entities,
        safe_html=parsed.safe_html,
        protect_content=params.get_bool("protect_content"),
        link_preview_options=params.get_json("link_preview_options") if not media else None,
        reply_to_message_id=_reply_to(ctx, chat.id, params),
        seq=world.next_seq(),
        **(media or {}),
    )
    apply_markup(ctx, message, parse_markup(params.get_json("reply_markup")))
    world.bot_messages.setdefault(chat.id, []).append(message)
    ctx.stats.sends.append(SendRecord(method, chat.id, text, time.monotonic(), message.message_id))
    world.notifier.notify()
    return message


def with_reply(message: BotMessage, world: World) -> dict[str, Any]:
    """The `Message` object as the send method returns it, with the message it replies to."""
    data = message.to_api()
    if message.reply_to_message_id is not None:
        bot = world.find_bot_message(message.chat_id, message.reply_to_message_id)
        user = world.find_user_message(message.chat_id, message.reply_to_message_id)
        if bot is not None:
            data["reply_to_message"] = bot.to_api()
        elif user is not None:
            data["reply_to_message"] = reply_copy(user.raw)
    return data


def reply_copy(message: dict[str, Any]) -> dict[str, Any]:
    """A message as it appears inside `reply_to_message` (Telegram nests one level only)."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}
