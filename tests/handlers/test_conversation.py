"""A family can always reach a person: threads between families and staff, through the real bot.

Families write (text, photo, document, voice...) outside any form; each message is acknowledged
in their language, lands in their thread and reaches the staff desk as a notice without the name
or the text; staff open the thread, answer (Reply button, prepared answer, or a Telegram reply to
the notice in the staff group) and the answer reaches that family only, through the outbox.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select, update

from bot.callbacks import DESK, FAMILY, FORGET, REPORT, SHOW
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from storage import threads
from storage.enums import AuditOutcome, CaseStatus, Role
from storage.models import AuditEntry, OutboxMessage, Thread, ThreadMessage
from storage.users import set_language
from tests.handlers.report_flow import Tap
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import grant, known_user
from tests.support.waiting import settled, wait_until_idle

ADMIN = 9001
STAFF = 3001
GROUP = -100500
ACK = "Received. A person from the hotline will answer you here."


async def seed_staff(bot: BotHarness) -> None:
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        await grant(session, bot.services.keys, STAFF, Role.STAFF)
        await set_language(session, bot.key(STAFF), "en")


async def seed_case(bot: BotHarness, family: int, language: str = "uk", **extra: object) -> str:
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        return await make_case(
            session,
            bot.services.cipher,
            keys=bot.services.keys,
            reporter_id=family,
            language=language,
            **extra,
        )  # type: ignore[arg-type]


async def thread_rows(bot: BotHarness) -> list[tuple[int, bool, str]]:
    """(thread id, from staff, kind) of every stored thread message, in order."""
    assert bot.services is not None
    async with bot.services.sessions() as session:
        rows = await session.execute(
            select(ThreadMessage.thread_id, ThreadMessage.from_staff, ThreadMessage.kind).order_by(
                ThreadMessage.id
            )
        )
        return [(t, s, k) for t, s, k in rows]


async def next_notice(sandbox: SandboxServer, chat: int) -> BotMessage:
    """The next desk notice in `chat` (skipping other messages, such as the ack of staff)."""
    while True:
        message = await sandbox.next_message(chat)
        if any(data.startswith("desk:mopen:") for data in message.callback_data):
            return message


async def read_family(sandbox: SandboxServer, family: int) -> BotMessage:
    """The family's next message from the hotline; a discreet notice is opened with Show."""
    message = await sandbox.next_message(family)
    show = [data for data in message.callback_data if data.startswith(SHOW.head())]
    if show:
        assert "hotline" not in message.plain.lower()  # the lock screen tells nothing
        await sandbox.press(family, message.message_id, show[0])
        return await sandbox.next_message(family)
    return message


async def staff_answers(sandbox: SandboxServer, notice: BotMessage, text: str) -> None:
    """Reply pressed under the notice (in the staff member's own chat), then the answer."""
    await sandbox.press(STAFF, notice.message_id, notice.button_data("Reply"))
    prompt = await sandbox.next_message(STAFF)
    assert "Write your answer" in prompt.plain
    await sandbox.send_text(STAFF, text)
    sent = await sandbox.next_message(STAFF)
    assert sent.plain == "Sent to the family."


