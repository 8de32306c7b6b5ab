"""A button on a message the bot can no longer edit (too old for Telegram to include, or
deleted): the press is answered, and what would have replaced the message arrives as a new one.

Before `handlers.pressed`, PTB's edit shortcut raised TypeError on Telegram's
InaccessibleMessage: `/forget`'s "Yes" erased the data and then said something went wrong.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.i18n import I18n
from handlers.errors import SOMETHING_WENT_WRONG
from storage.models import User
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle


async def test_forget_yes_on_a_message_too_old_to_edit(running_bot: BotHarness, i18n: I18n) -> None:
    sandbox = running_bot.sandbox
    services = running_bot.services
    assert services is not None
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/forget")
    question = await sandbox.next_message(user)

    query_id = await sandbox.press(user, question.message_id, "forget:yes", too_old=True)
    assert (await sandbox.wait_for_callback_answer(query_id)).answered
    # The data is erased (the language too: the answer is in the hotline's default language).
    erased = i18n.get(None).gettext("Your data has been erased.")
    await sandbox.wait_for(lambda: any(m.plain == erased for m in sandbox.messages(user)))
    await wait_until_idle(running_bot)

    # Sent anew (the question was not edited), and nothing says something went wrong.
    assert question.edits == []
    texts = {m.plain for m in sandbox.messages(user)}
    wrong = {i18n.get(lang).gettext(SOMETHING_WENT_WRONG) for lang in ("en", None)}
    assert not wrong & texts, texts
    async with services.sessions() as session:
        row = await session.scalar(select(User).where(User.id == services.keys.key(user)))
    assert row is None or row.telegram_id is None


async def test_forget_no_on_a_deleted_message(running_bot: BotHarness, i18n: I18n) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/forget")
    question = await sandbox.next_message(user)
    seen = len(sandbox.messages(user))
    sandbox.message(user, question.message_id).deleted = True  # the user deleted it

    query_id = await sandbox.press(user, question.message_id, "forget:no")
    assert (await sandbox.wait_for_callback_answer(query_id)).answered
    kept = (await sandbox.wait_for_messages(user, seen + 1))[-1]
    assert kept.plain == i18n.get("en").gettext("Nothing was erased.")
