"""The Bot API methods: what a bot can ask the sandbox, answered as Telegram answers.

Each method reads `Params`, changes the `World` and returns the `result` value; errors are
raised as `ApiError` with Telegram's codes and descriptions.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from bot.sandbox import media
from bot.sandbox.params import Params, bad_request
from bot.sandbox.sending import (
    MAX_TEXT,
    BotContext,
    Handler,
    apply_markup,
    caption,
    chat_for_send,
    parse,
    parse_markup,
    store,
    with_reply,
)
from bot.sandbox.state import BotMessage, Revision, SendRecord

__all__ = ["METHODS", "METHOD_NAMES", "SEND_METHODS", "BotContext", "commands_key"]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


async def get_me(ctx: BotContext, params: Params) -> Any:
    return {
        **ctx.bot_user,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def send_message(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    text = params.get_str("text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    parsed = parse(text, params.get_str("parse_mode"))
    if not parsed.plain.strip():
        raise bad_request("message text is empty")
    if len(parsed.plain) > MAX_TEXT:
        raise bad_request("message is too long")
    chat = chat_for_send(ctx, chat_id)
    return with_reply(store(ctx, chat, "sendMessage", params, text, parsed), ctx.world)


def _inline(message: BotMessage) -> dict[str, Any] | None:
    """Only an inline keyboard belongs to a sent message (and can be edited)."""
    markup = message.reply_markup
    return markup if markup is not None and "inline_keyboard" in markup else None


def _edit_markup(ctx: BotContext, message: BotMessage, markup: dict[str, Any] | None) -> None:
    if markup is not None and "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected")
    if markup is None and _inline(message) is None:
        return
    apply_markup(ctx, message, markup)


def _message_to_edit(ctx: BotContext, params: Params) -> BotMessage:
    if params.has("inline_message_id"):
        raise bad_request("inline messages are not supported by the sandbox")
    chat_id = params.chat_id()
    message_id = params.require_int("message_id", "message identifier is not specified")
    message = ctx.world.find_bot_message(chat_id, message_id)
    if message is None or message.deleted:
        raise bad_request("message to edit not found")
    return message


def _record_edit(ctx: BotContext, message: BotMessage, method: str) -> None:
    message.edits.append(
        Revision(message.text, message.plain, list(message.buttons), time.monotonic())
    )
    message.edit_date = int(time.time())
    message.seq = ctx.world.next_seq()
    ctx.stats.sends.append(
        SendRecord(method, message.chat_id, message.text, time.monotonic(), message.message_id)
    )


async def edit_message_text(ctx: BotContext, params: Params) -> Any:
    message = _message_to_edit(ctx, params)
    if message.kind != "text":
        raise bad_request("there is no text in the message to edit")
    text = params.get_str("text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    parse_mode = params.get_str("parse_mode")
    parsed = parse(text, parse_mode)
    if len(parsed.plain) > MAX_TEXT:
        raise bad_request("message is too long")
    markup = parse_markup(params.get_json("reply_markup"))
    if (
        parsed.plain == message.plain
        and parsed.entities == message.entities
        and markup == _inline(message)
    ):
        raise bad_request(NOT_MODIFIED)
    _record_edit(ctx, message, "editMessageText")
    message.apply(parsed, text, parse_mode)
    message.link_preview_options = params.get_json("link_preview_options")
    _edit_markup(ctx, message, markup)
    ctx.world.notifier.notify()
    return message.to_api()


async def edit_message_caption(ctx: BotContext, params: Params) -> Any:
    message = _message_to_edit(ctx, params)
    if not message.is_caption:
        raise bad_request("there is no caption in the message to edit")
    text, parsed = caption(params)
    markup = parse_markup(params.get_json("reply_markup"))
    if parsed.plain == message.plain and markup == _inline(message):
        raise bad_request(NOT_MODIFIED)
    _record_edit(ctx, message, "editMessageCaption")
    message.apply(parsed, text, params.get_str("parse_mode"))
    _edit_markup(ctx, message, markup)
    ctx.world.notifier.notify()
    return message.to_api()


async def edit_message_reply_markup(ctx: BotContext, params: Params) -> Any:
    message = _message_to_edit(ctx, params)
    markup = parse_markup(params.get_json("reply_markup"))
    if markup == _inline(message) or (markup == {"inline_keyboard": []} and not message.buttons):
        raise bad_request(NOT_MODIFIED)
    _record_edit(ctx, message, "editMessageReplyMarkup")
    _edit_markup(ctx, message, markup)
    ctx.world.notifier.notify()
    return message.to_api()


def _delete_one(ctx: BotContext, chat_id: int, message_id: int) -> bool:
    world = ctx.world
    message = world.find_bot_message(chat_id, message_id)
    if message is not None and not message.deleted:
        message.deleted = True
        message.seq = world.next_seq()
        return True
    user_message = world.find_user_message(chat_id, message_id)
    if user_message is not None:
        user_message.deleted = True
        user_message.seq = world.next_seq()
        return True
    return False


async def delete_message(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    message_id = params.require_int("message_id", "message identifier is not specified")
    if not _delete_one(ctx, chat_id, message_id):
        raise bad_request("message to delete not found")
    ctx.world.notifier.notify()
    return True


async def delete_messages(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    ids = params.get_json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message identifiers are not specified")
    for message_id in ids:
        _delete_one(ctx, chat_id, int(message_id))
    ctx.world.notifier.notify()
    return True


async def answer_callback_query(ctx: BotContext, params: Params) -> Any:
    query_id = params.get_str("callback_query_id") or ""
    query = ctx.world.callbacks.get(query_id)
    if query is None or query.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    query.text = text
    query.show_alert = params.get_bool("show_alert")
    query.url = params.get_str("url")
    query.seq = ctx.world.next_seq()
    ctx.world.answered_callbacks.append(query)
    ctx.world.notifier.notify()
    return True


def commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
    """How commands are stored: canonical JSON of the scope, and the language code."""
    if not scope:
        scope = {"type": "default"}
    return json.dumps(scope, sort_keys=True), language_code or ""


async def set_my_commands(ctx: BotContext, params: Params) -> Any:
    commands = params.get_json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be an array of at most 100 BotCommand")
    for command in commands:
        name = str(command.get("command", "")).lstrip("/")
        if not _COMMAND.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = commands_key(params.get_json("scope"), params.get_str("language_code"))
    if commands:
        ctx.world.commands[key] = commands
    else:
        ctx.world.commands.pop(key, None)
    return True


async def get_my_commands(ctx: BotContext, params: Params) -> Any:
    key = commands_key(params.get_json("scope"), params.get_str("language_code"))
    return ctx.world.commands.get(key, [])


async def delete_my_commands(ctx: BotContext, params: Params) -> Any:
    key = commands_key(params.get_json("scope"), params.get_str("language_code"))
    ctx.world.commands.pop(key, None)
    return True


async def set_webhook(ctx: BotContext, params: Params) -> Any:
    url = params.get_str("url") or ""
    if url and not url.startswith("https://"):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    ctx.world.webhook = {
        "url": url,
        "max_connections": params.get_int("max_connections", 40),
        "allowed_updates": params.get_json("allowed_updates"),
        "secret_token": params.get_str("secret_token"),
    }
    if params.get_bool("drop_pending_updates"):
        ctx.world.updates.clear()
    return True


async def delete_webhook(ctx: BotContext, params: Params) -> Any:
    ctx.world.webhook = {"url": ""}
    if params.get_bool("drop_pending_updates"):
        ctx.world.updates.clear()
    return True


async def get_webhook_info(ctx: BotContext, params: Params) -> Any:
    webhook = ctx.world.webhook
    info: dict[str, Any] = {
        "url": webhook.get("url", ""),
        "has_custom_certificate": False,
        "pending_update_count": len(ctx.world.updates),
    }
    if webhook.get("url"):
        info["max_connections"] = webhook.get("max_connections") or 40
        if webhook.get("allowed_updates"):
            info["allowed_updates"] = webhook["allowed_updates"]
    return info


async def send_chat_action(ctx: BotContext, params: Params) -> Any:
    chat = chat_for_send(ctx, params.chat_id())
    action = params.get_str("action")
    if not action:
        raise bad_request("action is empty")
    ctx.world.chat_actions.append((chat.id, action))
    return True


async def get_chat(ctx: BotContext, params: Params) -> Any:
    chat = ctx.world.chats.get(params.chat_id())
    if chat is None:
        raise bad_request("chat not found")
    return {
        **chat.to_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


async def get_file(ctx: BotContext, params: Params) -> Any:
    file_id = params.get_str("file_id") or ""
    stored = ctx.world.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    return {
        "file_id": file_id,
        "file_unique_id": f"uniq-{file_id}",
        "file_size": len(stored[0]),
        "file_path": f"files/{file_id}",
    }


async def always_true(ctx: BotContext, params: Params) -> Any:
    return True


async def set_message_reaction(ctx: BotContext, params: Params) -> Any:
    """The bot reacts to a user's message (its emoji replace any earlier reaction)."""
    chat_id = params.chat_id()
    message = ctx.world.find_user_message(chat_id, params.get_int("message_id") or 0)
    if message is None or message.deleted:
        raise bad_request("message to react not found")
    reaction = params.get_json("reaction") or []
    if not isinstance(reaction, list):
        raise bad_request("can't parse reaction types JSON object")
    message.reactions = [str(item.get("emoji", "")) for item in reaction if isinstance(item, dict)]
    message.seq = ctx.world.next_seq()
    ctx.world.notifier.notify()
    return True


# Methods whose requests count as sends: flood limits, forced 429s, drops and latency.
SEND_METHODS = frozenset(
    {
        "sendMessage",
        *media.METHODS,
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "copyMessage",
        "forwardMessage",
    }
)

METHODS: dict[str, Handler] = {
    "getMe": get_me,
    "sendMessage": send_message,
    **media.METHODS,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "deleteMessages": delete_messages,
    "answerCallbackQuery": answer_callback_query,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "sendChatAction": send_chat_action,
    "getChat": get_chat,
    "getFile": get_file,
    "setMessageReaction": set_message_reaction,
    "close": always_true,
    "logOut": always_true,
    "setMyDescription": always_true,
    "setMyShortDescription": always_true,
    "setMyName": always_true,
    "setChatMenuButton": always_true,
}
# getUpdates lives on the server: it needs the long-poll machinery.
METHOD_NAMES = {name.lower(): name for name in [*METHODS, "getUpdates"]}
