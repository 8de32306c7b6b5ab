"""Attachments both ways: the bot's send methods for every kind, copyMessage, and users sending
files, locations and contacts (also as replies, in private chats and groups)."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest

from bot.sandbox.server import SandboxServer

FAMILY = 1001
STAFF = 3001
GROUP = -500
MARKUP = InlineKeyboardMarkup([[InlineKeyboardButton("Open", callback_data="open")]])


async def test_every_file_kind_keeps_caption_protection_markup_and_reply(
    server: SandboxServer, bot: Bot
) -> None:
    first = await bot.send_message(FAMILY, "anchor")
    common = {
        "protect_content": True,
        "reply_markup": MARKUP,
        "reply_parameters": ReplyParameters(first.message_id),
    }
    caption = {"caption": "<b>see</b>", "parse_mode": "HTML"}
    sent = [
        await bot.send_voice(FAMILY, b"OggS voice", duration=4, **caption, **common),
        await bot.send_video(FAMILY, b"video", **caption, **common),
        await bot.send_audio(FAMILY, b"ID3 audio", **caption, **common),
        await bot.send_animation(FAMILY, b"gif", **caption, **common),
        await bot.send_video_note(FAMILY, b"note", **common),
        await bot.send_sticker(FAMILY, b"RIFF sticker", **common),
        await bot.send_location(FAMILY, 44.95, 34.1, **common),
        await bot.send_contact(FAMILY, "+380000000000", "Hotline", **common),
    ]
    kinds = ["voice", "video", "audio", "animation", "video_note", "sticker", "location", "contact"]
    stored = [server.message(FAMILY, m.message_id) for m in sent]
    assert [m.kind for m in stored] == kinds
    assert all(m.protect_content and m.callback_data == ["open"] for m in stored)
    assert all(m.reply_to_message_id == first.message_id for m in stored)
    assert all(m.reply_to_message is not None for m in sent)
    assert [m.caption for m in sent[:4]] == ["see"] * 4
    assert sent[0].caption_entities[0].type == "bold"
    assert stored[0].voice is not None and stored[0].voice["duration"] == 4
    assert sent[3].animation is not None and sent[3].document is not None
    assert sent[6].location is not None and sent[6].location.latitude == pytest.approx(44.95)
    assert sent[7].contact is not None and sent[7].contact.phone_number == "+380000000000"
    methods = [s.method for s in server.stats.sends]
    assert methods[1:] == [
        "sendVoice",
        "sendVideo",
        "sendAudio",
        "sendAnimation",
        "sendVideoNote",
        "sendSticker",
        "sendLocation",
        "sendContact",
    ]
    assert sent[0].voice is not None
    voice = await bot.get_file(sent[0].voice.file_id)
    assert bytes(await voice.download_as_bytearray()) == b"OggS voice"


async def test_captions_are_validated_like_texts(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_voice(FAMILY, b"v", caption="a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_video(FAMILY, b"v", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_audio(FAMILY, b"a", reply_to_message_id=999)


async def test_file_ids_never_issued_or_of_another_kind_are_refused(
    server: SandboxServer, bot: Bot
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier/HTTP URL specified"):
        await bot.send_voice(FAMILY, "AwACAgIAAxkBAAIBcGZ")
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier/HTTP URL specified"):
        await bot.send_photo(FAMILY, "sandbox-photo-424242")
    await server.send_voice(FAMILY)
    voice_id = server.world.user_messages[FAMILY][-1].raw["voice"]["file_id"]
    with pytest.raises(BadRequest, match=r"(?i)type of file mismatch"):
        await bot.send_photo(FAMILY, voice_id)
    assert server.stats.sends == []


async def test_files_users_sent_can_be_sent_on_by_the_bot(server: SandboxServer, bot: Bot) -> None:
    await server.send_photo(FAMILY, caption="a photo", content=b"\x89PNG family")
    await server.send_document(FAMILY, "list.pdf", b"%PDF list", "application/pdf")
    await server.send_voice(FAMILY, content=b"OggS spoken")
    await server.send_video(FAMILY)
    await server.send_audio(FAMILY)
    await server.send_animation(FAMILY)
    await server.send_video_note(FAMILY)
    await server.send_sticker(FAMILY)
    updates = [u.message for u in await bot.get_updates(timeout=0)]
    assert all(m is not None for m in updates)
    photo, document, voice, video, audio, animation, note, sticker = updates
    assert photo is not None and document is not None and voice is not None
    assert video is not None and audio is not None and animation is not None
    assert note is not None and sticker is not None
    assert photo.caption == "a photo"
    forwarded = [
        await bot.send_photo(STAFF, photo.photo[-1].file_id, caption="from the family"),
        await bot.send_document(STAFF, document.document.file_id if document.document else ""),
        await bot.send_voice(STAFF, voice.voice.file_id if voice.voice else ""),
        await bot.send_video(STAFF, video.video.file_id if video.video else ""),
        await bot.send_audio(STAFF, audio.audio.file_id if audio.audio else ""),
        await bot.send_animation(STAFF, animation.animation.file_id if animation.animation else ""),
        await bot.send_video_note(STAFF, note.video_note.file_id if note.video_note else ""),
        await bot.send_sticker(STAFF, sticker.sticker.file_id if sticker.sticker else ""),
    ]
    assert [server.message(STAFF, m.message_id).kind for m in forwarded] == [
        "photo",
        "document",
        "voice",
        "video",
        "audio",
        "animation",
        "video_note",
        "sticker",
    ]
    assert forwarded[1].document is not None and forwarded[1].document.file_name == "list.pdf"
    assert voice.voice is not None
    file = await bot.get_file(voice.voice.file_id)
    assert bytes(await file.download_as_bytearray()) == b"OggS spoken"
    assert photo.photo[-1].file_unique_id == forwarded[0].photo[-1].file_unique_id


async def test_copy_message_copies_text_and_attachments(server: SandboxServer, bot: Bot) -> None:
    server.add_group(GROUP, "Staff desk")
    photo_id = await server.send_photo(FAMILY, caption="my son", content=b"\x89PNG son")
    text_id = await server.send_text(FAMILY, "he was taken at 6")
    copied = await bot.copy_message(
        GROUP, FAMILY, photo_id, caption="<i>from a family</i>", parse_mode="HTML",
        protect_content=True, reply_markup=MARKUP,
    )  # fmt: skip
    copy = server.message(GROUP, copied.message_id)
    original = server.world.find_user_message(FAMILY, photo_id)
    assert original is not None
    assert copy.kind == "photo" and copy.photo == original.raw["photo"]
    assert copy.plain == "from a family" and copy.protect_content
    assert copy.callback_data == ["open"]
    plain = await bot.copy_message(GROUP, FAMILY, text_id)
    assert server.message(GROUP, plain.message_id).plain == "he was taken at 6"
    reply = await bot.send_message(FAMILY, "<b>We are on it</b>", parse_mode="HTML")
    again = await bot.copy_message(STAFF, FAMILY, reply.message_id)
    assert server.message(STAFF, again.message_id).safe_html == "<b>We are on it</b>"
    kept = await bot.copy_message(STAFF, FAMILY, photo_id)
    assert server.message(STAFF, kept.message_id).plain == "my son"
    assert [s.method for s in server.stats.sends].count("copyMessage") == 4
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await bot.copy_message(STAFF, FAMILY, 999)
    await bot.delete_message(FAMILY, reply.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await bot.copy_message(STAFF, FAMILY, reply.message_id)


async def test_user_replies_carry_the_replied_message(server: SandboxServer, bot: Bot) -> None:
    server.add_group(GROUP, "Staff desk")
    notice = await bot.send_message(GROUP, "New message from a family")
    await server.send_text(STAFF, "We will call today", chat_id=GROUP, reply_to=notice.message_id)
    first = await server.send_text(FAMILY, "hello")
    await server.send_voice(FAMILY, caption="listen", reply_to=first)
    await server.send_location(FAMILY, 44.95, 34.1, reply_to=first)
    await server.send_contact(FAMILY, "+380501112233", "Olena", reply_to=first)
    updates = [u.message for u in await bot.get_updates(timeout=0)]
    staff_reply, _, voice, location, contact = updates
    assert staff_reply is not None and staff_reply.reply_to_message is not None
    replied = staff_reply.reply_to_message
    assert replied.message_id == notice.message_id
    assert replied.from_user is not None and replied.from_user.is_bot
    assert replied.text == "New message from a family"
    assert staff_reply.chat.id == GROUP and staff_reply.from_user is not None
    assert staff_reply.from_user.id == STAFF
    for message in (voice, location, contact):
        assert message is not None and message.reply_to_message is not None
        assert message.reply_to_message.text == "hello"
        assert message.reply_to_message.from_user is not None
        assert message.reply_to_message.from_user.id == FAMILY
    assert voice is not None and voice.voice is not None and voice.caption == "listen"
    assert location is not None and location.location is not None
    assert contact is not None and contact.contact is not None
    assert contact.contact.phone_number == "+380501112233"
    with pytest.raises(KeyError):
        await server.send_text(FAMILY, "to nothing", reply_to=999)
