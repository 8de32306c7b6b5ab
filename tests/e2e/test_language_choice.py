"""The user's language: Telegram's on first contact when it is one of ours, a Crimean Tatar offer
for a Turkish Telegram (stored only if accepted), and /language setting the chat's own menu, with
staff commands for staff only."""

from __future__ import annotations

from typing import Any

from bot.commands import FAMILY_COMMANDS, STAFF_COMMANDS
from bot.sandbox.server import SandboxServer
from bot.texts.vocabulary import LANGUAGE_NAMES
from handlers.common import KEEP_LANGUAGE, OFFER_CRIMEAN_TATAR
from storage.enums import Role
from storage.models import User
from tests.support.harness import BotHarness
from tests.support.identity import grant

WELCOME = (
    "This is the hotline for families of people detained by the occupying authorities.\n\n"
    "Here you can report a detention, learn the status of a case, and hear at once when "
    "something changes. What you tell us is encrypted and seen only by the hotline's staff "
    "unless you allow more."
)


REACH = "To reach a person at the hotline, just write your message here: it goes to the staff."


def welcome_in(i18n: Any, language: str) -> str:
    """The /start text as read: who we are, then how to reach a person (no contact settings)."""
    tr = i18n.get(language)
    return tr.gettext(WELCOME) + "\n\n" + tr.gettext(REACH)


async def stored_language(bot: BotHarness, user_id: int) -> str | None:
    assert bot.services is not None
    async with bot.services.sessions() as session:
        user = await session.get(User, bot.key(user_id))
        assert user is not None
        return user.language


def chat_menu(sandbox: SandboxServer, chat_id: int) -> list[dict[str, Any]]:
    return sandbox.commands_for({"type": "chat", "chat_id": chat_id})


async def handled_so_far(sandbox: SandboxServer, user: int) -> None:
    """One user's updates are handled in order: once /help is answered, the earlier tap's work
    (setMyCommands, which the sandbox announces to no waiter) is done."""
    await sandbox.send_text(user, "/help")
    await sandbox.next_message(user)


async def test_first_contact_takes_telegrams_language_when_it_is_one_of_ours(
    running_bot: BotHarness,
) -> None:
    sandbox, i18n = running_bot.sandbox, running_bot.i18n
    russian = sandbox.add_user(language_code="ru-RU").id
    german = sandbox.add_user(language_code="de").id
    for user in (russian, german):
        await sandbox.send_text(user, "/start")
    assert (await sandbox.next_message(russian)).plain == welcome_in(i18n, "ru")
    assert (await sandbox.next_message(german)).plain == welcome_in(i18n, "uk")
    assert await stored_language(running_bot, russian) == "ru"
    assert await stored_language(running_bot, german) is None  # the default, not a guess


async def test_turkish_telegram_is_offered_crimean_tatar_once_and_it_is_stored_when_accepted(
    running_bot: BotHarness,
) -> None:
    sandbox, i18n = running_bot.sandbox, running_bot.i18n
    user = sandbox.add_user(language_code="tr").id
    await sandbox.send_text(user, "/start")
    offer = await sandbox.next_message(user)
    assert i18n.get("crh").gettext(OFFER_CRIMEAN_TATAR) in offer.plain
    assert i18n.get("uk").gettext(OFFER_CRIMEAN_TATAR) in offer.plain
    assert [label for row in offer.buttons for label, _ in row] == ["Qırımtatarca", "Українська"]
    welcome = await sandbox.next_message(user)
    assert welcome.plain == welcome_in(i18n, "uk")
    assert await stored_language(running_bot, user) is None  # only a guess so far

    await sandbox.press(user, offer.message_id, offer.button_data("Qırımtatarca"))
    edited = await sandbox.wait_for_edit(user, offer.message_id)
    assert edited.plain == i18n.get("crh").gettext("Language changed to English.")
    assert await stored_language(running_bot, user) == "crh"
    await handled_so_far(sandbox, user)
    crh = i18n.get("crh")
    assert chat_menu(sandbox, user) == [
        {"command": name, "description": crh.gettext(text)} for name, text in FAMILY_COMMANDS
    ]

    await sandbox.send_text(user, "/start")
    again = await sandbox.next_message(user)
    assert again.plain == welcome_in(i18n, "crh")  # no second offer: the next message is the menu


async def test_declining_the_offer_stores_nothing_and_asks_no_more(
    running_bot: BotHarness,
) -> None:
    sandbox, i18n = running_bot.sandbox, running_bot.i18n
    user = sandbox.add_user(language_code="tr-TR").id
    await sandbox.send_text(user, "/start")
    offer = await sandbox.next_message(user)
    await sandbox.next_message(user)
    assert offer.button_data(LANGUAGE_NAMES["uk"]) == KEEP_LANGUAGE
    await sandbox.press(user, offer.message_id, KEEP_LANGUAGE)
    edited = await sandbox.wait_for_edit(user, offer.message_id)
    assert LANGUAGE_NAMES["uk"] in edited.plain
    assert await stored_language(running_bot, user) is None
    await sandbox.send_text(user, "/help")
    help_text = await sandbox.next_message(user)
    assert help_text.plain.startswith(i18n.get("uk").gettext("What I can do:"))
    assert len(sandbox.messages(user)) == 3


async def test_other_languages_get_no_offer(running_bot: BotHarness) -> None:
    sandbox, i18n = running_bot.sandbox, running_bot.i18n
    user = sandbox.add_user(language_code="uk").id
    await sandbox.send_text(user, "/start")
    assert (await sandbox.next_message(user)).plain == welcome_in(i18n, "uk")
    await sandbox.send_text(user, "/help")
    await sandbox.next_message(user)
    assert len(sandbox.messages(user)) == 2


async def test_language_choice_sets_the_chats_menu_with_staff_commands_for_staff_only(
    running_bot: BotHarness,
) -> None:
    sandbox, i18n = running_bot.sandbox, running_bot.i18n
    assert running_bot.services is not None
    family = sandbox.add_user(language_code="uk").id
    staff = sandbox.add_user(language_code="uk").id
    async with running_bot.services.sessions() as session, session.begin():
        await grant(session, running_bot.services.keys, staff, Role.STAFF)
    for user, lang in ((family, "ru"), (staff, "en")):
        await sandbox.send_text(user, "/language")
        choice = await sandbox.next_message(user)
        assert [label for row in choice.buttons for label, _ in row] == list(
            LANGUAGE_NAMES.values()
        )
        await sandbox.press(user, choice.message_id, choice.button_data(LANGUAGE_NAMES[lang]))
        await sandbox.wait_for_edit(user, choice.message_id)
        await handled_so_far(sandbox, user)
        assert await stored_language(running_bot, user) == lang

    ru, en = i18n.get("ru"), i18n.get("en")
    assert chat_menu(sandbox, family) == [
        {"command": name, "description": ru.gettext(text)} for name, text in FAMILY_COMMANDS
    ]
    assert chat_menu(sandbox, staff) == [
        {"command": name, "description": en.gettext(text)}
        for name, text in FAMILY_COMMANDS + STAFF_COMMANDS
    ]
    assert "Відкрити справу за кодом" not in str(chat_menu(sandbox, family))