async def test_three_rounds_with_attachments_survive_a_kill_nothing_lost_or_twice(
    harness: BotHarness,
) -> None:
    await harness.start()
    sandbox = harness.sandbox
    await seed_staff(harness)
    family = sandbox.add_user(language_code="uk").id
    code = await seed_case(harness, family)
    uk = harness.i18n.get("uk")
    assert uk.gettext(ACK) != ACK  # the acknowledgement really is translated

    sends = [
        lambda: sandbox.send_text(family, "Дякуємо вам! Що робити з документами?"),
        lambda: sandbox.send_photo(family, caption="протокол затримання"),
        lambda: sandbox.send_document(family, file_name="ukhvala.pdf"),
        lambda: sandbox.send_voice(family),
    ]
    for send in sends:
        await send()
        ack = await sandbox.next_message(family)
        assert ack.plain.startswith(uk.gettext(ACK))
    notices = [await next_notice(sandbox, STAFF) for _ in sends]
    for notice in notices:
        assert code in notice.plain and "Ivan" not in notice.plain
        assert "Дякуємо" not in notice.plain and "протокол" not in notice.plain
    assert [kind for _, _, kind in await thread_rows(harness)] == [
        "text",
        "photo",
        "document",
        "voice",
    ]

    # staff open the thread from a notice: the messages in order, attachments re-sent protected
    await sandbox.press(STAFF, notices[0].message_id, notices[0].button_data("Open"))
    shown = [await sandbox.next_message(STAFF) for _ in range(5)]
    assert "Дякуємо вам" in shown[0].plain
    assert [m.kind for m in shown[1:4]] == ["photo", "document", "voice"]
    assert all(m.protect_content for m in shown[:4])
    assert f"Case {code}" in shown[4].plain

    for round_number in range(3):
        answer = f"Відповідь гарячої лінії {round_number}: ми вже працюємо."
        await staff_answers(sandbox, notices[-1], answer)
        received = await read_family(sandbox, family)
        assert answer in received.plain and received.protect_content
        await wait_until_idle(harness)  # the round is over: "show" handled too
        await settled(harness)  # and recorded as sent (else it goes out again after the kill)
        await harness.kill()  # a crash between rounds
        await harness.start()
        await sandbox.send_text(family, f"Дякую, відповідь {round_number}")
        ack = await sandbox.next_message(family)
        assert ack.plain.startswith(uk.gettext(ACK))
        notices.append(await next_notice(sandbox, STAFF))

    await settled(harness)
    rows = await thread_rows(harness)
    assert len({thread for thread, _, _ in rows}) == 1  # one case, one thread
    assert [staff for _, staff, _ in rows] == [False] * 4 + [True, False] * 3
    answers = [m for m in sandbox.messages(family) if "Відповідь гарячої лінії" in m.plain]
    assert [m.plain.count("Відповідь") for m in answers] == [1, 1, 1]
    # one notice per family message, each naming a different message; one copy of each answer
    opened = [data for m in sandbox.messages(STAFF) for data in m.callback_data if "mopen" in data]
    assert len(opened) == len(set(opened)) == 7
    assert len(answers) == 3 and len({m.plain for m in answers}) == 3


async def test_two_cases_ask_which_one_and_no_case_opens_a_general_thread(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    family = sandbox.add_user(language_code="en").id
    first = await seed_case(running_bot, family, language="en")
    second = await seed_case(running_bot, family, language="en", name="Olena Ivanenko")

    await sandbox.send_text(family, "Is there news about my brother?")
    ack = await sandbox.next_message(family)
    assert "Which case is it about?" in ack.plain
    assert sorted(label for row in ack.buttons for label, _ in row) == sorted([first, second])
    assert "Ivan" not in ack.plain and "Olena" not in ack.plain  # codes only
    await next_notice(sandbox, STAFF)  # the desk heard of it at once, in the general thread
    await sandbox.press(family, ack.message_id, ack.button_data(second))
    await wait_until_idle(running_bot)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        case_threads = await threads.threads_of_case(session, second)
    assert [item.unread for item in case_threads] == [1]

    # a stranger with no case: a general thread, answered, then joined to their new case
    stranger = sandbox.add_user(language_code="en").id
    await sandbox.send_text(stranger, "My son was taken this morning. What should I do?")
    ack = await sandbox.next_message(stranger)
    assert ack.plain.startswith(ACK) and not ack.buttons
    notice = await next_notice(sandbox, STAFF)
    assert "without a case" in notice.plain
    await staff_answers(sandbox, notice, "Please file a report with /report.")
    answer = await read_family(sandbox, stranger)
    assert "Please file a report" in answer.plain
    new_code = await seed_case(running_bot, stranger, language="en")
    await sandbox.press(STAFF, notice.message_id, notice.button_data("Open"))
    shown = [await sandbox.next_message(STAFF) for _ in range(2)]  # the messages, the header
    header = shown[-1]
    await sandbox.press(STAFF, header.message_id, header.button_data("Join to a case"))
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, new_code)
    joined = await sandbox.next_message(STAFF)
    assert joined.plain == f"Joined to case {new_code}."
    async with running_bot.services.sessions() as session:
        joined_threads = await threads.threads_of_case(session, new_code)
        general = await session.scalar(
            select(func.count())
            .select_from(Thread)
            .where(Thread.user_id == running_bot.key(stranger), Thread.case_id.is_(None))
        )
    assert len(joined_threads) == 1 and general == 0
    # the stranger's next message goes straight to the case
    await sandbox.send_text(stranger, "I filed it.")
    await sandbox.next_message(stranger)
    notice = await next_notice(sandbox, STAFF)
    assert new_code in notice.plain


