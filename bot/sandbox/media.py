"""Bot API methods that send more than text: files of every kind, locations, contacts, and
copyMessage.

A file is an upload, an HTTP URL, or a file id the sandbox issued (to the bot or to a user); an
id it never issued is refused as Telegram refuses it, and so is an id of another kind.
"""

from __future__ import annotations

import html
import mimetypes
from typing import Any

from bot.sandbox.html import ParsedText
from bot.sandbox.inject import file_object
from bot.sandbox.params import Params, Upload, bad_request
from bot.sandbox.sending import (
    BotContext,
    Handler,
    caption,
    chat_for_send,
    store,
    with_reply,
)
from bot.sandbox.state import CAPTIONED_KINDS, MEDIA_KINDS, BotMessage, UserMessage

TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
# Stand-in contents for files only named by URL (the sandbox never downloads anything).
PLACEHOLDER: dict[str, tuple[bytes, str]] = {
    "photo": (TINY_PNG, "photo.png"),
    "sticker": (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "sticker.webp"),
    "voice": (b"OggS\x00\x02" + bytes(22), "voice.ogg"),
    "audio": (b"ID3\x04\x00\x00" + bytes(10), "audio.mp3"),
}
_MP4 = (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video.mp4")
# Which kinds of issued file ids each send method takes (GIFs travel as either).
ACCEPTS = {kind: frozenset({kind}) for kind in MEDIA_KINDS}
ACCEPTS["document"] = frozenset({"document", "animation"})
ACCEPTS["animation"] = frozenset({"animation", "document"})
FILE_METHODS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendAnimation": "animation",
    "sendVideoNote": "video_note",
    "sendSticker": "sticker",
}


def placeholder(kind: str) -> tuple[bytes, str]:
    return PLACEHOLDER.get(kind, _MP4 if kind != "document" else (b"sandbox", "document.bin"))


def _unique(file_id: str) -> str:
    return "uniq-" + file_id.removeprefix("sandbox-")


def _file(ctx: BotContext, params: Params, kind: str) -> tuple[str, str, Upload]:
    """The file in parameter `kind`: (file id, unique id, its name, type and bytes)."""
    value = params.raw(kind)
    if value is None or value == "":
        raise bad_request(f"there is no {kind} in the request")
    world = ctx.world
    if isinstance(value, Upload):
        name = value.filename or placeholder(kind)[1]
        file_id, unique = world.add_file(kind, value.data, name)
        return file_id, unique, value
    reference = str(value)
    if reference.startswith(("http://", "https://")):
        data, default_name = placeholder(kind)
        name = reference.rstrip("/").rpartition("/")[2].partition("?")[0] or default_name
        file_id, unique = world.add_file(kind, data, name)
        return file_id, unique, Upload(name, mimetypes.guess_type(name)[0] or "", data)
    stored = world.files.get(reference)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    issued = world.file_kind(reference)
    if issued is not None and issued not in ACCEPTS[kind]:
        raise bad_request("type of file mismatch")
    data, name = stored
    return reference, _unique(reference), Upload(name, mimetypes.guess_type(name)[0] or "", data)


def _file_sender(method: str, kind: str) -> Handler:
    async def send(ctx: BotContext, params: Params) -> Any:
        chat_id = params.chat_id()
        text: str | None = None
        parsed = ParsedText("")
        if kind in CAPTIONED_KINDS:
            text, parsed = caption(params)
        file_id, unique, upload = _file(ctx, params, kind)
        chat = chat_for_send(ctx, chat_id)
        attachment = file_object(
            kind,
            file_id,
            unique,
            len(upload.data),
            file_name=upload.filename or None,
            mime_type=upload.content_type if "/" in upload.content_type else None,
            duration=params.get_int("duration"),
            width=params.get_int("width") or params.get_int("length"),
            height=params.get_int("height"),
        )
        if kind == "document" and upload.content_type in ("", "application/octet-stream"):
            guessed = mimetypes.guess_type(upload.filename or "")[0]
            attachment["mime_type"] = guessed or "application/octet-stream"
        media = {kind: attachment}
        return with_reply(store(ctx, chat, method, params, text, parsed, media), ctx.world)

    send.__name__ = f"send_{kind}"
    return send


def _float(params: Params, name: str, limit: float) -> float:
    if not params.has(name):
        raise bad_request(f"{name} is empty")
    value = params.get_float(name, 0.0)
    if not -limit <= value <= limit:
        raise bad_request(f"wrong {name} specified")
    return value


async def send_location(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    location = {
        "latitude": _float(params, "latitude", 90.0),
        "longitude": _float(params, "longitude", 180.0),
    }
    chat = chat_for_send(ctx, chat_id)
    message = store(ctx, chat, "sendLocation", params, None, ParsedText(""), {"location": location})
    return with_reply(message, ctx.world)


async def send_contact(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    contact: dict[str, Any] = {}
    for name in ("phone_number", "first_name"):
        value = params.get_str(name)
        if not value:
            raise bad_request(f"{name} is empty")
        contact[name] = value
    for name in ("last_name", "vcard"):
        if params.has(name):
            contact[name] = params.get_str(name)
    chat = chat_for_send(ctx, chat_id)
    message = store(ctx, chat, "sendContact", params, None, ParsedText(""), {"contact": contact})
    return with_reply(message, ctx.world)


def _source(ctx: BotContext, chat_id: int, message_id: int) -> BotMessage | UserMessage:
    world = ctx.world
    bot_message = world.find_bot_message(chat_id, message_id)
    if bot_message is not None and not bot_message.deleted:
        return bot_message
    user_message = world.find_user_message(chat_id, message_id)
    if user_message is not None:
        return user_message
    raise bad_request("message to copy not found")


def _content_of(source: BotMessage | UserMessage) -> tuple[str | None, ParsedText, dict[str, Any]]:
    """The text (or caption) and the attachments of a message, as a copy carries them."""
    if isinstance(source, BotMessage):
        media = {kind: getattr(source, kind) for kind in MEDIA_KINDS}
        media = {kind: value for kind, value in media.items() if value is not None}
        return source.text, ParsedText(source.plain, source.entities, source.safe_html), media
    raw = source.raw
    media = {kind: raw[kind] for kind in MEDIA_KINDS if raw.get(kind) is not None}
    field = "caption" if media else "text"
    plain = str(raw.get(field, ""))
    entities = list(raw.get(f"{field}_entities" if media else "entities", []))
    return plain, ParsedText(plain, entities, html.escape(plain, quote=False)), media


async def copy_message(ctx: BotContext, params: Params) -> Any:
    chat_id = params.chat_id()
    from_chat_id = params.get_int("from_chat_id")
    if from_chat_id is None or from_chat_id not in ctx.world.chats:
        raise bad_request("chat not found")
    message_id = params.require_int("message_id", "message identifier is not specified")
    source = _source(ctx, from_chat_id, message_id)
    text, parsed, media = _content_of(source)
    kind = next((k for k in MEDIA_KINDS if k in media), "text")
    if kind in CAPTIONED_KINDS and "caption" in params.values:
        text, parsed = caption(params)
    chat = chat_for_send(ctx, chat_id)
    copy = store(ctx, chat, "copyMessage", params, text, parsed, media)
    if kind == "text":
        copy.parse_mode = getattr(source, "parse_mode", None)
    return {"message_id": copy.message_id}


METHODS: dict[str, Handler] = {
    **{method: _file_sender(method, kind) for method, kind in FILE_METHODS.items()},
    "sendLocation": send_location,
    "sendContact": send_contact,
    "copyMessage": copy_message,
}
