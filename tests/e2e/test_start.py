"""The real bot over HTTP against the sandbox: /start, /help, the menu, a restart."""

from __future__ import annotations

from sqlalchemy import select

from bot.callbacks import GUIDE, LANGUAGE, MENU, URGENT
from storage.models import User
from tests.support.harness import BotHarness
from tests.support.identity import grant


async def test_start_replies_in_the_users_language_with_the_menu(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/start")
    reply = await sandbox.next_message(user.id)
    assert "hotline" in reply.plain.lower()
    callbacks = [data for row in reply.buttons for _, data in row]
    assert callbacks == [
        URGENT.build("start"),
        MENU.build("report"),
        MENU.build("status"),
        GUIDE.build("open", "-"),
        MENU.build("language"),
    ]
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        stored = await session.scalar(select(User).where(User.id == running_bot.key(user.id)))
    assert stored is not None and stored.language == "en"


async def test_start_in_ukrainian_by_default(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="de")
    await sandbox.send_text(user.id, "/start")
    reply = await sandbox.next_message(user.id)
    assert "гаряч" in reply.plain.lower() or "лінія" in reply.plain.lower()


async def test_help_and_command_menu(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/help")
    reply = await sandbox.next_message(user.id)
    assert "/report" in reply.plain and "/inbox" not in reply.plain
    assert sandbox.commands  # setMyCommands was called at start


async def test_language_choice_is_stored_and_used(running_bot: BotHarness) -> None:
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="uk")
    await sandbox.send_text(user.id, "/language")
    menu = await sandbox.next_message(user.id)
    labels = [label for row in menu.buttons for label, _ in row]
    assert labels == ["Українська", "Qırımtatarca", "English", "Русский"]
    await sandbox.press(user.id, menu.message_id, LANGUAGE.bare("en"))
    edited = await sandbox.wait_for_edit(user.id, menu.message_id)
    assert "English" in edited.plain
    await sandbox.send_text(user.id, "/start")
    reply = await sandbox.next_message(user.id)
    assert "Report a detention" in [label for row in reply.buttons for label, _ in row]


async def test_user_survives_a_restart(harness: BotHarness) -> None:
    sandbox = harness.sandbox
    await harness.start()
    user = sandbox.add_user(language_code="en")
    await sandbox.send_text(user.id, "/start")
    await sandbox.next_message(user.id)
    await harness.stop()
    await harness.start()
    await sandbox.send_text(user.id, "/help")
    reply = await sandbox.next_message(user.id)
    assert "/report" in reply.plain


async def test_role_granted_before_first_contact_still_takes_telegrams_language(
    running_bot: BotHarness,
) -> None:
    from storage.enums import Role

    assert running_bot.services is not None
    sandbox = running_bot.sandbox
    user = sandbox.add_user(language_code="en")
    async with running_bot.services.sessions() as session, session.begin():
        await grant(
            session, running_bot.services.keys, user.id, Role.STAFF
        )  # `python -m bot staff add` before they wrote
    await sandbox.send_text(user.id, "/start")
    assert "hotline" in (await sandbox.next_message(user.id)).plain.lower()
    async with running_bot.services.sessions() as session:
        stored = await session.get(User, running_bot.key(user.id))
    assert stored is not None and stored.language == "en" and stored.role == Role.STAFF