async def test_a_telegram_reply_in_the_staff_group_reaches_the_right_family_only(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: object
) -> None:
    from bot.i18n import I18n

    assert isinstance(i18n, I18n)
    sandbox.add_group(GROUP, "Hotline staff")
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, sqlite_database_url, data_key, staff_chat_id=GROUP),
        i18n=i18n,
    )
    try:
        await bot.start()
        await seed_staff(bot)
        one = sandbox.add_user(language_code="en").id
        two = sandbox.add_user(language_code="en").id
        code_one = await seed_case(bot, one, language="en")
        code_two = await seed_case(bot, two, language="en", name="Olena Ivanenko")
        await sandbox.send_text(one, "From family one")
        await sandbox.send_text(two, "From family two")
        await sandbox.next_message(one)  # the acknowledgements
        await sandbox.next_message(two)
        notices = [await next_notice(sandbox, GROUP), await next_notice(sandbox, GROUP)]
        by_code = {(code_one if code_one in n.plain else code_two): n for n in notices}
        assert set(by_code) == {code_one, code_two}
        # a fast answer can come before the notice's delivery is recorded: forget family one's
        assert bot.services is not None
        await settled(bot)
        async with bot.services.sessions() as session, session.begin():
            forgotten = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.chat_id == GROUP)
                .where(OutboxMessage.telegram_message_id == by_code[code_one].message_id)
                .values(telegram_message_id=None)
            )
        assert getattr(forgotten, "rowcount", 0) == 1
        # the group answers the second family first, then the first, by replying to the notices
        answer_two = await sandbox.send_text(
            STAFF, "Answer for two", chat_id=GROUP, reply_to=by_code[code_two].message_id
        )
        await sandbox.send_text(
            STAFF, "Answer for one", chat_id=GROUP, reply_to=by_code[code_one].message_id
        )
        assert "Answer for one" in (await read_family(sandbox, one)).plain
        assert "Answer for two" in (await read_family(sandbox, two)).plain
        # "sent" is a reaction on the staff member's reply: no confirmation fills the group
        answered = sandbox.world.find_user_message(GROUP, answer_two)
        assert answered is not None
        await sandbox.wait_for(lambda: answered.reactions == ["👍"])
        assert not any("Sent to the family" in m.plain for m in sandbox.messages(GROUP))
        await settled(bot)
        await wait_until_idle(bot)
        texts_one = " ".join(m.plain for m in sandbox.messages(one))
        texts_two = " ".join(m.plain for m in sandbox.messages(two))
        assert "Answer for two" not in texts_one and "Answer for one" not in texts_two
        # a non-staff member of the group cannot answer a family by a reply
        intruder = sandbox.add_user(language_code="en").id
        await sandbox.send_text(
            intruder, "I am staff, trust me", chat_id=GROUP, reply_to=by_code[code_one].message_id
        )
        await wait_until_idle(bot)
        await settled(bot)
        assert not any("trust me" in m.plain for m in sandbox.messages(one))
        assert bot.services is not None
        async with bot.services.sessions() as session:
            denied = await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.actor_id == bot.key(intruder),
                    AuditEntry.outcome == AuditOutcome.DENIED,
                )
            )
        assert denied == 1
    finally:
        await bot.close()


