"""The digest job on a fixed clock (Services.clock), delivered through the sandbox: one message for
a day with three changes, none for a quiet day, and parts under Telegram's limit for 300; a
group's cases in its follower's digest; thirty monitors' digests built at once, in chunks, each
exactly what its own subscriptions, window and time zone make it (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import open_services
from bot.services import Services
from bot.settings import Settings
from bot.texts.messages.monitors import TELEGRAM_LIMIT, telegram_length
from jobs import digests as digest_job
from jobs.digests import run_digests
from storage import digests, subscriptions
from storage.data_keys import case_cipher, rekey_case
from storage.enums import (
    AlertFilter,
    CaseStatus,
    Custody,
    EventKind,
    MonitorStatus,
    OutboxKind,
    Region,
    Role,
    Visibility,
)
from storage.library import LibraryFilter, save_filter
from storage.models import (
    Case,
    CaseEvent,
    CaseGroup,
    CaseRecord,
    DigestSetting,
    OutboxMessage,
    User,
)
from storage.outbox import open_params
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


# -- set-based: many monitors at once, each digest as its own subscriptions make it -------------

# 2026-06-01 summer time: 18:00 in Kyiv is 15:00 UTC, in Berlin 16:00 UTC.
KYIV, BERLIN = "Europe/Kyiv", "Europe/Berlin"
RUN_AT = datetime(2026, 6, 1, 16, 30, tzinfo=UTC)
MORNING = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # in every window
LATE = datetime(2026, 6, 1, 15, 30, tzinfo=UTC)  # after Kyiv's 18:00, before Berlin's


@dataclass(frozen=True)
class Fact:
    """One case of the scenario and the one event it gets."""

    key: str
    region: Region
    visibility: Visibility
    kind: EventKind = EventKind.STATUS_CHANGED
    status: CaseStatus = CaseStatus.CHARGED
    at: datetime = MORNING
    group: bool = False
    custody: Custody | None = None


FACTS = [
    Fact("crimea-public", Region.CRIMEA, Visibility.PUBLIC),
    Fact("crimea-anonymous", Region.CRIMEA, Visibility.ANONYMOUS,
         at=MORNING + timedelta(minutes=1)),
    Fact("crimea-staff", Region.CRIMEA, Visibility.STAFF_ONLY),
    Fact("crimea-note", Region.CRIMEA, Visibility.PUBLIC, kind=EventKind.PUBLIC_NOTE,
         at=MORNING + timedelta(minutes=2)),
    Fact("crimea-anonymous-note", Region.CRIMEA, Visibility.ANONYMOUS, kind=EventKind.PUBLIC_NOTE),
    Fact("crimea-internal", Region.CRIMEA, Visibility.PUBLIC, kind=EventKind.INTERNAL_NOTE),
    Fact("kherson-sentenced", Region.KHERSON, Visibility.PUBLIC, status=CaseStatus.SENTENCED,
         at=MORNING + timedelta(minutes=3)),
    Fact("group-public", Region.SEVASTOPOL, Visibility.PUBLIC, group=True,
         at=MORNING + timedelta(minutes=4)),
    Fact("group-anonymous", Region.DONETSK, Visibility.ANONYMOUS, group=True,
         status=CaseStatus.RELEASED, at=MORNING + timedelta(minutes=5)),
    Fact("colony", Region.LUHANSK, Visibility.PUBLIC, custody=Custody.COLONY,
         at=MORNING + timedelta(minutes=6)),
    Fact("late", Region.CRIMEA, Visibility.PUBLIC, at=LATE),
    Fact("yesterday", Region.CRIMEA, Visibility.PUBLIC, at=MORNING - timedelta(days=1)),
]  # fmt: skip
FOLLOWS = (
    "all", "region", "case", "group", "filter", "verdicts", "none", "region+case+group",
    "verdicts+filter", "region+all",
)  # fmt: skip
"""What monitor n follows: FOLLOWS[n % 10] (the region is Crimea, the case "kherson-sentenced",
the filter "custody: colony", "verdicts" every case with the verdicts-and-returns filter; a "+"
joins several subscriptions of one monitor)."""


def _follows(follow: str, fact: Fact) -> bool:
    """The rule, written plainly: what a monitor following `follow` reads of `fact`'s event."""
    if "+" in follow:
        return any(_follows(part, fact) for part in follow.split("+"))
    if fact.visibility == Visibility.STAFF_ONLY:
        return False
    if fact.kind == EventKind.INTERNAL_NOTE:
        return False
    if fact.kind == EventKind.PUBLIC_NOTE and fact.visibility != Visibility.PUBLIC:
        return False
    return {
        "all": True,
        "region": fact.region == Region.CRIMEA,
        "case": fact.key == "kherson-sentenced",
        "group": fact.group,
        "filter": fact.custody == Custody.COLONY,
        "verdicts": fact.kind == EventKind.STATUS_CHANGED
        and fact.status in (CaseStatus.SENTENCED, CaseStatus.RELEASED),
        "none": False,
    }[follow]


