"""Impostors and staff-side leaks (issue 12, points 1, 2, 3 and 12), through the real Application
polling the sandbox: the adversary knows detainees' names and birth dates and talks to the bot
from its own Telegram accounts, posing as a relative."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.callbacks import CASE, FORGET, SHOW
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from storage import subscriptions
from storage.enums import AuditOutcome, CaseStatus, Role, Visibility
from storage.models import AuditEntry, Case, CaseContact
from storage.users import set_language
from tests.handlers.report_flow import FULL, file
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user
from tests.support.waiting import settled

ADMIN = 9001
STAFF = 3001
CODE = re.compile(r"[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}")
SAME_PERSON = {**FULL, "name": "  petrenko  IVAN mykolaiovych"}  # typed differently
OTHER_PERSON = {**FULL, "birth": "22.03.1985"}  # not on file
BIRTH_TYPED = re.compile(r"2[12] Mar 1985")


async def admin_ready(bot: BotHarness) -> None:
    """The admin (who gets the new-report notices) reads English."""
    assert bot.services is not None
    bot.sandbox.user(ADMIN)  # the admin's chat exists, so staff notices can be delivered
    async with bot.services.sessions() as session, session.begin():
        await known_user(session, bot.services.keys, ADMIN, "en")


async def staff_ready(bot: BotHarness) -> None:
    """A staff member who reads English; made one after the reports were filed and their
    notices delivered, so that the next message in the staff chat answers what staff did."""
    assert bot.services is not None
    await settled(bot)
    async with bot.services.sessions() as session, session.begin():
        await grant(session, bot.services.keys, STAFF, Role.STAFF)
        await set_language(session, bot.key(STAFF), "en")


def masked(text: str, *user_ids: int) -> str:
    for user_id in user_ids:
        text = text.replace(str(user_id), "ID")
    return CODE.sub("CODE", text)


def code_in(message: BotMessage) -> str:
    found = CODE.findall(message.plain)
    assert len(found) == 1, message.plain
    return found[0]


async def contacts_of(bot: BotHarness, code: str) -> list[tuple[int, bool, bool]]:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        rows = await session.scalars(
            select(CaseContact).where(CaseContact.case_id == case.id).order_by(CaseContact.id)
        )
        return [(c.user_id, c.is_reporter, c.approved) for c in rows]


async def opened(sandbox: SandboxServer, chat: int) -> BotMessage:
    """A family's next message, opened: pushes to families are discreet by default (a "Show"
    button), the details come when it is pressed."""
    push = await sandbox.next_message(chat)
    if not push.callback_data or not push.callback_data[0].startswith(SHOW.head()):
        return push
    await sandbox.press(chat, push.message_id, push.callback_data[0])
    return await sandbox.next_message(chat)


async def ask(sandbox: SandboxServer, user: int, text: str) -> BotMessage:
    await sandbox.send_text(user, text)
    return await sandbox.next_message(user)


async def test_a_report_about_a_person_on_file_reads_like_a_first_report(
    running_bot: BotHarness,
) -> None:
    """Point 1: filing a report does not reveal whether the person is on file."""
    sandbox = running_bot.sandbox
    await admin_ready(running_bot)
    family = sandbox.add_user(language_code="en").id
    prober = sandbox.add_user(language_code="en").id  # knows the name and the birth date
    control = sandbox.add_user(language_code="en").id  # the same, with another birth date
    original = code_in(await file(sandbox, family))

    probed = await file(sandbox, prober)
    fresh = await file(sandbox, control, OTHER_PERSON)
    probed_code, fresh_code = code_in(probed), code_in(fresh)
    assert probed_code != original and original not in probed.plain
    assert masked(probed.text) == masked(fresh.text)  # the same words, only the code differs
    assert "already" not in probed.plain
    offers = [sandbox.messages(user)[-1] for user in (prober, control)]
    assert offers[0].text == offers[1].text and offers[0].buttons == offers[1].buttons

    # Afterwards too: /status, /status CODE and /mydata read alike; nothing else ever arrives.
    # (/mydata shows each their own answers, so the dates of birth they typed are masked.)
    for command in ("/status", "/status {code}", "/mydata"):
        answers = [
            BIRTH_TYPED.sub(
                "BIRTH", (await ask(sandbox, user, command.format(code=code))).text or ""
            )
            for user, code in ((prober, probed_code), (control, fresh_code))
        ]
        assert masked(answers[0], prober) == masked(answers[1], control), command
        assert original not in answers[0]
    await settled(running_bot)
    assert len(sandbox.messages(prober)) == len(sandbox.messages(control))

    # Staff, and only staff, see the hint: in the new-report notice and on the card.
    def hinted() -> bool:
        return any(
            probed_code in m.plain and f"Possible duplicate of case {original}" in m.plain
            for m in sandbox.messages(ADMIN)
        )

    await sandbox.wait_for(hinted)
    assert not any("duplicate" in m.plain for m in sandbox.messages(ADMIN) if fresh_code in m.plain)
    await staff_ready(running_bot)
    card = await ask(sandbox, STAFF, f"/case {probed_code}")
    assert f"Possible duplicate of case {original}" in card.plain
    assert "Status: Received" in card.plain  # status new, like any new report
    assert await contacts_of(running_bot, original) == [(running_bot.key(family), True, True)]


async def test_a_relative_is_linked_only_after_comparing_and_saying_how(
    running_bot: BotHarness,
) -> None:
    """Point 2: approval shows both reports and who asks, asks how they were verified, audits;
    until then the joiner learns nothing."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    await admin_ready(running_bot)
    family = sandbox.add_user(language_code="en", first_name="Olena").id
    joiner = sandbox.add_user(
        language_code="en", first_name="Oleh", last_name="K.", username="oleh_k"
    ).id
    original = code_in(await file(sandbox, family))
    own = code_in(await file(sandbox, joiner, {**SAME_PERSON, "arrest_place": "Bakhchysarai"}))
    await staff_ready(running_bot)

    card = await ask(sandbox, STAFF, f"/case {original}")
    assert f"<code>{running_bot.key(joiner)}</code> · waiting for approval" in card.text
    assert f"own report {own}" in card.plain
    assert CASE.build("link", original, running_bot.key(joiner)) in card.callback_data

    await sandbox.press(
        STAFF, card.message_id, CASE.build("link", original, running_bot.key(joiner))
    )
    compared = await sandbox.next_message(STAFF)
    assert compared.protect_content
    assert "Oleh K. @oleh_k" in compared.plain and str(running_bot.key(joiner)) in compared.plain
    assert own in compared.plain and original in compared.plain
    assert "✓ Name: Petrenko Ivan Mykolaiovych | petrenko IVAN mykolaiovych" in compared.plain
    assert "≠ Place of arrest: Simferopol, Kyivska 12 | Bakhchysarai" in compared.plain
    assert "Differs: Place of arrest" in compared.plain
    assert "How did you verify this person?" in compared.plain
    methods = [d for d in compared.callback_data if d.startswith(CASE.head("lok") + original)]
    assert methods == [
        CASE.build("lok", original, running_bot.key(joiner), m)
        for m in ("call", "documents", "known", "other")
    ]
    # Looking is not linking: the joiner is not on the case and has heard nothing.
    assert await contacts_of(running_bot, original) == [(running_bot.key(family), True, True)]
    await settled(running_bot)
    before = len(sandbox.messages(joiner))
    listing = await ask(sandbox, joiner, "/status")
    assert original not in listing.plain and own in listing.plain

    await sandbox.press(
        STAFF,
        compared.message_id,
        CASE.build("lok", original, running_bot.key(joiner), "documents"),
    )
    done = await sandbox.next_message(STAFF)
    assert "now receives the updates" in done.plain and "Documents" in done.plain
    linked = await opened(sandbox, joiner)
    assert original in linked.plain and "linked you" in linked.plain
    later = sandbox.messages(joiner)[before + 1 :]  # after the /status answer: only the link
    assert later[-1] is linked and len(later) <= 2  # (a discreet push first, when it is on)
    assert (running_bot.key(joiner), False, True) in await contacts_of(running_bot, original)
    async with services.sessions() as session:
        audits = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "case.link_contact")
            )
        )
    assert [(a.actor_id, a.case_code, a.target_user_id, a.outcome) for a in audits] == [
        (running_bot.key(STAFF), original, running_bot.key(joiner), AuditOutcome.OK)
    ]
    assert audits[0].detail is not None and "verified: documents" in audits[0].detail