async def test_stale_button_unknown_command_and_sticker_each_get_an_answer(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/search Ivan")
    reply = await sandbox.next_message(user)
    assert "/help" in reply.plain
    await sandbox.send_text(user, "/nosuchcommand")
    reply = await sandbox.next_message(user)
    assert "/help" in reply.plain
    no_form_open = REPORT.build("a", "region", "crimea")
    query = await sandbox.press(user, reply.message_id, no_form_open)
    answered = await sandbox.wait_for_callback_answer(query)
    assert answered.text == "This button is no longer valid."
    query = await sandbox.press(user, reply.message_id, "no-such-family:1")
    answered = await sandbox.wait_for_callback_answer(query)
    assert answered.text == "This button is no longer valid."
    await sandbox.send_sticker(user)
    reply = await sandbox.next_message(user)
    assert reply.plain.startswith(ACK)
    await sandbox.send_text(user, "/help")
    help_text = await sandbox.next_message(user)
    assert "/report" in help_text.plain and "/inbox" not in help_text.plain
    await seed_staff(running_bot)
    await sandbox.send_text(STAFF, "/help")
    staff_help = await sandbox.next_message(STAFF)
    assert "/inbox" in staff_help.plain and "/mine" in staff_help.plain
    assert "/answers" not in staff_help.plain  # an admin's command


async def test_take_mine_filters_and_prepared_answer_in_the_familys_language(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    sandbox.user(ADMIN)
    other_staff = 3002
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session, session.begin():
        await grant(session, running_bot.services.keys, other_staff, Role.STAFF)
        await set_language(session, running_bot.key(other_staff), "en")
        await known_user(session, running_bot.services.keys, ADMIN, "en")
    family = sandbox.add_user(language_code="ru").id
    code = await seed_case(running_bot, family, language="ru")

    await sandbox.send_text(ADMIN, "/answers set lawyer en We will find a lawyer for you.")
    assert "Saved" in (await sandbox.next_message(ADMIN)).plain
    await sandbox.send_text(ADMIN, "/answers set lawyer ru Мы найдём вам адвоката.")
    assert "Saved" in (await sandbox.next_message(ADMIN)).plain
    await sandbox.send_text(STAFF, "/answers set x en y")
    assert "only for the hotline" in (await sandbox.next_message(STAFF)).plain

    await sandbox.send_text(family, "Нужен адвокат")
    await sandbox.next_message(family)
    notice = await next_notice(sandbox, STAFF)
    await sandbox.send_text(STAFF, "/inbox")
    inbox = await sandbox.next_message(STAFF)
    assert DESK.build("list", "unread", 0) in inbox.callback_data
    assert "Unread (1)" in " ".join(label for row in inbox.buttons for label, _ in row)
    await sandbox.press(STAFF, inbox.message_id, DESK.build("list", "unassigned", 0))
    listing = await sandbox.next_message(STAFF)
    thread_button = next(d for d in listing.callback_data if d.startswith("desk:open:"))
    thread_id = int(thread_button.rsplit(":", 1)[1])

    await sandbox.press(STAFF, listing.message_id, DESK.build("take", thread_id))
    took = await sandbox.next_message(STAFF)
    assert "You took this conversation" in took.plain
    await sandbox.press(other_staff, listing.message_id, DESK.build("take", thread_id))
    refused = await sandbox.next_message(other_staff)
    assert f"Already taken by staff member {running_bot.key(STAFF)}" in refused.plain
    await sandbox.send_text(other_staff, "/mine")
    assert "Nothing here." in (await sandbox.next_message(other_staff)).plain
    await sandbox.send_text(STAFF, "/mine")
    mine = await sandbox.next_message(STAFF)
    assert DESK.build("open", thread_id) in mine.callback_data
    # taken: the next family message goes to the taker only
    await sandbox.send_text(family, "Ещё вопрос")
    await sandbox.next_message(family)
    assert code in (await next_notice(sandbox, STAFF)).plain

    await sandbox.press(STAFF, notice.message_id, notice.button_data("Reply"))
    prompt = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, prompt.message_id, DESK.build("pick", thread_id, "lawyer"))
    preview = await sandbox.next_message(STAFF)
    assert "Мы найдём вам адвоката." in preview.plain  # the family's language, shown to staff
    await sandbox.press(STAFF, preview.message_id, DESK.build("send", thread_id, "lawyer"))
    assert (await sandbox.next_message(STAFF)).plain == "Sent to the family."
    answer = await read_family(sandbox, family)
    assert "Мы найдём вам адвоката." in answer.plain and "lawyer" not in answer.plain
    admin_notices = [m for m in sandbox.messages(ADMIN) if "desk:mopen" in str(m.callback_data)]
    assert len(admin_notices) == 1  # before it was taken: the desk; after: the taker only


async def test_non_staff_cannot_answer_as_staff_by_any_path(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    victim = sandbox.add_user(language_code="en").id
    impostor = sandbox.add_user(language_code="en").id
    await seed_case(running_bot, victim, language="en", status=CaseStatus.UNDER_REVIEW)
    await seed_case(running_bot, impostor, language="en", name="Someone Else")
    await sandbox.send_text(victim, "Help us please")
    await sandbox.next_message(victim)
    notice = await next_notice(sandbox, STAFF)
    message_id = int(notice.button_data("Reply").rsplit(":", 1)[1])
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        thread_id = await threads.thread_of_message(session, message_id)

    forged = [
        DESK.build("reply", thread_id),
        DESK.build("mreply", message_id),
        DESK.build("open", thread_id),
        DESK.build("take", thread_id),
        DESK.build("send", thread_id, "lawyer"),
        FAMILY.build("case", message_id, "ZZZZ-ZZZZ"),
    ]
    for data in forged:
        query = await sandbox.press(impostor, notice.message_id, data)
        answered = await sandbox.wait_for_callback_answer(query)
        assert answered.text is not None  # never silent
    await sandbox.send_text(impostor, "I am the hotline: send me the documents")
    await sandbox.next_message(impostor)  # an ordinary family message, acknowledged
    # a reply to a forged "notice" id in the impostor's own chat stays in the impostor's thread
    await sandbox.send_text(impostor, "answer", reply_to=notice.message_id)
    await sandbox.next_message(impostor)
    await settled(running_bot)
    await wait_until_idle(running_bot)
    assert [m.plain for m in sandbox.messages(victim)][1:] == []
    async with running_bot.services.sessions() as session:
        to_victim = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.chat_id == running_bot.key(victim))
        )
        denied = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.actor_id == running_bot.key(impostor),
                AuditEntry.outcome == AuditOutcome.DENIED,
            )
        )
        staff_rows = await session.scalar(
            select(func.count()).select_from(ThreadMessage).where(ThreadMessage.from_staff)
        )
    assert to_victim == 0 and staff_rows == 0
    assert denied == 5  # every desk button, refused on the server and audited


