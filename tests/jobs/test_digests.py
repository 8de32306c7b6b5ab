"""The digest job on a fixed clock (Services.clock), delivered through the sandbox: one message for
a day with three changes, none for a quiet day, and parts under Telegram's limit for 300."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.texts.messages.monitors import TELEGRAM_LIMIT, telegram_length
from jobs.digests import run_digests
from storage import digests, subscriptions
from storage.enums import CaseStatus, EventKind, MonitorStatus, OutboxKind, Region, Role, Visibility
from storage.models import Case, CaseEvent, OutboxMessage, User
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness

# 2026-06-01 is summer time in Kyiv (UTC+3): 18:00 local is 15:00 UTC.
DAY1_SEND = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


async def _setup(bot: BotHarness) -> int:
    sandbox, services = bot.sandbox, bot.services
    assert services is not None
    monitor = sandbox.add_user(language_code="en").id
    await sandbox.send_text(monitor, "/start")
    await sandbox.next_message(monitor)
    async with services.sessions() as session, session.begin():
        user = await session.get(User, bot.key(monitor))
        assert user is not None
        user.role, user.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        await subscriptions.follow_region(session, bot.key(monitor), Region.CRIMEA)
    await sandbox.send_text(monitor, "/digest on 18:00")
    assert "18:00" in (await sandbox.next_message(monitor)).plain
    return monitor


async def _events(bot: BotHarness, count: int, at: datetime, **case: object) -> list[str]:
    """`count` public cases in Crimea, each with one status change at `at` (+1 s each)."""
    services = bot.services
    assert services is not None
    codes = []
    async with services.sessions() as session, session.begin():
        for number in range(count):
            code = await make_case(
                session,
                services.cipher,
                keys=services.keys,
                reporter_id=4242,
                status=CaseStatus.VERIFIED,
                visibility=Visibility.PUBLIC,
                name=f"Person {number:03d} <&>",
                created_at=at - timedelta(days=10),
                **case,  # type: ignore[arg-type]
            )
            case_id = await session.scalar(select(Case.id).where(Case.code == code))
            session.add(
                CaseEvent(
                    case_id=case_id,
                    kind=EventKind.STATUS_CHANGED,
                    old_status=CaseStatus.VERIFIED,
                    new_status=CaseStatus.CHARGED,
                    public=True,
                    created_at=at + timedelta(seconds=number),
                )
            )
            codes.append(code)
    return codes


async def test_digest_days(running_bot: BotHarness) -> None:
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    monitor = await _setup(running_bot)
    now = [DAY1_SEND - timedelta(hours=5)]
    services.clock = lambda: now[0]
    three = await _events(running_bot, 3, DAY1_SEND - timedelta(hours=4))
    hidden = await _events(running_bot, 1, DAY1_SEND - timedelta(hours=4), region=Region.KHERSON)

    assert await run_digests(services) == 0  # 13:00 local: not yet
    now[0] = DAY1_SEND + timedelta(minutes=4)
    assert await run_digests(services) == 1
    assert await run_digests(services) == 0  # once a day
    digest = await sandbox.next_message(monitor)
    assert digest.parse_mode == "HTML" and "Digest for" in digest.plain
    for code in three:
        assert digest.plain.count(code) == 1
    assert "Person 000 <&>" in digest.plain and hidden[0] not in digest.plain

    now[0] = DAY1_SEND + timedelta(days=1, minutes=4)  # a day with no changes
    assert await run_digests(services) == 0

    day3 = DAY1_SEND + timedelta(days=2)
    codes = await _events(running_bot, 300, day3 - timedelta(hours=6))
    now[0] = day3 + timedelta(minutes=1)
    parts = await run_digests(services)
    assert parts > 1
    messages = await sandbox.wait_for_messages(monitor, 1 + 2 + parts)  # /start, /digest, day 1
    received = messages[-parts:]
    for message in received:
        assert message.text is not None and telegram_length(message.text) <= TELEGRAM_LIMIT
        assert message.parse_mode == "HTML"
    text = "\n".join(m.plain for m in received)
    assert all(text.count(code) == 1 for code in codes)
    assert f"(part {parts} of {parts})" in received[-1].plain
    async with services.sessions() as session:
        keys = list(
            await session.scalars(
                select(OutboxMessage.dedupe_key)
                .where(OutboxMessage.kind == OutboxKind.DIGEST)
                .order_by(OutboxMessage.id)
            )
        )
    assert keys[-1] == f"digest:2026-06-03:{running_bot.key(monitor)}:{parts}"
    # parts are full: each but the last could not take the next line
    assert sum(telegram_length(m.text or "") for m in received[:-1]) > (parts - 1) * 3500


def test_send_time_parsing_and_summer_time() -> None:
    assert digests.parse_send_time("08:30") == 510
    assert digests.parse_send_time("24:00") is None and digests.parse_send_time("8") is None
    winter = digests.send_moment(datetime(2026, 1, 10).date(), 18 * 60, "Europe/Kyiv")
    summer = digests.send_moment(datetime(2026, 7, 10).date(), 18 * 60, "Europe/Kyiv")
    assert (winter.hour, summer.hour) == (16, 15)
