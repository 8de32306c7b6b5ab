"""/grant and /revoke: admins give and take the staff and monitor roles.

/grant 123456789 staff      /grant 123456789 monitor      /revoke 123456789
"""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import CommandHandler

from bot.commands import publish_role_commands
from bot.context import HotlineApplication, HotlineContext
from handlers.guard import requires
from storage.access import Permission
from storage.enums import Role
from storage.identity import is_user_key, telegram_id_of
from storage.roles import GRANTABLE, grant_role, revoke_role
from storage.users import language_of

ROLE_WORDS = {role.value: role for role in GRANTABLE}


def parse_grant(args: list[str]) -> tuple[int, Role] | None:
    """`<numeric id> <staff|monitor>`, or None."""
    if len(args) != 2 or not args[0].isdigit() or args[1].lower() not in ROLE_WORDS:
        return None
    return int(args[0]), ROLE_WORDS[args[1].lower()]


def parse_revoke(args: list[str]) -> int | None:
    if len(args) != 1 or not args[0].isdigit():
        return None
    return int(args[0])


@requires(Permission.GRANT_ROLES, "role.grant")
async def grant(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    tr = context.tr
    parsed = parse_grant(list(context.args or []))
    if parsed is None:
        await message.reply_text(html.escape(tr.gettext("Usage: /grant <user id> staff|monitor")))
        return
    user_id, role = parsed
    services = context.services
    if user_id == 0:
        await message.reply_text(html.escape(tr.gettext("Usage: /grant <user id> staff|monitor")))
        return
    key = services.keys.key(user_id)  # a Telegram id, or the user number the bot shows staff
    if key in services.admin_keys:
        await message.reply_text(tr.gettext("That user is an admin already (set in the settings)."))
        return
    sealed = None if is_user_key(user_id) else services.keys.seal(user_id)
    async with services.sessions() as session, session.begin():
        await grant_role(
            session,
            actor_id=context.profile.id,
            user_id=key,
            role=role,
            now=services.clock(),
            sealed_telegram_id=sealed,
        )
    await message.reply_text(
        tr.gettext("User {user} now has the role {role}.").format(user=user_id, role=role.value)
    )
    await _publish_menu(context, key, role)


@requires(Permission.GRANT_ROLES, "role.revoke")
async def revoke(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    tr = context.tr
    user_id = parse_revoke(list(context.args or []))
    if user_id is None:
        await message.reply_text(html.escape(tr.gettext("Usage: /revoke <user id>")))
        return
    services = context.services
    key = services.keys.key(user_id) if user_id else 0
    async with services.sessions() as session, session.begin():
        revoked = await revoke_role(
            session, actor_id=context.profile.id, user_id=key, now=services.clock()
        )
    if revoked:
        text = tr.gettext("User {user} no longer has a staff or monitor role.")
    else:
        text = tr.gettext("User {user} had no role to revoke.")
    await message.reply_text(text.format(user=user_id))
    if revoked:
        await _publish_menu(context, key, Role.FAMILY)


async def _publish_menu(context: HotlineContext, key: int, role: Role) -> None:
    """The user's own command menu follows their role at once, in their language (in their
    chat, whose id is opened from the sealed copy; not known yet: no menu to publish)."""
    services = context.services
    async with services.sessions() as session:
        language = await language_of(session, key)
        chat = await telegram_id_of(session, services.cipher, key)
    if chat is not None:
        await publish_role_commands(context.bot, services.i18n.get(language), chat, role)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("grant", grant))
    application.add_handler(CommandHandler("revoke", revoke))