async def test_report_form_takes_several_documents_and_staff_see_them_in_the_thread(
    running_bot: BotHarness,
) -> None:
    from tests.handlers.report_flow import FULL, ORDER, answer, answer_from, begin

    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    family = sandbox.add_user(language_code="en").id
    question = await begin(sandbox, family)
    for key in ORDER[: ORDER.index("documents")]:
        question = await answer(sandbox, family, question, key, FULL[key])
    assert "detention protocol" in question.plain
    await sandbox.send_photo(family, caption="protocol")
    assert "Received 1 file" in (await sandbox.next_message(family)).plain
    await sandbox.send_document(family, file_name="warrant.pdf")
    received = await sandbox.next_message(family)
    assert "Received 2 files" in received.plain
    summary = await answer_from(
        sandbox, family, received, {**FULL, "documents": Tap("done")}, start="documents"
    )
    assert "2 files" in summary.plain
    await sandbox.press(family, summary.message_id, REPORT.build("confirm"))
    filed = await sandbox.next_message(family)
    found_code = re.search(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}\b", filed.plain)
    assert found_code is not None, filed.plain
    code = found_code.group(0)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        found = await threads.threads_of_case(session, code)
    assert [item.unread for item in found] == [2]
    await sandbox.send_text(STAFF, f"/case {code}")
    card = await sandbox.next_message(STAFF)
    while not card.plain.startswith(f"Case {code}"):  # the new-report notice came first
        card = await sandbox.next_message(STAFF)
    assert "Messages (2 unread)" in " ".join(label for row in card.buttons for label, _ in row)
    await sandbox.press(STAFF, card.message_id, DESK.build("case", code))
    shown = [await sandbox.next_message(STAFF) for _ in range(3)]
    assert [m.kind for m in shown[:2]] == ["photo", "document"]
    assert all(m.protect_content for m in shown[:2])


