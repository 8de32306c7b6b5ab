"""/broadcast and /broadcasts through the real bot and the sandbox: the whole conversation, the
texts that must be refused before anything is queued, non-staff refused, and the buttons that
pause, resume and cancel (re-checked on the server, audited)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.callbacks import BROADCAST, BROADCASTS
from handlers.telegram_html import Problem, check_text
from storage import broadcasts
from storage.enums import AuditOutcome, BroadcastStatus, OutboxKind
from storage.models import AuditEntry, Broadcast, OutboxMessage
from tests.support.harness import BotHarness
from tests.support.identity import known_user

ADMIN = 9001


async def seed_users(bot: BotHarness, count: int) -> list[int]:
    """`count` sandbox users the bot already knows (in English)."""
    assert bot.services is not None
    chats = [bot.sandbox.add_user(language_code="en").id for _ in range(count)]
    async with bot.services.sessions() as session, session.begin():
        for chat in [*chats, ADMIN]:
            await known_user(session, bot.services.keys, chat, "en")
    return chats


async def queued(bot: BotHarness) -> tuple[int, int]:
    """(broadcast rows, broadcast outbox rows)."""
    assert bot.services is not None
    async with bot.services.sessions() as session:
        made = await session.scalar(select(func.count()).select_from(Broadcast))
        rows = await session.scalar(
            select(func.count()).where(OutboxMessage.kind == OutboxKind.BROADCAST)
        )
    return int(made or 0), int(rows or 0)


async def begin(bot: BotHarness) -> None:
    """/broadcast, audience Everyone; the bot now asks for the text."""
    sandbox = bot.sandbox
    await sandbox.send_text(ADMIN, "/broadcast")
    ask = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask.message_id, BROADCAST.build("aud", "everyone"))
    await sandbox.wait_for_edit(ADMIN, ask.message_id)


async def no_more_languages(bot: BotHarness) -> None:
    """After the Ukrainian text: the offer of other languages; No more languages."""
    sandbox = bot.sandbox
    offer = await sandbox.next_message(ADMIN)
    assert BROADCAST.build("done") in offer.callback_data
    await sandbox.press(ADMIN, offer.message_id, BROADCAST.build("done"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hours: <b>9-18</b>", None),
        ("<b>unclosed", Problem.BAD_HTML),
        ("a < b", Problem.BAD_HTML),
        ("Tom & Jerry", Problem.BAD_HTML),
        ('<script>alert("x")</script>', Problem.BAD_HTML),
        ("<b> </b>", Problem.EMPTY),
        ("", Problem.EMPTY),
        ("x" * 4096, None),
        ("x" * 4097, Problem.TOO_LONG),
        ("<b>" + "x" * 4096 + "</b>", None),  # measured after the tags are parsed
    ],
)
def test_check_text(text: str, expected: Problem | None) -> None:
    assert check_text(text).problem == expected


def test_caption_limit_with_photo() -> None:
    assert check_text("x" * 1024, with_photo=True).problem is None
    assert check_text("x" * 1025, with_photo=True).problem == Problem.CAPTION_TOO_LONG
    assert check_text("x" * 1025).problem is None


async def test_staff_broadcast_preview_send_progress_summary(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    chats = await seed_users(running_bot, 3)
    await begin(running_bot)
    await sandbox.send_text(ADMIN, "<b>Legal aid</b> on Friday &amp; Saturday")
    await no_more_languages(running_bot)
    ask_photo = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask_photo.message_id, BROADCAST.build("nophoto"))
    preview = await sandbox.next_message(ADMIN)
    confirm = await sandbox.next_message(ADMIN)
    assert preview.plain == "Legal aid on Friday & Saturday"
    assert preview.entities and preview.entities[0]["type"] == "bold"
    assert "4 people" in confirm.plain  # 3 users and the admin
    assert await queued(running_bot) == (0, 0)

    await sandbox.press(ADMIN, confirm.message_id, BROADCAST.build("send"))
    progress = await sandbox.next_message(ADMIN)
    for chat in chats:
        got = await sandbox.next_message(chat)
        assert got.plain == preview.plain and got.entities == preview.entities
    await sandbox.wait_for(
        lambda: "Delivered: 4" in sandbox.message(ADMIN, progress.message_id).plain, timeout=15
    )
    assert [len(sandbox.stats.sends_to(chat)) for chat in chats] == [1, 1, 1]
    assert await queued(running_bot) == (1, 4)


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("<b>unclosed", "HTML is not valid"),
        ("<blink>hi</blink>", "HTML is not valid"),
        ("<i> </i>", "empty"),
        ("x" * 4097, "at most 4,096 characters"),
    ],
)
async def test_bad_text_gets_a_clear_reply_and_nothing_is_queued(
    running_bot: BotHarness, text: str, reply: str
) -> None:
    sandbox = running_bot.sandbox
    await seed_users(running_bot, 2)
    await begin(running_bot)
    await sandbox.send_text(ADMIN, text)
    answer = await sandbox.next_message(ADMIN)
    assert reply in answer.plain
    assert await queued(running_bot) == (0, 0)


async def test_caption_over_1024_with_a_photo_is_refused(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    await seed_users(running_bot, 2)
    await begin(running_bot)
    await sandbox.send_text(ADMIN, "y" * 1500)
    await no_more_languages(running_bot)
    await sandbox.next_message(ADMIN)  # send a photo or press No photo
    await sandbox.send_photo(ADMIN)
    answer = await sandbox.next_message(ADMIN)
    assert "at most 1,024 characters" in answer.plain and "1,500" in answer.plain
    assert await queued(running_bot) == (0, 0)


async def test_non_staff_cannot_broadcast_nor_press_the_buttons(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = (await seed_users(running_bot, 1))[0]
    await sandbox.send_text(family, "/broadcast")
    refusal = await sandbox.next_message(family)
    assert "only for the hotline's staff" in refusal.plain
    await sandbox.press(family, refusal.message_id, BROADCAST.build("send"))
    await sandbox.press(family, refusal.message_id, BROADCASTS.build("cancel", 1))
    await sandbox.wait_for_updates_consumed()
    await sandbox.send_text(family, "/broadcasts")
    assert "only for the hotline's staff" in (await sandbox.next_message(family)).plain
    assert await queued(running_bot) == (0, 0)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        denied = list(
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.actor_id == running_bot.key(family),
                    AuditEntry.outcome == AuditOutcome.DENIED,
                )
            )
        )
    assert "broadcast.start" in denied and "broadcast.cancel" in denied
    assert "broadcast.list" in denied


async def test_broadcasts_list_resume_and_cancel_buttons(harness: BotHarness) -> None:
    """A paused broadcast (queued before the bot started): Cancel stops every row."""
    await harness.start()
    chats = await seed_users(harness, 5)
    services = harness.services
    assert services is not None
    await harness.stop()
    async with services.sessions() as session, session.begin():
        view = await broadcasts.queue_broadcast(
            session,
            services.cipher,
            author_id=harness.key(ADMIN),
            audience="everyone",
            audience_arg=None,
            text="Paused news",
        )
        await broadcasts.pause(session, view.id, harness.key(ADMIN))
    await harness.start()
    sandbox = harness.sandbox
    await sandbox.send_text(ADMIN, "/broadcasts")
    listing = await sandbox.next_message(ADMIN)
    assert f"#{view.id}" in listing.plain and "paused" in listing.plain
    assert listing.callback_data == [
        BROADCASTS.build("resume", view.id),
        BROADCASTS.build("cancel", view.id),
    ]
    await sandbox.press(ADMIN, listing.message_id, BROADCASTS.build("cancel", view.id))
    edited = await sandbox.wait_for_edit(ADMIN, listing.message_id)
    assert "cancelled" in edited.plain and edited.callback_data == []
    async with services.sessions() as session:
        after = await broadcasts.view(session, view.id)
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert after.status == BroadcastStatus.CANCELLED
    assert after.counts.cancelled == 6 and after.counts.pending == 0
    assert "broadcast.cancel" in actions
    assert all(sandbox.messages(chat) == [] for chat in chats)


@pytest.mark.parametrize("language", ["en", "uk", "ru", "crh"])
def test_every_refusal_is_valid_telegram_html(language: str) -> None:
    from bot.i18n import I18n
    from bot.sandbox.html import parse_html
    from handlers.broadcast import problem_reply

    tr = I18n().get(language)
    for problem in Problem:
        parse_html(problem_reply(tr, problem, 'Can\'t find "b" <x> & y', 5000))
