"""Announcements in everyone's language, through the real bot and the sandbox: staff add texts per
language in the /broadcast conversation, the preview shows each with how many read it, each
recipient gets their own language's text (or the Ukrainian one) exactly once, progress shows each
language, the texts are sealed; and nobody but staff can broadcast by any path."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.callbacks import BROADCAST, BROADCASTS
from storage import broadcasts
from storage.enums import AuditOutcome, OutboxKind, Role
from storage.models import AuditEntry, Broadcast, BroadcastText, OutboxMessage
from storage.roles import revoke_role
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user

ADMIN = 9001
TEXTS = {
    "uk": "<b>Юридична консультація</b> у п'ятницю",
    "en": "<b>Legal aid</b> on Friday",
    "crh": "<b>Hukuqiy yardım</b> cuma künü",
}
PLAIN = {"uk": "Юридична консультація у п'ятницю", "en": "Legal aid on Friday"}
PLAIN["crh"] = "Hukuqiy yardım cuma künü"


async def people(bot: BotHarness) -> dict[str, int]:
    """A user per language, one with a language the bot does not speak, one with none yet; the
    admin reads English."""
    assert bot.services is not None
    chats = {
        language: bot.sandbox.add_user(language_code="en").id
        for language in ("uk", "crh", "en", "ru", "de", "none")
    }
    async with bot.services.sessions() as session, session.begin():
        for language, chat in chats.items():
            stored = None if language == "none" else language
            await known_user(session, bot.services.keys, chat, stored)
        await known_user(session, bot.services.keys, ADMIN, "en")
    return chats


async def compose(bot: BotHarness, texts: dict[str, str], staff: int = ADMIN) -> int:
    """/broadcast to everyone with these texts (Ukrainian first), no photo; returns the id of
    the confirmation message (Send / Edit / Cancel)."""
    sandbox = bot.sandbox
    await sandbox.send_text(staff, "/broadcast")
    ask = await sandbox.next_message(staff)
    await sandbox.press(staff, ask.message_id, BROADCAST.build("aud", "everyone"))
    await sandbox.wait_for_edit(staff, ask.message_id)
    await sandbox.send_text(staff, texts["uk"])
    for language in [code for code in texts if code != "uk"]:
        offer = await sandbox.next_message(staff)
        await sandbox.press(staff, offer.message_id, BROADCAST.build("lang", language))
        asked = await sandbox.wait_for_edit(staff, offer.message_id)
        assert "Send the announcement's text in" in asked.plain
        await sandbox.send_text(staff, texts[language])
    offer = await sandbox.next_message(staff)
    missing = [code for code in ("crh", "en", "ru") if code not in texts]
    assert offer.callback_data == [
        *(BROADCAST.build("lang", code) for code in missing),
        BROADCAST.build("done"),
    ]
    await sandbox.press(staff, offer.message_id, BROADCAST.build("done"))
    ask_photo = await sandbox.next_message(staff)
    await sandbox.press(staff, ask_photo.message_id, BROADCAST.build("nophoto"))
    previews = 2 * len(texts) if len(texts) > 1 else 1  # a label before each text, if several
    for _ in range(previews):
        await sandbox.next_message(staff)
    return (await sandbox.next_message(staff)).message_id


async def queued(bot: BotHarness) -> tuple[int, int]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        made = await session.scalar(select(func.count()).select_from(Broadcast))
        rows = await session.scalar(
            select(func.count()).where(OutboxMessage.kind == OutboxKind.BROADCAST)
        )
    return int(made or 0), int(rows or 0)


async def test_three_languages_each_user_gets_theirs_exactly_once(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    chats = await people(running_bot)
    confirm_id = await compose(running_bot, TEXTS)

    # The preview: per language, how many read it, then the text as they will get it.
    shown = sandbox.messages(ADMIN)
    confirm = sandbox.message(ADMIN, confirm_id)
    labels_and_texts = [m.plain for m in shown[-7:-1]]
    assert labels_and_texts == [
        "Українська: this text goes to 4 people.",  # uk, ru, de and the one with none
        PLAIN["uk"],
        "Qırımtatarca: this text goes to 1 person.",
        PLAIN["crh"],
        "English: this text goes to 2 people.",  # en and the admin
        PLAIN["en"],
    ]
    assert shown[-6].entities and shown[-6].entities[0]["type"] == "bold"
    assert "7 people" in confirm.plain
    assert await queued(running_bot) == (0, 0)

    await sandbox.press(ADMIN, confirm_id, BROADCAST.build("send"))
    progress = await sandbox.next_message(ADMIN)
    expected = {"uk": "uk", "crh": "crh", "en": "en", "ru": "uk", "de": "uk", "none": "uk"}
    for language, chat in chats.items():
        got = await sandbox.next_message(chat)
        assert got.plain == PLAIN[expected[language]], language
    await sandbox.wait_for(
        lambda: "Delivered: 7" in sandbox.message(ADMIN, progress.message_id).plain, timeout=15
    )
    summary = sandbox.message(ADMIN, progress.message_id).plain
    assert "Українська: delivered 4 of 4" in summary
    assert "Qırımtatarca: delivered 1 of 1" in summary
    assert "English: delivered 2 of 2" in summary
    assert [len(sandbox.stats.sends_to(chat)) for chat in chats.values()] == [1] * 6
    own = await sandbox.next_message(ADMIN)  # the admin is in "everyone" too, reads English
    assert own.plain == PLAIN["en"]
    assert await queued(running_bot) == (1, 7)


async def test_each_text_is_sealed_and_opens(running_bot: BotHarness) -> None:
    await people(running_bot)
    confirm_id = await compose(running_bot, TEXTS)
    await running_bot.sandbox.press(ADMIN, confirm_id, BROADCAST.build("send"))
    progress = await running_bot.sandbox.next_message(ADMIN)
    await running_bot.sandbox.wait_for_edit(ADMIN, progress.message_id)  # queued
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        broadcast = await session.scalar(select(Broadcast))
        rows = list(await session.scalars(select(BroadcastText)))
        assert broadcast is not None
        opened = await broadcasts.texts_of(session, services.cipher, broadcast.id)
    assert opened == TEXTS
    assert sorted(row.language for row in rows) == ["crh", "en"]
    for sealed in [broadcast.text, *(row.text for row in rows)]:
        assert sealed is not None
        assert not any(plain.encode() in sealed for plain in PLAIN.values())
        assert not any(word.encode() in sealed for word in ("Legal", "yardım", "консультація"))


async def test_progress_shows_each_language(running_bot: BotHarness) -> None:
    """While it is under way (paused here, so nothing moves), a line per text."""
    from jobs.broadcast_progress import PROGRESS_KEY, progress_text

    await people(running_bot)
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        view = await broadcasts.queue_broadcast(
            session,
            services.cipher,
            author_id=running_bot.key(ADMIN),
            audience="everyone",
            audience_arg=None,
            text=TEXTS["uk"],
            translations={"en": TEXTS["en"]},
            admin_ids=services.admin_keys,
        )
        await broadcasts.pause(session, view.id, running_bot.key(ADMIN))
        by_language = await broadcasts.counts_by_language(session, view.id, view.languages)
    assert view.languages == ("uk", "en")
    assert {code: n.total for code, n in by_language.items()} == {"uk": 5, "en": 2}
    text = progress_text(services.i18n.get("en"), view.counts, 1.0, by_language=by_language)
    assert "Українська: sent 0 of 5" in text and "English: sent 0 of 2" in text
    assert running_bot.application is not None
    assert PROGRESS_KEY in running_bot.application.bot_data


async def test_ukrainian_only_still_works_and_reaches_everyone_in_ukrainian(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    chats = await people(running_bot)
    confirm_id = await compose(running_bot, {"uk": TEXTS["uk"]})
    shown = sandbox.messages(ADMIN)
    assert shown[-2].plain == PLAIN["uk"]  # one text: no per-language label
    await sandbox.press(ADMIN, confirm_id, BROADCAST.build("send"))
    for chat in chats.values():
        assert (await sandbox.next_message(chat)).plain == PLAIN["uk"]
    await sandbox.next_message(ADMIN)  # the progress message
    assert (await sandbox.next_message(ADMIN)).plain == PLAIN["uk"]
    assert [len(sandbox.stats.sends_to(chat)) for chat in chats.values()] == [1] * 6


async def test_edit_changes_one_language_and_keeps_the_others(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    chats = await people(running_bot)
    confirm_id = await compose(running_bot, {"uk": TEXTS["uk"], "en": TEXTS["en"]})
    await sandbox.press(ADMIN, confirm_id, BROADCAST.build("edit"))
    offer = await sandbox.next_message(ADMIN)
    assert offer.callback_data == [
        BROADCAST.build("lang", code) for code in ("uk", "crh", "en", "ru")
    ] + [BROADCAST.build("done")]
    assert "Change: English" in [label for row in offer.buttons for label, _ in row]
    await sandbox.press(ADMIN, offer.message_id, BROADCAST.build("lang", "en"))
    await sandbox.wait_for_edit(ADMIN, offer.message_id)
    await sandbox.send_text(ADMIN, "Legal aid on <i>Saturday</i>")
    again = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, again.message_id, BROADCAST.build("done"))
    ask_photo = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask_photo.message_id, BROADCAST.build("nophoto"))
    for _ in range(4):  # two labels, two texts
        await sandbox.next_message(ADMIN)
    confirm = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, confirm.message_id, BROADCAST.build("send"))
    assert (await sandbox.next_message(chats["en"])).plain == "Legal aid on Saturday"
    assert (await sandbox.next_message(chats["uk"])).plain == PLAIN["uk"]


async def test_a_bad_translation_is_refused_by_its_language(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    await people(running_bot)
    await sandbox.send_text(ADMIN, "/broadcast")
    ask = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask.message_id, BROADCAST.build("aud", "everyone"))
    await sandbox.wait_for_edit(ADMIN, ask.message_id)
    await sandbox.send_text(ADMIN, TEXTS["uk"])
    offer = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, offer.message_id, BROADCAST.build("lang", "ru"))
    await sandbox.wait_for_edit(ADMIN, offer.message_id)
    await sandbox.send_text(ADMIN, "<b>не закрыт")
    assert "HTML is not valid" in (await sandbox.next_message(ADMIN)).plain
    await sandbox.send_text(ADMIN, "z" * 1100)  # fits a message, not a caption
    offer = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, offer.message_id, BROADCAST.build("done"))
    await sandbox.next_message(ADMIN)  # a photo, or No photo
    await sandbox.send_photo(ADMIN)
    refusal = await sandbox.next_message(ADMIN)
    assert refusal.plain.startswith("Русский: With a photo, the text can be at most 1,024")
    assert await queued(running_bot) == (0, 0)


FORGED = [
    BROADCAST.build("aud", "everyone"),
    BROADCAST.build("of", "language", "en"),
    BROADCAST.build("lang", "en"),
    BROADCAST.build("done"),
    BROADCAST.build("nophoto"),
    BROADCAST.build("send"),
    BROADCAST.build("edit"),
    BROADCASTS.build("pause", 1),
    BROADCASTS.build("resume", 1),
]
MALFORMED = ["bc:send:extra", "bcs:cancel:x"]  # no handler takes them: the fallback answers


async def test_a_family_cannot_broadcast_by_command_nor_any_forged_button(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    chats = await people(running_bot)
    family = chats["en"]
    await sandbox.send_text(family, "/broadcast")
    refusal = await sandbox.next_message(family)
    assert "only for the hotline's staff" in refusal.plain
    for data in FORGED:
        query = await sandbox.press(family, refusal.message_id, data)
        answered = await sandbox.wait_for_callback_answer(query)
        assert answered.text is not None and "only for the hotline's staff" in answered.text
    for data in MALFORMED:
        query = await sandbox.press(family, refusal.message_id, data)
        answered = await sandbox.wait_for_callback_answer(query)
        assert answered.text in (  # the broadcast's own refusal, or the one fallback's answer
            "This button is no longer valid.",
            "Sorry, this is only for the hotline's staff.",
        )
    await sandbox.send_text(family, "Hello")  # not a broadcast text: the conversation never began
    await sandbox.wait_for_updates_consumed()
    assert await queued(running_bot) == (0, 0)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        denied = await session.scalar(
            select(func.count()).where(
                AuditEntry.actor_id == running_bot.key(family),
                AuditEntry.outcome == AuditOutcome.DENIED,
            )
        )
    assert denied is not None and denied >= 1 + len(FORGED)


async def test_staff_demoted_mid_conversation_cannot_send(running_bot: BotHarness) -> None:
    """A role taken back while the preview is open: Send is refused, nothing is queued."""
    sandbox = running_bot.sandbox
    services = running_bot.services
    assert services is not None
    await people(running_bot)
    member = sandbox.add_user(language_code="en").id
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, member, Role.STAFF)
    confirm_id = await compose(running_bot, {"uk": TEXTS["uk"]}, staff=member)
    async with services.sessions() as session, session.begin():
        await revoke_role(
            session,
            actor_id=running_bot.key(ADMIN),
            user_id=running_bot.key(member),
            now=services.clock(),
        )
    query = await sandbox.press(member, confirm_id, BROADCAST.build("send"))
    answered = await sandbox.wait_for_callback_answer(query)
    assert answered.text is not None and "only for the hotline's staff" in answered.text
    await sandbox.wait_for_updates_consumed()
    assert await queued(running_bot) == (0, 0)


@pytest.mark.parametrize(
    ("user_language", "default", "expected"),
    [
        ("en", "uk", "en"),
        ("ru", "uk", "uk"),  # no Russian text
        (None, "uk", "uk"),
        ("de", "uk", "uk"),
        (None, "en", "en"),  # the hotline's default language is what they read
        ("de", "ru", "uk"),  # default without a text: Ukrainian
        ("crh", "uk", "crh"),
    ],
)
def test_which_text_a_user_reads(user_language: str | None, default: str, expected: str) -> None:
    assert broadcasts.text_language(user_language, ("uk", "en", "crh"), default) == expected
