"""Interactive replies against a misbehaving Telegram (the sandbox), through the real bot.

(a) An outage (502s, or dropped connections) while a staff member confirms a status change and
a family member asks /help: each gets their answer once the API is back, once, nothing lost.
(b) A 429 storm of several seconds: the staff member's committed change is confirmed and
delivered, and they never read "something went wrong".
(c) A slow API (6 s before each answer to the family's chat): the family's alert arrives once.

The faults are switched off by events (so many refused requests seen), never after a time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.callbacks import CASE
from bot.i18n import I18n
from bot.sandbox import botapi
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from handlers.errors import NOT_SAVED, SOMETHING_WENT_WRONG
from jobs.delivery import DELIVERY_KEY, MAYBE_SENT_DELAY, MAYBE_SENT_ERROR, Delivery
from storage import outbox
from storage.enums import CaseStatus, OutboxStatus, Role
from storage.models import Case, OutboxMessage, utcnow
from storage.outbox import Outgoing
from storage.users import set_language
from tests.support.case_factory import make_case
from tests.support.discreet import NOTICE
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import grant, known_user
from tests.support.waiting import eventually, wait_until_idle

ADMIN = 9001
STAFF = 3001
CONFIRMED = "is now"  # "Case K7M4-9XQ2 is now <b>Verified</b>. 1 notification is on its way."


async def seed_case(bot: BotHarness, family: int) -> str:
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, services.keys.key(STAFF), "en")
        await known_user(session, services.keys, ADMIN, "en")
        return await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=CaseStatus.UNDER_REVIEW,
            language="en",
        )


async def ask_to_verify(sandbox: SandboxServer, code: str) -> BotMessage:
    """The staff member opens the case and taps "verified": the confirmation question."""
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, card.message_id, CASE.build("st", code, "verified"))
    return await sandbox.next_message(STAFF)


async def case_status(bot: BotHarness, code: str) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        return str(await session.scalar(select(Case.status).where(Case.code == code)))


async def rows_to(bot: BotHarness, telegram_id: int) -> list[OutboxMessage]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        rows = select(OutboxMessage).where(OutboxMessage.chat_id == bot.key(telegram_id))
        return list(await session.scalars(rows))


def error_texts(i18n: I18n) -> set[str]:
    return {i18n.get(language).gettext(text) for language in ("en", "uk") for text in (
        SOMETHING_WENT_WRONG, NOT_SAVED)}  # fmt: skip


def texts(sandbox: SandboxServer, chat: int) -> list[str]:
    return [message.plain for message in sandbox.messages(chat)]


@pytest.mark.parametrize("fault", ["502", "dropped"])
async def test_an_outage_loses_no_reply(running_bot: BotHarness, i18n: I18n, fault: str) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    asker = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    await sandbox.send_text(asker, "/help")
    help_text = (await sandbox.next_message(asker)).plain  # what /help says when all is well
    question = await ask_to_verify(sandbox, code)

    methods = botapi.SEND_METHODS | {"answerCallbackQuery"}
    if fault == "502":
        sandbox.fail_with(502, None, methods=methods)
    else:
        sandbox.drop_connections(None, methods=methods)
    await sandbox.press(STAFF, question.message_id, CASE.build("ok", code, "verified"))
    await sandbox.send_text(asker, "/help")
    # Both tried, and tried again, while the API was down; then it comes back.
    stats = sandbox.stats
    await sandbox.wait_for(
        lambda: (
            stats.refused(STAFF) + stats.refused(method="answerCallbackQuery") >= 3
            and stats.refused(asker) >= 2
        ),
        timeout=20,
    )
    sandbox.heal()

    await sandbox.wait_for(lambda: any(CONFIRMED in text for text in texts(sandbox, STAFF)), 30)
    await sandbox.wait_for(lambda: len(sandbox.messages(asker)) >= 2, timeout=30)
    await sandbox.wait_for(lambda: NOTICE in texts(sandbox, family), timeout=30)
    assert texts(sandbox, asker) == [help_text, help_text]
    assert sum(CONFIRMED in text for text in texts(sandbox, STAFF)) == 1
    assert texts(sandbox, family) == [NOTICE]
    for chat in (STAFF, asker):
        assert not error_texts(i18n) & set(texts(sandbox, chat))
    assert await case_status(running_bot, code) == CaseStatus.VERIFIED
    assert [chat for chat, _ in sandbox.stats.duplicates()] == [asker]  # its two /help


async def test_a_429_storm_never_reports_a_committed_change_as_failed(
    running_bot: BotHarness, i18n: I18n
) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    question = await ask_to_verify(sandbox, code)

    sandbox.force_retry_after(None, retry_after=1)  # every send: "retry after 1 s"
    await sandbox.press(STAFF, question.message_id, CASE.build("ok", code, "verified"))
    # The storm lasts while the staff member's confirmation is refused five times (~5-6 s).
    await sandbox.wait_for(lambda: sandbox.stats.refused(STAFF) >= 5, timeout=30)
    assert await case_status(running_bot, code) == CaseStatus.VERIFIED  # committed meanwhile
    sandbox.heal()

    await sandbox.wait_for(lambda: any(CONFIRMED in text for text in texts(sandbox, STAFF)), 30)
    await sandbox.wait_for(lambda: NOTICE in texts(sandbox, family), timeout=30)

    async def delivered() -> bool:
        rows = await rows_to(running_bot, family)
        return bool(rows) and all(row.status == OutboxStatus.SENT for row in rows)

    await eventually(delivered, "the family's alert recorded as sent", within=30)
    assert sum(CONFIRMED in text for text in texts(sandbox, STAFF)) == 1
    assert not error_texts(i18n) & set(texts(sandbox, STAFF))
    assert texts(sandbox, family) == [NOTICE]


async def test_a_slow_api_delivers_a_familys_alert_once(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(running_bot, family)
    question = await ask_to_verify(sandbox, code)

    sandbox.slow_answers(6.0, chats=[family])  # delivered at once, answered 6 s later
    await sandbox.press(STAFF, question.message_id, CASE.build("ok", code, "verified"))
    await sandbox.wait_for(lambda: NOTICE in texts(sandbox, family), timeout=30)

    async def delivered() -> bool:
        rows = await rows_to(running_bot, family)
        return bool(rows) and all(row.status == OutboxStatus.SENT for row in rows)

    await eventually(delivered, "the family's alert recorded as sent", within=30)
    assert texts(sandbox, family) == [NOTICE]
    assert len(sandbox.stats.sends_to(family)) == 1


# -- each rule on its own ---------------------------------------------------------------------


@pytest.fixture
async def make_bot(
    sandbox: SandboxServer, tmp_path: Path, data_key: str, i18n: I18n
) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """A started bot with these settings and `build_application` options."""
    made: list[BotHarness] = []

    async def make(options: dict[str, object] | None = None, **settings: object) -> BotHarness:
        url = f"sqlite+aiosqlite:///{tmp_path / f'bot{len(made)}.db'}"
        bot = BotHarness(
            sandbox,
            harness_settings(sandbox, url, data_key, **settings),
            i18n,
            builder_options=options or {},
        )
        made.append(bot)
        await bot.start()
        return bot

    yield make
    for bot in made:
        await bot.close()


async def test_a_confirmation_lost_after_the_commit_is_only_logged(
    make_bot: Callable[..., Awaitable[BotHarness]],
    i18n: I18n,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Retries off: the confirmation's one try gets a 502, after the change was committed. The
    error handler must not tell the staff member it went wrong (its reply would get through)."""
    bot = await make_bot(reply_retry_seconds=0)
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed_case(bot, family)
    question = await ask_to_verify(sandbox, code)

    sandbox.fail_with(502, count=1, chats=[STAFF])
    with caplog.at_level(logging.WARNING, logger="handlers.errors"):
        await sandbox.press(STAFF, question.message_id, CASE.build("ok", code, "verified"))
        await sandbox.wait_for(lambda: sandbox.stats.refused(STAFF) == 1)
        await wait_until_idle(bot)
    await sandbox.wait_for(lambda: NOTICE in texts(sandbox, family), timeout=30)
    assert await case_status(bot, code) == CaseStatus.VERIFIED
    assert not error_texts(i18n) & set(texts(sandbox, STAFF))
    assert any("its effect is stored" in record.getMessage() for record in caplog.records)