async def test_merge_is_confirmed_first_and_tells_no_family_of_another(
    running_bot: BotHarness,
) -> None:
    """Point 3: merging shows both cases and asks first; the merged family waits and hears
    nothing; contacts never learn of each other; a stale button does not re-link a user who
    has since used /forget."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    await admin_ready(running_bot)
    family = sandbox.add_user(language_code="en").id
    relative = sandbox.add_user(language_code="en").id
    stranger = sandbox.add_user(language_code="en").id
    original = code_in(await file(sandbox, family))
    duplicate = code_in(await file(sandbox, relative, SAME_PERSON))
    unrelated = code_in(await file(sandbox, stranger, {**FULL, "name": "Someone Else"}))
    await staff_ready(running_bot)

    # A mistyped target: both cases are shown, nothing is merged until confirmed.
    card = await ask(sandbox, STAFF, f"/case {duplicate}")
    await sandbox.press(STAFF, card.message_id, CASE.build("merge", duplicate))
    await sandbox.next_message(STAFF)  # the prompt
    confirm = await ask(sandbox, STAFF, unrelated)
    assert duplicate in confirm.plain and unrelated in confirm.plain
    assert confirm.plain.count("Received") == 2  # both statuses
    assert CASE.build("mok", duplicate, unrelated) in confirm.callback_data
    async with services.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == duplicate))
        assert case is not None and case.status == CaseStatus.NEW and case.merged_into_id is None
    await sandbox.press(STAFF, confirm.message_id, CASE.build("show", duplicate))  # cancel
    card = await sandbox.next_message(STAFF)

    await settled(running_bot)
    heard = {user: len(sandbox.messages(user)) for user in (family, relative)}
    await sandbox.press(STAFF, card.message_id, CASE.build("merge", duplicate))
    await sandbox.next_message(STAFF)
    confirm = await ask(sandbox, STAFF, original)
    await sandbox.press(STAFF, confirm.message_id, CASE.build("mok", duplicate, original))
    assert "was merged into" in (await sandbox.next_message(STAFF)).plain
    await settled(running_bot)
    # Neither family heard anything of the merge; the merged family is not linked.
    assert {user: len(sandbox.messages(user)) for user in (family, relative)} == heard
    assert original not in " ".join(m.plain for m in sandbox.messages(relative))
    assert duplicate not in " ".join(m.plain for m in sandbox.messages(family))
    assert await contacts_of(running_bot, original) == [(running_bot.key(family), True, True)]
    assert original not in (await ask(sandbox, relative, "/status")).plain
    assert original not in (await ask(sandbox, relative, "/mydata")).plain
    assert str(relative) not in (await ask(sandbox, family, "/status")).plain

    # The comparison is open on a staff phone; the relative then erases their data.
    card = await ask(sandbox, STAFF, f"/case {original}")
    assert CASE.build("link", original, running_bot.key(relative)) in card.callback_data
    await sandbox.press(
        STAFF, card.message_id, CASE.build("link", original, running_bot.key(relative))
    )
    compared = await sandbox.next_message(STAFF)
    question = await ask(sandbox, relative, "/forget")
    await sandbox.press(relative, question.message_id, FORGET.build("yes"))
    await sandbox.wait_for_edit(relative, question.message_id)
    erased = len(sandbox.messages(relative))
    await sandbox.press(
        STAFF,
        compared.message_id,
        CASE.build("lok", original, running_bot.key(relative), "call"),
    )
    refused = await sandbox.next_message(STAFF)
    assert "Nothing was changed" in refused.plain
    await sandbox.press(
        STAFF, card.message_id, CASE.build("link", original, running_bot.key(relative))
    )
    assert "Nobody is waiting" in (await sandbox.next_message(STAFF)).plain
    await settled(running_bot)
    assert await contacts_of(running_bot, original) == [(running_bot.key(family), True, True)]
    assert len(sandbox.messages(relative)) == erased
    card = await ask(sandbox, STAFF, f"/case {original}")
    assert str(relative) not in card.plain


async def test_staff_know_who_reads_a_note_and_can_write_to_the_family_only(
    running_bot: BotHarness,
) -> None:
    """Point 12: on a public case, the note buttons, the prompt and the answer say who reads it;
    a note can go to the family only; the card is protected from forwarding."""
    sandbox, services = running_bot.sandbox, running_bot.services
    assert services is not None
    await staff_ready(running_bot)
    family = sandbox.add_user(language_code="en").id
    monitor = sandbox.add_user(language_code="en").id
    async with services.sessions() as session, session.begin():
        code = await make_case(
            session,
            services.cipher,
            keys=services.keys,
            reporter_id=family,
            status=CaseStatus.UNDER_REVIEW,
            visibility=Visibility.PUBLIC,
            language="en",
        )
        await grant(session, services.keys, monitor, Role.MONITOR)
        await set_language(session, services.keys.key(monitor), "en")
        await subscriptions.follow_case(session, services.keys.key(monitor), code)

    card = await ask(sandbox, STAFF, f"/case {code}")
    assert card.protect_content and "Ivan Petrenko" in card.plain
    labels = {label: data for row in card.buttons for label, data in row}
    assert labels["Note for family and monitors"] == CASE.build("note", code)
    assert labels["Note for family only"] == CASE.build("fnote", code)

    await sandbox.press(STAFF, card.message_id, CASE.build("note", code))
    prompt = await sandbox.next_message(STAFF)
    assert f"the family of case {code} (1 person) and 1 monitor who follows it" in prompt.plain
    sent = await ask(sandbox, STAFF, "The hearing is on Monday.")
    assert "The note was sent to" in sent.plain and "1 monitor" in sent.plain
    assert "Monday" in (await opened(sandbox, family)).plain
    assert "Monday" in (await sandbox.next_message(monitor)).plain

    await sandbox.press(STAFF, card.message_id, CASE.build("fnote", code))
    prompt = await sandbox.next_message(STAFF)
    assert f"Who will read it: the family of case {code} (1 person)." in prompt.plain
    assert "monitor" not in prompt.plain
    sent = await ask(sandbox, STAFF, "Only for you: the lawyer's number.")
    assert sent.plain == f"The note was sent to the family of case {code} (1 person)."
    assert "lawyer's number" in (await opened(sandbox, family)).plain
    await settled(running_bot)
    assert not any("lawyer's number" in m.plain for m in sandbox.messages(monitor))

    # A note sent with a status change goes where the change goes: the prompt says so.
    await sandbox.press(STAFF, card.message_id, CASE.build("okn", code, "verified"))
    prompt = await sandbox.next_message(STAFF)
    assert "sent with the status change" in prompt.plain
    assert f"the family of case {code} (1 person) and 1 monitor who follows it" in prompt.plain
    assert "Cancelled" in (await ask(sandbox, STAFF, "/cancel")).plain
