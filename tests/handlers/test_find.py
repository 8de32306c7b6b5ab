"""/find through the real bot and the sandbox: each criterion, a name through the keyed index
only (a look-alike spelling finds the same case; the search is audited without the name), the
result button opens the card, and no family member or monitor can search or open by any path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.callbacks import EXPORT, FIND, LIBRARY
from storage import tags
from storage.enums import AuditOutcome, CaseStatus, Custody, MonitorStatus, Region, Role
from storage.models import AuditEntry, Case, Thread, User
from storage.users import set_language
from tests.handlers import report_flow
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user
from tests.support.waiting import wait_until_idle

STAFF = 3201
FAMILY = 3202
MONITOR = 3203
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


async def seed(bot: BotHarness) -> dict[str, str]:
    """Five cases that differ in one criterion each; returns their codes by what sets them
    apart."""
    services = bot.services
    assert services is not None
    codes: dict[str, str] = {}
    async with services.sessions() as session, session.begin():
        staff = await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, staff, "en")
        monitor = await known_user(session, services.keys, MONITOR, "en")
        user = await session.get(User, monitor)
        assert user is not None
        user.role, user.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        await known_user(session, services.keys, FAMILY, "en")
        await tags.define_tag(session, "journalist", actor_id=staff, now=NOW)
        specs = {
            "crimea_new": (Region.CRIMEA, CaseStatus.NEW, NOW - timedelta(days=40)),
            "crimea_verified": (Region.CRIMEA, CaseStatus.VERIFIED, NOW - timedelta(days=30)),
            "kherson_verified": (Region.KHERSON, CaseStatus.VERIFIED, NOW - timedelta(days=20)),
            "colony": (Region.SEVASTOPOL, CaseStatus.SENTENCED, NOW - timedelta(days=10)),
            "tagged": (Region.DONETSK, CaseStatus.CHARGED, NOW - timedelta(days=2)),
        }
        for n, (key, (region, status, when)) in enumerate(specs.items()):
            codes[key] = await make_case(
                session, services.cipher, keys=services.keys, reporter_id=4000 + n,
                region=region, status=status, created_at=when, name=f"Person {key}",
            )  # fmt: skip
        colony = await session.scalar(select(Case).where(Case.code == codes["colony"]))
        assert colony is not None
        colony.custody = Custody.COLONY
        await tags.set_tag(session, codes["tagged"], "journalist", True, actor_id=staff, now=NOW)
        tagged = await session.scalar(select(Case.id).where(Case.code == codes["tagged"]))
        session.add(Thread(user_id=services.keys.key(4004), case_id=tagged, assigned_to=staff))
    return codes


async def find(bot: BotHarness, query: str, user: int = STAFF) -> str:
    await bot.sandbox.send_text(user, f"/find {query}")
    return (await bot.sandbox.next_message(user)).plain


def found(text: str, codes: dict[str, str]) -> set[str]:
    return {key for key, code in codes.items() if code in text}


async def test_find_by_each_criterion(running_bot: BotHarness) -> None:
    codes = await seed(running_bot)
    assert found(await find(running_bot, "region:crimea"), codes) == {
        "crimea_new",
        "crimea_verified",
    }
    assert found(await find(running_bot, "region:crimea status:verified"), codes) == {
        "crimea_verified"
    }
    # The word the reader sees works as well as the stored one.
    assert found(await find(running_bot, 'status:"Verified"'), codes) == {
        "crimea_verified",
        "kherson_verified",
    }
    assert found(await find(running_bot, "custody:colony"), codes) == {"colony"}
    assert found(await find(running_bot, "tag:journalist"), codes) == {"tagged"}
    assert found(await find(running_bot, "assignee:me"), codes) == {"tagged"}
    reported = await find(running_bot, "from:05.02.2027 to:25.02.2027")  # 33 and 18 days back
    assert found(reported, codes) == {"crimea_verified", "kherson_verified"}
    prefix = codes["kherson_verified"][:6]
    assert "kherson_verified" in found(await find(running_bot, prefix), codes)
    assert found(await find(running_bot, f"code:{codes['colony'].lower()}"), codes) == {"colony"}
    refused = await find(running_bot, "planet:mars")
    assert "I do not know the criterion “planet”" in refused


async def test_results_are_paged_and_open_the_card(running_bot: BotHarness) -> None:
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        staff = await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, staff, "en")
        made = [
            await make_case(
                session,
                services.cipher,
                keys=services.keys,
                reporter_id=5000 + n,
                region=Region.KHERSON,
                created_at=NOW - timedelta(hours=n),
            )
            for n in range(12)
        ]
    sandbox = running_bot.sandbox
    await sandbox.send_text(STAFF, "/find region:kherson")
    first = await sandbox.next_message(STAFF)
    assert "12 cases found (page 1 of 2)" in first.plain
    assert FIND.build("open", made[0]) in first.callback_data
    await sandbox.press(STAFF, first.message_id, FIND.build("page", 1))
    second = await sandbox.wait_for_edit(STAFF, first.message_id)
    assert "page 2 of 2" in second.plain and made[11] in second.plain
    await sandbox.press(STAFF, first.message_id, FIND.build("open", made[11]))
    card = await sandbox.next_message(STAFF)
    assert f"Case {made[11]}" in card.plain and card.protect_content


async def test_a_name_is_found_through_the_index_only_and_audited(
    running_bot: BotHarness,
) -> None:
    """Filed through the real form; found by the same name typed with Cyrillic look-alike
    letters, with or without the birth date; a wrong birth date finds nothing."""
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    await report_flow.file(sandbox, family)
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        staff = await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, staff, "en")
        code = await session.scalar(select(Case.code))
    assert code is not None
    name = str(report_flow.FULL["name"])
    lookalike = name.replace("e", "\u0435").replace("o", "\u043e").replace("P", "\u0420")
    assert lookalike != name
    assert code in await find(running_bot, f'name:"{lookalike}"')
    assert code in await find(running_bot, f'name:"{name.upper()}" born:21.03.1985')
    assert "No case matches" in await find(running_bot, f'name:"{name}" born:22.03.1985')
    assert "No case matches" in await find(running_bot, 'name:"Petrenko Ivan"')
    async with services.sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "case.find_by_name")
            )
        )
    assert len(rows) == 4 and {row.actor_id for row in rows} == {services.keys.key(STAFF)}
    assert f"1 found {code}" in (rows[0].detail or "")
    for row in rows:
        assert "petrenko" not in (row.detail or "").lower()


async def test_family_and_monitor_cannot_find_export_or_decide_by_any_path(
    running_bot: BotHarness,
) -> None:
    codes = await seed(running_bot)
    sandbox = running_bot.sandbox
    refusal = "only for the hotline's staff"
    for user in (FAMILY, MONITOR):
        for command in (
            '/find name:"Person crimea_new"',
            "/find region:crimea",
            "/export cases csv full",
            "/export",
            "/stats",
            "/tag " + codes["crimea_new"] + " journalist",
        ):
            await sandbox.send_text(user, command)
            reply = await sandbox.next_message(user)
            assert refusal in reply.plain, (user, command, reply.plain)
        anchor = reply.message_id
        for data in (
            FIND.build("open", codes["crimea_new"]),
            FIND.build("page", 0),
            EXPORT.build("go", "cases", "csv", "full"),
            EXPORT.build("what", "cases"),
            LIBRARY.build("grant", running_bot.key(user)),
        ):
            query_id = await sandbox.press(user, anchor, data)
            answered = await sandbox.wait_for_callback_answer(query_id)
            assert refusal in (answered.text or ""), (user, data)
    await wait_until_idle(running_bot)
    for user in (FAMILY, MONITOR):
        assert not [m for m in sandbox.messages(user) if m.document is not None]
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        denied = await session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "case.find_by_name", AuditEntry.outcome == AuditOutcome.OK
            )
        )
    assert denied is None  # no name search ran
