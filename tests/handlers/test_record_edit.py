"""Staff keep the prisoner's record through the real bot and the sandbox: each field edited from
the record editor, and the family, the monitors of a public case, or nobody told, as chosen; a
non-staff user cannot edit by any button; groups set a hearing for every co-defendant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.i18n import I18n
from bot.texts.messages.record import custody_word
from handlers.record_edit import RECORD
from storage import subscriptions
from storage.enums import AuditOutcome, MonitorStatus, Role, Visibility
from storage.field_words import CUSTODY_WORDS
from storage.models import AuditEntry, CaseRecord, User
from storage.record import record_keys
from storage.users import set_language
from tests.support.case_factory import make_case
from tests.support.discreet import shown
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user
from tests.support.waiting import settled

STAFF = 3001
MONITOR = 3101
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)

TYPED = {
    "articles": ("ст. 205.5 ч. 2, 275.1", "art. 205.5 part 2, art. 275.1"),
    "criminal_case": ("Second Bakhchysarai group", "Second Bakhchysarai group"),
    "court": ("Southern District Military Court", "Southern District Military Court"),
    "next_hearing": ("12.01.2027 10:30", "12 Jan 2027 10:30 (Moscow time)"),
    "pretrial_until": ("01.03.2027", "1 Mar 2027"),
    "sentence_term": ("12 6", "12 years 6 months"),
    "detention_place": ("SIZO-1 Simferopol", "SIZO-1 Simferopol"),
    "postal_address": ("295000, Simferopol, Kyivska 1", "295000, Simferopol, Kyivska 1"),
    "punishment_cell_since": ("05.01.2027", "5 Jan 2027"),
    "end_of_term": ("01.07.2039", "1 Jul 2039"),
}
CHOSEN = {
    "custody": ("pre_trial", "In pre-trial detention"),
    "hearing_access": ("closed", "Closed hearing"),
    "sentence_regime": ("strict", "Strict regime colony"),
    "health_flags": ("urgent_care", "Needs urgent medical care"),
}


async def seed(bot: BotHarness, family: int, visibility: Visibility) -> str:
    services = bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, services.keys.key(STAFF), "en")
        await known_user(session, services.keys, MONITOR, "en")
        monitor = await session.get(User, services.keys.key(MONITOR))
        assert monitor is not None
        monitor.role, monitor.monitor_status = Role.MONITOR, MonitorStatus.APPROVED
        code = await make_case(
            session, services.cipher, keys=services.keys, reporter_id=family,
            visibility=visibility, language="en",
        )  # fmt: skip
        await subscriptions.follow_case(session, services.keys.key(MONITOR), code)
        return code


async def edit(bot: BotHarness, code: str, key: str, tell: str) -> str:
    """Open the editor, pick the field, give the value, choose whom to tell: the staff reply."""
    sandbox = bot.sandbox
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, card.message_id, RECORD.build("menu", code))
    menu = await sandbox.next_message(STAFF)
    assert RECORD.build("field", code, key) in menu.callback_data
    await sandbox.press(STAFF, menu.message_id, RECORD.build("field", code, key))
    asked = await sandbox.next_message(STAFF)
    if key in CHOSEN:
        await sandbox.press(STAFF, asked.message_id, RECORD.build("set", code, key, CHOSEN[key][0]))
    else:
        await sandbox.send_text(STAFF, TYPED[key][0])
    whom = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, whom.message_id, RECORD.build("tell", code, key, tell))
    return (await sandbox.next_message(STAFF)).plain


@pytest.mark.parametrize(
    ("visibility", "tell"),
    [(Visibility.PUBLIC, "all"), (Visibility.PUBLIC, "family"), (Visibility.ANONYMOUS, "nobody")],
)
async def test_each_record_field_edited_from_the_card_tells_whom_staff_chose(
    running_bot: BotHarness, visibility: Visibility, tell: str
) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    sandbox.add_user(MONITOR, language_code="en")
    code = await seed(running_bot, family, visibility)
    expected = {**{k: v[1] for k, v in TYPED.items()}, **{k: v[1] for k, v in CHOSEN.items()}}
    assert set(expected) == set(record_keys())  # every field of the record is edited here
    for key in record_keys():
        reply = await edit(running_bot, code, key, tell)
        assert "Saved on 1 case" in reply, (key, reply)
        if tell == "nobody":
            continue
        push = await shown(sandbox, family, await sandbox.next_message(family))
        assert code in push.plain and expected[key] in push.plain, (key, push.plain)
        if tell == "all" and key != "health_flags":  # health never reaches monitors
            alert = await sandbox.next_message(MONITOR)
            assert expected[key] in alert.plain and "Ivan Petrenko" in alert.plain
    await settled(running_bot)
    if tell == "nobody":
        assert sandbox.messages(family) == []
    if tell != "all":
        assert sandbox.messages(MONITOR) == []
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        stored = await session.scalar(select(CaseRecord))
        audits = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.record"))
        )
    assert stored is not None and stored.sentence_months == 150
    assert len(audits) == len(record_keys()) and all(
        a.actor_id == running_bot.key(STAFF) for a in audits
    )


async def test_bad_values_are_refused_in_words_and_asked_again(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed(running_bot, family, Visibility.PUBLIC)
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, card.message_id, RECORD.build("field", code, "next_hearing"))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "yesterday at noon")
    refused = await sandbox.next_message(STAFF)
    assert "could not read this date" in refused.plain
    await sandbox.send_text(STAFF, "/cancel")
    assert "Cancelled" in (await sandbox.next_message(STAFF)).plain


async def test_non_staff_cannot_edit_the_record_by_any_button(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code="en").id
    code = await seed(running_bot, family, Visibility.PUBLIC)
    await sandbox.send_text(family, "/start")
    start = await sandbox.next_message(family)
    forged = [
        RECORD.build("menu", code),
        RECORD.build("field", code, "court"),
        RECORD.build("set", code, "custody", "released"),
        RECORD.build("tell", code, "court", "all"),
    ]
    for data in forged:
        query = await sandbox.press(family, start.message_id, data)
        answer = await sandbox.wait_for_callback_answer(query)
        assert answer.text is not None and "only for the hotline's staff" in answer.text
    await sandbox.send_text(family, "/group new Forged")
    assert "only for the hotline's staff" in (await sandbox.next_message(family)).plain
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session:
        denied = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.outcome == AuditOutcome.DENIED)
            )
        )
        assert await session.scalar(select(CaseRecord)) is None
    assert len(denied) == len(forged) + 1


async def test_a_group_hearing_reaches_every_co_defendants_family(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    families = [sandbox.add_user(language_code="en").id for _ in range(3)]
    codes = [await seed(running_bot, family, Visibility.PUBLIC) for family in families]
    await sandbox.send_text(STAFF, "/group new Second Bakhchysarai group")
    created = await sandbox.next_message(STAFF)
    assert "Group 1 was created" in created.plain
    await sandbox.send_text(STAFF, "/group 1 add " + " ".join(codes))
    added = (await sandbox.next_message(STAFF)).plain
    assert all(code in added for code in codes)
    await sandbox.send_text(STAFF, "/group 1")
    menu = await sandbox.next_message(STAFF)
    assert RECORD.build("field", "g1", "next_hearing") in menu.callback_data
    assert RECORD.build("field", "g1", "health_flags") not in menu.callback_data
    await sandbox.press(STAFF, menu.message_id, RECORD.build("field", "g1", "next_hearing"))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "12.01.2027 10:30")
    whom = await sandbox.next_message(STAFF)
    await sandbox.press(
        STAFF, whom.message_id, RECORD.build("tell", "g1", "next_hearing", "family")
    )
    assert "Saved on 3 cases" in (await sandbox.next_message(STAFF)).plain
    for family, code in zip(families, codes, strict=True):
        push = await shown(sandbox, family, await sandbox.next_message(family))
        assert code in push.plain and "12 Jan 2027 10:30" in push.plain


@pytest.mark.parametrize("language", ["uk", "crh", "ru"])
def test_custody_has_its_words_in_four_languages(i18n: I18n, language: str) -> None:
    """English is the source; each other language has its own word for every custody."""
    tr, en = i18n.get(language), i18n.get("en")
    for custody in CUSTODY_WORDS:
        assert custody_word(en, custody) == CUSTODY_WORDS[custody]
        word = custody_word(tr, custody)
        assert word and word != custody_word(en, custody), (language, custody)


async def test_a_monitor_follows_a_group_and_hears_its_hearing(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    families = [sandbox.add_user(language_code="en").id for _ in range(2)]
    sandbox.add_user(MONITOR, language_code="en")
    codes = [await seed(running_bot, family, Visibility.PUBLIC) for family in families]
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():  # seed() made them follow
        await subscriptions.unfollow(session, services.keys.key(MONITOR), f"case:{codes[0]}")
        await subscriptions.unfollow(session, services.keys.key(MONITOR), f"case:{codes[1]}")
    await sandbox.send_text(STAFF, "/group new Simferopol group")
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "/group 1 add " + " ".join(codes))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(MONITOR, "/follow group 7")
    assert "no group" in (await sandbox.next_message(MONITOR)).plain
    await sandbox.send_text(MONITOR, "/follow group 1")
    assert "You now follow the group" in (await sandbox.next_message(MONITOR)).plain
    await sandbox.send_text(STAFF, "/group 1")
    menu = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, menu.message_id, RECORD.build("field", "g1", "court"))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "Southern District Military Court")
    whom = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, whom.message_id, RECORD.build("tell", "g1", "court", "all"))
    assert "Saved on 2 cases" in (await sandbox.next_message(STAFF)).plain
    alerts = [await sandbox.next_message(MONITOR) for _ in codes]
    assert sorted(code for code in codes for alert in alerts if code in alert.plain) == sorted(
        codes
    )
    await sandbox.send_text(MONITOR, "/following")
    assert "Group of co-defendants 1" in (await sandbox.next_message(MONITOR)).plain


@pytest.mark.parametrize("language", ["uk", "crh", "en", "ru"])
async def test_custody_shows_in_status_the_card_and_the_alert(
    running_bot: BotHarness, language: str
) -> None:
    """Custody in the family's /status, the staff card and the family's alert, in each language."""
    sandbox = running_bot.sandbox
    family = sandbox.add_user(language_code=language).id
    code = await seed(running_bot, family, Visibility.ANONYMOUS)
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await set_language(session, services.keys.key(family), language)
    await edit(running_bot, code, "custody", "family")
    tr = running_bot.i18n.get(language)
    word = custody_word(tr, "pre_trial")
    push = await sandbox.next_message(family)  # discreet: "Show" in their language
    assert push.plain == tr.gettext("There is news about your case.")
    await sandbox.press(family, push.message_id, push.callback_data[0])
    assert word in (await sandbox.next_message(family)).plain
    await sandbox.send_text(family, "/status")
    status = await sandbox.next_message(family)
    assert word in status.plain
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    assert custody_word(running_bot.i18n.get("en"), "pre_trial") in card.plain
