"""Tags: admins keep the short list (/tags add NAME, /tags remove NAME), staff read it (/tags)
and put tags on cases (/tag CODE NAME, /untag CODE NAME). /find tag:NAME and /stats tag:NAME
use them. Each change is audited by storage; every command re-checks the role."""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import CommandHandler

from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_
from handlers.guard import require
from handlers.replies import reply_html
from storage import tags
from storage.access import Permission
from storage.codes import normalise_case_code

REFUSALS = {
    "name": N_("A tag is 2 to 32 letters, digits, spaces or dashes."),
    "exists": N_("This tag already exists."),
    "full": N_("There are already {max} tags; remove one first."),
}


def _args(context: HotlineContext) -> list[str]:
    return list(context.args or [])


async def tags_command(update: Update, context: HotlineContext) -> None:
    """/tags: the list with counts; /tags add NAME, /tags remove NAME (admins)."""
    if not await require(update, context, Permission.REVIEW_CASES, action="tag.list"):
        return
    tr, services = context.tr, context.services
    args = _args(context)
    action = args[0].lower() if args else ""
    if action in ("add", "remove"):
        if not await require(update, context, Permission.MANAGE_TAGS, action=f"tag.{action}"):
            return
        name = " ".join(args[1:])
        try:
            async with services.sessions() as session, session.begin():
                if action == "add":
                    stored = await tags.define_tag(
                        session, name, actor_id=context.profile.id, now=services.clock()
                    )
                    text = tr.gettext("Tag #{tag} added.").format(tag=stored)
                else:
                    count = await tags.remove_tag(
                        session, name, actor_id=context.profile.id, now=services.clock()
                    )
                    text = tr.ngettext(
                        "Tag removed from the list and from {count} case.",
                        "Tag removed from the list and from {count} cases.",
                        count,
                    ).format(count=count)
        except tags.TagRefused as refused:
            text = tr.gettext(REFUSALS[str(refused)]).format(max=tags.MAX_TAGS)
        except tags.UnknownTag:
            text = tr.gettext("There is no such tag. /tags lists them.")
        await reply_html(update, html.escape(text))
        return
    async with services.sessions() as session:
        listed = await tags.list_tags(session)
    if not listed:
        text = tr.gettext("No tags yet. Admins add them with /tags add NAME.")
        await reply_html(update, html.escape(text))
        return
    lines = [html.escape(tr.gettext("Tags (cases):"))]
    lines += [f"• #{html.escape(item.name)} ({item.cases})" for item in listed]
    lines.append(html.escape(tr.gettext("Tag a case: /tag CODE NAME; untag: /untag CODE NAME.")))
    await reply_html(update, "\n".join(lines))


async def _set(update: Update, context: HotlineContext, on: bool) -> None:
    action = "case.tag" if on else "case.untag"
    if not await require(update, context, Permission.TAG_CASES, action=action):
        return
    tr, services = context.tr, context.services
    args = _args(context)
    code = normalise_case_code(args[0]) if args else None
    if code is None or len(args) < 2:
        usage = tr.gettext("Usage: /tag CODE NAME") if on else tr.gettext("Usage: /untag CODE NAME")
        await reply_html(update, html.escape(usage))
        return
    name = " ".join(args[1:])
    try:
        async with services.sessions() as session, session.begin():
            changed = await tags.set_tag(
                session, code, name, on, actor_id=context.profile.id, now=services.clock()
            )
            now_tags = await tags.tags_of_case(session, code)
    except tags.UnknownCase:
        await reply_html(update, html.escape(tr.gettext("No case has this code.")))
        return
    except tags.UnknownTag:
        await reply_html(update, html.escape(tr.gettext("There is no such tag. /tags lists them.")))
        return
    head = (
        tr.gettext("Case {code}: tags changed.")
        if changed
        else tr.gettext("Case {code}: nothing to change.")
    )
    shown = ", ".join(f"#{tag}" for tag in now_tags) or "—"
    await reply_html(update, html.escape(f"{head.format(code=code)} {shown}"))


async def tag_command(update: Update, context: HotlineContext) -> None:
    await _set(update, context, True)


async def untag_command(update: Update, context: HotlineContext) -> None:
    await _set(update, context, False)


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("tags", tags_command))
    application.add_handler(CommandHandler("tag", tag_command))
    application.add_handler(CommandHandler("untag", untag_command))
