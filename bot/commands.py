"""The command menu (setMyCommands), per language and per audience.

Families see family commands in their own language; staff commands appear only in the staff chat
and in the private chats of staff members, so an ordinary user is never shown them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from telegram.error import TelegramError

from bot.i18n import N_, I18n, Translator

TELEGRAM_LANGUAGE_CODES = ("uk", "en", "ru")

FAMILY_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Main menu")),
    ("report", N_("Report a detention")),
    ("status", N_("Status of my cases")),
    ("language", N_("Change the language")),
    ("privacy", N_("What we store and who sees it")),
    ("help", N_("Help")),
    ("cancel", N_("Stop what you are doing")),
)
STAFF_COMMANDS: tuple[tuple[str, str], ...] = (
    ("inbox", N_("Cases waiting for review")),
    ("case", N_("Open a case by its code")),
    ("broadcast", N_("Send an announcement")),
    ("broadcasts", N_("Recent announcements")),
    ("visibility", N_("Record what the family allows to publish")),
    ("keep", N_("Keep a case's details if the family leaves")),
)


def commands_for(tr: Translator, *, staff: bool) -> list[BotCommand]:
    pairs: Iterable[tuple[str, str]] = FAMILY_COMMANDS + (STAFF_COMMANDS if staff else ())
    return [BotCommand(name, tr.gettext(description)) for name, description in pairs]


async def publish_commands(
    bot: Bot, i18n: I18n, *, default_language: str, staff_chat_ids: Iterable[int] = ()
) -> None:
    """Set the menus. Telegram takes only two-letter language codes, so `crh` speakers get the
    default menu until they choose Crimean Tatar, which sets a menu for their own chat."""
    await bot.set_my_commands(
        commands_for(i18n.get(default_language), staff=False), scope=BotCommandScopeDefault()
    )
    for lang in TELEGRAM_LANGUAGE_CODES:
        await bot.set_my_commands(
            commands_for(i18n.get(lang), staff=False),
            scope=BotCommandScopeDefault(),
            language_code=lang,
        )
    for chat_id in staff_chat_ids:
        await publish_chat_commands(bot, i18n.get(default_language), chat_id, staff=True)


async def publish_chat_commands(bot: Bot, tr: Translator, chat_id: int, *, staff: bool) -> None:
    """One chat's own menu (staff members, crh speakers); a failure is not worth an error."""
    with contextlib.suppress(TelegramError):
        await bot.set_my_commands(commands_for(tr, staff=staff), scope=BotCommandScopeChat(chat_id))