async def test_mydata_lists_the_conversation_and_forget_erases_it(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    family = sandbox.add_user(language_code="en").id
    await seed_case(running_bot, family, language="en")
    await sandbox.send_text(family, "A very particular sentence about the lawyer")
    await sandbox.next_message(family)
    notice = await next_notice(sandbox, STAFF)
    await staff_answers(sandbox, notice, "Our particular answer")
    await read_family(sandbox, family)
    await sandbox.send_text(family, "/mydata")
    mine = await sandbox.next_message(family)
    assert "A very particular sentence about the lawyer" in mine.plain
    assert "Our particular answer" in mine.plain
    await sandbox.send_text(family, "/forget")
    ask = await sandbox.next_message(family)
    await sandbox.press(family, ask.message_id, FORGET.build("yes"))
    await wait_until_idle(running_bot)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(ThreadMessage))
        rows = await session.scalar(select(func.count()).select_from(Thread))
    assert left == 0 and rows == 0


async def test_staff_commands_are_in_each_staff_members_own_menu(harness: BotHarness) -> None:
    """At start (staff and admins, in their language) and at once on /grant and /revoke."""
    sandbox = harness.sandbox
    assert harness.services is None
    await harness.start()
    await seed_staff(harness)
    await harness.stop()
    await harness.start()  # the menus are published at start, from the stored roles

    def menu(chat: int) -> list[str]:
        return [c["command"] for c in sandbox.commands_for({"type": "chat", "chat_id": chat})]

    assert "inbox" in menu(STAFF) and "mine" in menu(STAFF) and "answers" not in menu(STAFF)
    assert "answers" in menu(ADMIN) and "grant" in menu(ADMIN)
    newcomer = sandbox.add_user(language_code="en").id
    await sandbox.send_text(newcomer, "/start")
    await sandbox.next_message(newcomer)
    await sandbox.send_text(ADMIN, f"/grant {newcomer} staff")
    await sandbox.next_message(ADMIN)
    await wait_until_idle(harness)
    assert "inbox" in menu(newcomer)
    await sandbox.send_text(ADMIN, f"/revoke {newcomer}")
    await sandbox.next_message(ADMIN)
    await wait_until_idle(harness)
    assert "inbox" not in menu(newcomer) and "report" in menu(newcomer)


async def test_the_desk_speaks_the_staff_members_language(running_bot: BotHarness) -> None:
    """Every desk sentence comes from the catalogs: a Ukrainian staff member reads Ukrainian."""
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session, session.begin():
        await set_language(session, running_bot.key(STAFF), "uk")
    uk = running_bot.i18n.get("uk")
    family = sandbox.add_user(language_code="en").id
    await seed_case(running_bot, family, language="en")
    await sandbox.send_text(family, "Hello")
    await sandbox.next_message(family)
    notice = await next_notice(sandbox, STAFF)
    await sandbox.press(STAFF, notice.message_id, notice.callback_data[1])  # Reply
    await sandbox.next_message(STAFF)
    await sandbox.send_text(STAFF, "Відповідь")
    sent = await sandbox.next_message(STAFF)
    assert sent.plain == uk.gettext("Sent to the family.") != "Sent to the family."


async def test_a_desk_button_naming_no_case_is_answered_in_words(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    await seed_staff(running_bot)
    await sandbox.send_text(STAFF, "/mine")
    listing = await sandbox.next_message(STAFF)
    await sandbox.press(STAFF, listing.message_id, DESK.build("case", "NOT-A-CODE"))
    assert (await sandbox.next_message(STAFF)).plain == "This button is no longer valid."