async def _scenario(services: Services, monitors: int) -> tuple[dict[str, str], dict[int, str]]:
    """The cases of FACTS with their events, and `monitors` monitors (timezone and send time
    alternating): returns the codes by fact key and what each monitor (by user key) follows."""
    cipher, codes, follows = services.cipher, {}, {}
    async with services.sessions() as session, session.begin():
        group = CaseGroup(name=cipher.seal("The group") or b"")
        session.add(group)
        await session.flush()
        for number, fact in enumerate(FACTS):
            code = await make_case(
                session, cipher, reporter_id=9000 + number, name=f"Name <{fact.key}>",
                region=fact.region, visibility=fact.visibility, status=CaseStatus.VERIFIED,
                created_at=MORNING - timedelta(days=30),
            )  # fmt: skip
            case = await session.scalar(select(Case).where(Case.code == code))
            assert case is not None
            case.custody = fact.custody
            if number % 2:  # half the cases sealed with a data key of their own
                await rekey_case(session, cipher, case.id)
            note_cipher = await case_cipher(session, cipher, case.id, create=False)
            session.add(CaseRecord(case_id=case.id, group_id=group.id if fact.group else None))
            session.add(
                CaseEvent(
                    case_id=case.id, kind=fact.kind, public=True, created_at=fact.at,
                    old_status=CaseStatus.VERIFIED,
                    new_status=fact.status if fact.kind == EventKind.STATUS_CHANGED else None,
                    body=note_cipher.seal(f"Note <{fact.key}>")
                    if fact.kind != EventKind.STATUS_CHANGED else None,
                )
            )  # fmt: skip
            codes[fact.key] = code
        for number in range(monitors):
            user_id = 5000 + number
            session.add(
                User(
                    id=user_id, language="en", role=Role.MONITOR,
                    monitor_status=MonitorStatus.APPROVED,
                )
            )  # fmt: skip
            await session.flush()
            kyiv = number % 2 == 0
            await digests.set_digest(
                session, user_id, enabled=True, timezone=KYIV if kyiv else BERLIN,
                send_at_minute=18 * 60 - (number % 3) * 7,
            )  # fmt: skip
            follows[user_id] = FOLLOWS[number % len(FOLLOWS)]
            for follow in follows[user_id].split("+"):
                if follow in ("all", "verdicts"):
                    verdicts = follow == "verdicts"
                    await subscriptions.follow_all(
                        session,
                        user_id,
                        AlertFilter.VERDICTS_AND_RETURNS if verdicts else AlertFilter.ALL_CHANGES,
                    )
                elif follow == "region":
                    await subscriptions.follow_region(session, user_id, Region.CRIMEA)
                elif follow == "case":
                    code = codes["kherson-sentenced"]
                    await subscriptions.follow_case(session, user_id, code)
                elif follow == "group":
                    await subscriptions.follow_group(session, user_id, group.id)
                elif follow == "filter":
                    chosen = LibraryFilter(custody=Custody.COLONY)
                    await save_filter(
                        session, user_id, chosen, AlertFilter.ALL_CHANGES, now=MORNING
                    )
    return codes, follows


