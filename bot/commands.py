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
from storage.enums import Role

TELEGRAM_LANGUAGE_CODES = ("uk", "en", "ru")

FAMILY_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Main menu")),
    ("urgent", N_("A search or detention is happening now")),
    ("report", N_("Report a detention")),
    ("status", N_("Status of my cases")),
    ("guide", N_("What to do: a short guide")),
    ("letters", N_("Letters to the person, and signs of life")),
    ("language", N_("Change the language")),
    ("privacy", N_("What we store and who sees it")),
    ("help", N_("Help")),
    ("cancel", N_("Stop what you are doing")),
)
MONITOR_COMMANDS: tuple[tuple[str, str], ...] = (
    ("follow", N_("Follow a case, a region or all public cases")),
    ("following", N_("What you follow")),
    ("unfollow", N_("Stop following")),
    ("digest", N_("The daily digest")),
    ("cases", N_("The case library: public cases, filters, export")),
)
STAFF_COMMANDS: tuple[tuple[str, str], ...] = (
    ("inbox", N_("Cases waiting for review")),
    ("mine", N_("Conversations you took")),
    ("case", N_("Open a case by its code")),
    ("find", N_("Find cases by code, region, status, tag, date or name")),
    ("stats", N_("Statistics with charts")),
    ("tags", N_("Tags of cases")),
    ("tag", N_("Tag a case")),
    ("untag", N_("Take a tag off a case")),
    ("group", N_("Groups of co-defendants: hearings and verdicts")),
    ("oncall", N_("On call for urgent alerts")),
    ("broadcast", N_("Send an announcement")),
    ("broadcasts", N_("Recent announcements")),
    ("visibility", N_("Record what the family allows to publish")),
    ("keep", N_("Keep a case's details if the family leaves")),
    ("freeze", N_("Freeze an account whose phone was taken")),
    ("unfreeze", N_("Unfreeze an account")),
)


ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("grant", N_("Give a user a role")),
    ("revoke", N_("Take a role back")),
    ("answers", N_("Prepared answers for families")),
    ("export", N_("Export cases, history or the audit log")),
)


def commands_of_role(role: str) -> tuple[tuple[str, str], ...]:
    """The commands a role can use, family ones first: /help and the menus list these."""
    if role == Role.ADMIN:
        return FAMILY_COMMANDS + MONITOR_COMMANDS + STAFF_COMMANDS + ADMIN_COMMANDS
    if role == Role.STAFF:
        return FAMILY_COMMANDS + STAFF_COMMANDS
    if role == Role.MONITOR:
        return FAMILY_COMMANDS + MONITOR_COMMANDS
    return FAMILY_COMMANDS


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


async def publish_role_commands(bot: Bot, tr: Translator, chat_id: int, role: str) -> None:
    """A staff member's or admin's own menu: the commands of their role, in their language (a
    revoked role gets the family menu back)."""
    pairs = commands_of_role(role)
    commands = [BotCommand(name, tr.gettext(description)) for name, description in pairs]
    with contextlib.suppress(TelegramError):
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))


async def publish_chat_commands(bot: Bot, tr: Translator, chat_id: int, *, staff: bool) -> None:
    """One chat's own menu (staff members, crh speakers); a failure is not worth an error."""
    with contextlib.suppress(TelegramError):
        await bot.set_my_commands(commands_for(tr, staff=staff), scope=BotCommandScopeChat(chat_id))
