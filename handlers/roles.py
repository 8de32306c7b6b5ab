"""/grant and /revoke: admins give and take the staff and monitor roles.

/grant 123456789 staff      /grant 123456789 monitor      /revoke 123456789
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot.commands import publish_role_commands
from bot.context import HotlineApplication, HotlineContext
from handlers.guard import requires
from storage.access import Permission
from storage.enums import Role
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
        await message.reply_text(tr.gettext("Usage: /grant <user id> staff|monitor"))
        return
    user_id, role = parsed
    if user_id in context.services.settings.admin_ids:
        await message.reply_text(tr.gettext("That user is an admin already (set in the settings)."))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        await grant_role(
            session, actor_id=context.profile.id, user_id=user_id, role=role, now=services.clock()
        )
    await message.reply_text(
        tr.gettext("User {user} now has the role {role}.").format(user=user_id, role=role.value)
    )
    await _publish_menu(context, user_id, role)


@requires(Permission.GRANT_ROLES, "role.revoke")
async def revoke(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None:
        return
    tr = context.tr
    user_id = parse_revoke(list(context.args or []))
    if user_id is None:
        await message.reply_text(tr.gettext("Usage: /revoke <user id>"))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        revoked = await revoke_role(
            session, actor_id=context.profile.id, user_id=user_id, now=services.clock()
        )
    if revoked:
        text = tr.gettext("User {user} no longer has a staff or monitor role.")
    else:
        text = tr.gettext("User {user} had no role to revoke.")
    await message.reply_text(text.format(user=user_id))
    if revoked:
        await _publish_menu(context, user_id, Role.FAMILY)


async def _publish_menu(context: HotlineContext, user_id: int, role: Role) -> None:
    """The user's own command menu follows their role at once, in their language."""
    services = context.services
    async with services.sessions() as session:
        language = await language_of(session, user_id)
    await publish_role_commands(context.bot, services.i18n.get(language), user_id, role)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("grant", grant))
    application.add_handler(CommandHandler("revoke", revoke))