async def _queued(services: Services) -> dict[int, list[dict[str, Any]]]:
    """Each monitor's queued digest parts' parameters, in part order."""
    async with services.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.payload)
            .where(OutboxMessage.kind == OutboxKind.DIGEST)
            .order_by(OutboxMessage.id)
        )
        return _by_chat([(chat, open_params(services.cipher, payload)) for chat, payload in rows])


def _by_chat(rows: list[tuple[int, dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for chat, params in rows:
        found.setdefault(chat, []).append(params)
    return found


@asynccontextmanager
async def _services(database_url: str, data_key: str) -> AsyncIterator[Services]:
    settings = Settings(database_url=database_url, data_key=SecretStr(data_key))
    services = await open_services(settings)
    services.clock = lambda: RUN_AT
    try:
        yield services
    finally:
        await services.engine.dispose()


async def test_many_monitors_each_get_their_own_digest(
    database_url: str, data_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest_job, "CHUNK", 4)  # several chunks, each its own transaction
    async with _services(database_url, data_key) as services:
        codes, follows = await _scenario(services, 30)
        queued = await run_digests(services)
        assert await run_digests(services) == 0  # each day once
        parts = await _queued(services)
        assert queued == sum(len(each) for each in parts.values())
        by_code = {code: fact for fact in FACTS for code in [codes[fact.key]]}
        for number, (user_id, follow) in enumerate(sorted(follows.items())):
            berlin = number % 2 == 1
            expected = [
                fact.key
                for fact in sorted(FACTS, key=lambda fact: fact.at)
                if _follows(follow, fact)
                and fact.at > MORNING - timedelta(hours=12)
                and (fact.at < LATE or berlin)
            ]
            got = parts.get(user_id, [])
            items = [item for part in got for item in part["items"]]
            assert [by_code[item["code"]].key for item in items] == expected, (follow, berlin)
            for item in items:
                fact = by_code[item["code"]]
                public = fact.visibility == Visibility.PUBLIC
                assert item["name"] == (f"Name <{fact.key}>" if public else None)
                note = f"Note <{fact.key}>" if fact.kind == EventKind.PUBLIC_NOTE else None
                assert item["note"] == note
                local = fact.at.astimezone(ZoneInfo(BERLIN if berlin else KYIV))
                assert item["time"] == local.strftime("%H:%M")
            assert [part["part"] for part in got] == list(range(1, len(got) + 1))
        async with services.sessions() as session:
            days = set(await session.scalars(select(DigestSetting.last_sent_on)))
        assert days == {RUN_AT.date()}  # marked done also where nothing was to send


async def test_a_groups_cases_reach_the_digest_of_its_follower(running_bot: BotHarness) -> None:
    """`/follow group N` brings its cases' changes into the digest (they were left out)."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    monitor = sandbox.add_user(language_code="en").id
    await sandbox.send_text(monitor, "/start")
    await sandbox.next_message(monitor)
    key = running_bot.key(monitor)
    async with services.sessions() as session, session.begin():
        user = await session.get(User, key)
        assert user is not None
        user.role, user.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        group = CaseGroup(name=services.cipher.seal("Co-defendants") or b"")
        session.add(group)
        await session.flush()
        await subscriptions.follow_group(session, key, group.id)
        group_id = group.id
    await sandbox.send_text(monitor, "/digest on 18:00")
    assert "18:00" in (await sandbox.next_message(monitor)).plain
    inside = await _events(running_bot, 2, DAY1_SEND - timedelta(hours=4), region=Region.KHERSON)
    outside = await _events(running_bot, 1, DAY1_SEND - timedelta(hours=4))
    async with services.sessions() as session, session.begin():
        for code in inside:
            case_id = await session.scalar(select(Case.id).where(Case.code == code))
            session.add(CaseRecord(case_id=case_id, group_id=group_id))
    services.clock = lambda: DAY1_SEND + timedelta(minutes=4)
    assert await run_digests(services) == 1
    digest = await sandbox.next_message(monitor)
    assert all(code in digest.plain for code in inside) and outside[0] not in digest.plain
