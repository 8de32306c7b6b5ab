"""/cases for monitors through the real bot: public and anonymous cases listed, filtered, each
with a Follow button (anonymous ones without name); a saved filter brings the alerts of its
cases and no others, and the daily digest follows it too; the anonymised export needs an
admin's approval, then arrives without a name."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.callbacks import LIBRARY
from bot.callbacks import MONITOR as MONITOR_BUTTONS
from storage import cases, recipients
from storage.digests import DueDigest, digest_items
from storage.enums import CaseStatus, Custody, MonitorStatus, Region, Role, SubscriptionScope
from storage.enums import Visibility as V
from storage.models import Case, CaseRecord, Subscription, User
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import known_user
from tests.support.waiting import settled

MONITOR = 3401
ADMIN = 9001
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
SEEDED = {  # key: name, visibility, region, custody, article, detention year
    "public_colony": ("Emir Kuku", V.PUBLIC, Region.CRIMEA, Custody.COLONY, "205.5", 2016),
    "anonymous_colony": ("Hidden One", V.ANONYMOUS, Region.CRIMEA, Custody.COLONY, "205.5", 2016),
    "public_other": ("Vadym Siruk", V.PUBLIC, Region.CRIMEA, Custody.PRE_TRIAL, "278", 2019),
    "kherson": ("Iryna Horobtsova", V.PUBLIC, Region.KHERSON, Custody.COLONY, "275", 2022),
    "staff_only": ("Secret Person", V.STAFF_ONLY, Region.CRIMEA, Custody.COLONY, "205.5", 2016),
}


async def seed(bot: BotHarness) -> dict[str, str]:
    services = bot.services
    assert services is not None
    services.clock = lambda: NOW
    codes = {}
    async with services.sessions() as session, session.begin():
        monitor = await known_user(session, services.keys, MONITOR, "en")
        user = await session.get(User, monitor)
        assert user is not None
        user.role, user.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        await known_user(session, services.keys, ADMIN, "en")
        for n, (key, (name, vis, region, custody, article, year)) in enumerate(SEEDED.items()):
            code = await make_case(
                session, services.cipher, keys=services.keys, reporter_id=7200 + n, name=name,
                visibility=vis, region=region, status=CaseStatus.VERIFIED, language="en",
                created_at=NOW - timedelta(days=n + 1),
            )  # fmt: skip
            case = await session.scalar(select(Case).where(Case.code == code))
            assert case is not None
            case.custody, case.detention_date = custody, date(year, 5, 1)
            session.add(CaseRecord(case_id=case.id, articles=[{"number": article}], updated_at=NOW))
            codes[key] = code
    return codes


async def test_library_lists_filters_and_follows(running_bot: BotHarness) -> None:
    codes = await seed(running_bot)
    sandbox = running_bot.sandbox
    await sandbox.send_text(MONITOR, "/cases")
    every = await sandbox.next_message(MONITOR)
    assert "4 cases" in every.plain
    assert codes["staff_only"] not in every.plain and "Secret Person" not in every.plain
    assert "Emir Kuku" in every.plain and "Hidden One" not in every.plain
    assert MONITOR_BUTTONS.build("follow", codes["anonymous_colony"]) in every.callback_data
    await sandbox.send_text(MONITOR, "/cases region:crimea custody:colony article:205.5 year:2016")
    narrowed = await sandbox.next_message(MONITOR)
    shown = {key for key, code in codes.items() if code in narrowed.plain}
    assert shown == {"public_colony", "anonymous_colony"}
    await sandbox.press(
        MONITOR, narrowed.message_id, MONITOR_BUTTONS.build("follow", codes["public_colony"])
    )
    offer = await sandbox.next_message(MONITOR)  # the monitors' own follow flow
    assert MONITOR_BUTTONS.build("sub-case", codes["public_colony"], "all") in offer.callback_data


async def test_saved_filter_brings_its_alerts_and_digest_items_only(
    running_bot: BotHarness,
) -> None:
    codes = await seed(running_bot)
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    await sandbox.send_text(MONITOR, "/cases custody:colony year:2016")
    page = await sandbox.next_message(MONITOR)
    await sandbox.press(MONITOR, page.message_id, LIBRARY.build("save", "all"))
    done = await sandbox.next_message(MONITOR)
    assert "you follow" in done.plain
    async with services.sessions() as session:
        saved = await session.scalar(
            select(Subscription).where(Subscription.scope == SubscriptionScope.FILTER)
        )
    assert saved is not None and saved.case_filter == {"custody": "colony", "year": 2016}
    staff = recipients.staff_contacts(services.admin_keys, None)
    before = len(sandbox.messages(MONITOR))
    async with services.sessions() as session, session.begin():
        for key in ("public_colony", "anonymous_colony", "public_other", "kherson", "staff_only"):
            await cases.change_status(
                session, services.cipher, codes[key], CaseStatus.CHARGED,
                actor_id=services.keys.key(ADMIN), now=NOW, staff=staff,
            )  # fmt: skip
    await settled(running_bot)
    alerts = " ".join(m.plain for m in sandbox.messages(MONITOR)[before:])
    told = {key for key, code in codes.items() if code in alerts}
    assert told == {"public_colony", "anonymous_colony"}
    async with services.sessions() as session:
        items = await digest_items(
            session,
            services.cipher,
            DueDigest(
                services.keys.key(MONITOR), "en", NOW.date(), "Europe/Kyiv",
                NOW - timedelta(hours=1), NOW + timedelta(hours=1),
            ),
        )  # fmt: skip
    assert {item["code"] for item in items} == {codes["public_colony"], codes["anonymous_colony"]}


async def test_anonymised_export_needs_an_admins_approval(running_bot: BotHarness) -> None:
    codes = await seed(running_bot)
    sandbox = running_bot.sandbox
    sandbox.add_user(ADMIN, language_code="en")  # the admin's chat with the bot
    await sandbox.send_text(MONITOR, "/cases")
    page = await sandbox.next_message(MONITOR)
    await sandbox.press(MONITOR, page.message_id, LIBRARY.build("ask"))
    asked = await sandbox.next_message(MONITOR)
    assert "asked the hotline's admins" in asked.plain
    await sandbox.press(MONITOR, page.message_id, LIBRARY.build("get", "csv"))
    waiting = await sandbox.next_message(MONITOR)
    assert "waiting for the admins" in waiting.plain
    notice = await sandbox.next_message(ADMIN)
    grant = LIBRARY.build("grant", running_bot.key(MONITOR))
    assert grant in notice.callback_data
    await sandbox.press(ADMIN, notice.message_id, grant)
    assert "Approved" in (await sandbox.next_message(ADMIN)).plain
    told = await sandbox.next_message(MONITOR)
    assert "You may now download" in told.plain
    await sandbox.press(MONITOR, page.message_id, LIBRARY.build("get", "csv"))
    sent = await sandbox.next_message(MONITOR)
    assert sent.document is not None and sent.protect_content
    data, _ = sandbox.world.files[sent.document["file_id"]]
    text = data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["code"] for row in rows} == {
        code for key, code in codes.items() if key != "staff_only"
    }
    for name, *_ in SEEDED.values():
        assert name not in text