async def test_a_reply_that_timed_out_is_neither_sent_again_nor_apologised_for(
    make_bot: Callable[..., Awaitable[BotHarness]], i18n: I18n
) -> None:
    """The API carries the /help answer out but answers after the bot stopped waiting: it may
    have arrived (it did), so no second copy and no "something went wrong"."""
    bot = await make_bot({"read_timeout": 0.5})
    sandbox = bot.sandbox
    asker = sandbox.add_user(language_code="en").id
    sandbox.slow_answers(2.0, chats=[asker])
    await sandbox.send_text(asker, "/help")
    await sandbox.next_message(asker)
    await wait_until_idle(bot)  # the handler, and the error handler after it, are done
    assert len(sandbox.stats.sends_to(asker)) == 1
    assert not error_texts(i18n) & set(texts(sandbox, asker))


class Clock:
    """A fixed clock for `services.clock`, moved only by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_an_alert_that_timed_out_is_sent_once_more_later_never_a_third_time(
    make_bot: Callable[..., Awaitable[BotHarness]],
) -> None:
    """Every send to the family is carried out but answered after the bot stopped waiting. The
    alert is not sent again at once; once more after MAYBE_SENT_DELAY, and that timing out too
    it counts as delivered: two copies at most, never three."""
    bot = await make_bot({"read_timeout": 0.5}, delivery_sweep_seconds=0.2)
    assert bot.services is not None and bot.application is not None
    clock = Clock()
    bot.services.clock = clock
    delivery = bot.application.bot_data[DELIVERY_KEY]
    assert isinstance(delivery, Delivery)
    sandbox = bot.sandbox
    family = sandbox.add_user(language_code="en").id
    sandbox.slow_answers(2.0, chats=[family])
    async with bot.services.sessions() as session, session.begin():
        await known_user(session, bot.services.keys, family, "en")
        await outbox.enqueue(
            session,
            bot.services.cipher,
            [Outgoing(bot.key(family), "alert", "cases.public_note", {"code": "C", "note": "n"})],
            now=clock(),
        )

    async def maybe_sent() -> bool:
        rows = await rows_to(bot, family)
        return rows[0].status == OutboxStatus.PENDING and rows[0].last_error == MAYBE_SENT_ERROR

    await eventually(maybe_sent, "the alert waiting as maybe sent")
    assert len(sandbox.stats.sends_to(family)) == 1
    await delivery.drain(wait=True)  # not due yet: nothing is sent
    assert len(sandbox.stats.sends_to(family)) == 1

    clock.now += MAYBE_SENT_DELAY
    await delivery.drain(wait=True)  # sent again; times out again
    assert len(sandbox.stats.sends_to(family)) == 2
    assert [row.status for row in await rows_to(bot, family)] == [OutboxStatus.SENT]
    clock.now += MAYBE_SENT_DELAY * 10
    await delivery.drain(wait=True)
    assert len(sandbox.stats.sends_to(family)) == 2
