"""Monitors: asking for access, following cases, regions or everything, and the daily digest.

/monitor asks two questions (organisation, purpose) and sends the request to the admins, who
answer with buttons (`MONITOR` "approve"/"refuse"); the role is re-checked on the
server and every decision is audited. Approved monitors then use /follow CODE, /follow region,
/follow all (each followed by a choice: all changes, or only verdicts and returns), the Follow
button under a case (`MONITOR` "follow"), or a deep link `/start follow-CODE`; /following lists
what they follow with Unfollow buttons; /unfollow CODE|region|all; /digest on|off [HH:MM].

Every button is built and parsed by `bot.callbacks.MONITOR`, and re-checked here: a user who is
not an approved monitor gets a polite refusal and an audit row, whatever button they pressed.
"""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import MONITOR, Pressed
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.vocabulary import FILTER_WORDS, REGION_WORDS
from handlers.guard import require
from handlers.pressed import drop_buttons
from storage import audit, digests, monitors, subscriptions
from storage.access import Permission, can
from storage.codes import normalise_case_code
from storage.enums import AlertFilter, AuditOutcome, Region

log = logging.getLogger(__name__)

ASK_ORGANISATION, ASK_PURPOSE = range(2)
DEEP_LINK_PREFIX = "follow-"
ANSWER_LIMIT = 1000
SUBSCRIBE_VERBS = ("sub-case", "sub-region", "sub-all")
UNFOLLOW_VERBS = ("unf-case", "unf-region", "unf-all")


# -- pure helpers --------------------------------------------------------------------------------


def parse_region(text: str) -> Region | None:
    try:
        return Region(text.strip().lower())
    except ValueError:
        return None


def parse_target(args: list[str]) -> str | None:
    """/unfollow arguments as a subscription target: CODE, `all`, `<region>`, `region <region>`."""
    words = [a.lower() for a in args]
    if words == ["all"]:
        return subscriptions.ALL_TARGET
    if len(words) == 2 and words[0] == "group" and words[1].isdigit():
        return subscriptions.group_target(int(words[1]))
    if len(words) == 2 and words[0] == "region":
        words = words[1:]
    if len(words) == 1:
        region = parse_region(words[0])
        if region is not None:
            return subscriptions.region_target(region)
        code = normalise_case_code(args[-1])
        if code is not None:
            return subscriptions.case_target(code)
    return None


def target_label(tr: Translator, view: subscriptions.SubscriptionView) -> str:
    return label_for_target(tr, view.target)


def label_for_target(tr: Translator, target: str) -> str:
    """What a subscription's stored target ("case:CODE", "region:crimea", "all") means, in words."""
    scope, _, value = target.partition(":")
    if scope == "case":
        return tr.gettext("Case {code}").format(code=value)
    if scope == "region":
        word = REGION_WORDS.get(value)
        return tr.gettext("Region: {region}").format(region=tr.gettext(word) if word else value)
    if scope == "group":
        return tr.gettext("Group of co-defendants {number}").format(number=value)
    if scope == "filter":  # saved in the case library (handlers/case_library.py)
        return tr.gettext("A saved filter of the case library")
    return tr.gettext("All public cases")


def filter_keyboard(tr: Translator, kind: str, arg: str | None) -> InlineKeyboardMarkup:
    """The choice of changes to hear about, for a case, a region (`arg`) or everything."""
    target = (arg,) if arg is not None else ()
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext(word), callback_data=MONITOR.build(f"sub-{kind}", *target, f)
                )
            ]
            for f, word in FILTER_WORDS.items()
        ]
    )


def region_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext(REGION_WORDS[r]), callback_data=MONITOR.build("region", r)
                )
            ]
            for r in Region
        ]
    )


def unfollow_data(target: str) -> str:
    """The Unfollow button of a stored target ("case:CODE", "region:crimea", "all")."""
    scope, _, value = target.partition(":")
    return MONITOR.build(f"unf-{scope}", *([value] if value else []))


def _pressed(update: Update) -> Pressed:
    """The `mon:` press routing let through (well-formed by construction)."""
    query = update.callback_query
    pressed = MONITOR.parse(query.data if query is not None else None)
    assert pressed is not None
    return pressed


def follow_button(tr: Translator, code: str) -> InlineKeyboardMarkup:
    """The Follow button shown under a case a monitor can see."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(tr.gettext("Follow"), callback_data=MONITOR.build("follow", code))]]
    )


# -- replies -------------------------------------------------------------------------------------


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer a button or a message with `text` (already HTML)."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(text, reply_markup=markup)


async def _approved(update: Update, context: HotlineContext, action: str) -> bool:
    """Approved monitors (and admins) pass; anyone else is refused politely, and audited."""
    profile = context.profile
    if profile.is_approved_monitor and can(profile.role, Permission.FOLLOW_PUBLIC_CASES):
        return True
    services = context.services
    async with services.sessions() as session, session.begin():
        audit.record(
            session,
            actor_id=profile.id,
            action=action,
            outcome=AuditOutcome.DENIED,
            detail="not an approved monitor",
            at=services.clock(),
        )
    pseudonym = services.cipher.pseudonym(profile.id)
    log.info("refused %s to user %s: not an approved monitor", action, pseudonym)
    text = context.tr.gettext(
        "Following cases is for monitors the hotline has approved. To ask for access, "
        "send /monitor."
    )
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)
    return False


def _not_followable(tr: Translator) -> str:
    return html.escape(
        tr.gettext(
            "I cannot find a case with this code that can be followed. Please check the code "
            "(it looks like K7M4-9XQ2)."
        )
    )


# -- /monitor: asking for access -----------------------------------------------------------------


async def ask_organisation(update: Update, context: HotlineContext) -> int:
    tr = context.tr
    if context.profile.is_approved_monitor:
        await _reply(update, html.escape(tr.gettext("You are already an approved monitor.")))
        return ConversationHandler.END
    text = tr.gettext(
        "Monitors (human-rights groups, journalists, lawyers) can follow public cases. "
        "Which organisation do you work with? (/cancel to stop)"
    )
    await _reply(update, html.escape(text))
    return ASK_ORGANISATION


async def ask_purpose(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    assert message is not None and message.text is not None
    if context.user_data is not None:
        context.user_data["monitor_organisation"] = message.text.strip()[:ANSWER_LIMIT]
    text = context.tr.gettext("What will you use the case updates for?")
    await _reply(update, html.escape(text))
    return ASK_PURPOSE


async def send_request(update: Update, context: HotlineContext) -> int:
    message = update.effective_message
    assert message is not None and message.text is not None
    data = context.user_data if context.user_data is not None else {}
    organisation = str(data.pop("monitor_organisation", ""))
    services, tr = context.services, context.tr
    try:
        async with services.sessions() as session, session.begin():
            request_id = await monitors.request_access(
                session,
                services.cipher,
                context.profile.id,
                organisation,
                message.text.strip()[:ANSWER_LIMIT],
                admin_ids=services.admin_keys,
                now=services.clock(),
            )
    except monitors.RequestRefused as refused:
        text = (
            tr.gettext("You are already an approved monitor.")
            if refused.reason == "approved"
            else tr.gettext("Your request is already waiting for an admin's decision.")
        )
        await _reply(update, html.escape(text))
        return ConversationHandler.END
    pseudonym = context.services.cipher.pseudonym(context.profile.id)
    log.info("monitor request %d filed by user %s", request_id, pseudonym)
    text = tr.gettext("Thank you. Your request was sent to the hotline's admins.")
    await _reply(update, html.escape(text))
    return ConversationHandler.END


async def cancel_request(update: Update, context: HotlineContext) -> int:
    if context.user_data is not None:
        context.user_data.pop("monitor_organisation", None)
    await _reply(update, html.escape(context.tr.gettext("Your request was not sent.")))
    return ConversationHandler.END


async def decide(update: Update, context: HotlineContext) -> None:
    """An admin's Approve/Refuse button: the role is checked here and again in storage."""
    query = update.callback_query
    pressed = MONITOR.parse(query.data if query is not None else None)
    assert query is not None and pressed is not None  # routing lets only these through
    approve = pressed.verb == "approve"
    action = "monitor.approve" if approve else "monitor.refuse"
    if not await require(update, context, Permission.DECIDE_MONITOR_REQUESTS, action=action):
        return
    number = pressed.args[0]
    tr, services = context.tr, context.services
    try:
        async with services.sessions() as session, session.begin():
            decision = await monitors.decide_request(
                session,
                services.cipher,
                int(number),
                approve=approve,
                actor_id=context.profile.id,
                actor_role=context.profile.role,
                now=services.clock(),
            )
    except monitors.RequestRefused:
        await query.answer(tr.gettext("This request was already decided."), show_alert=True)
        return
    await query.answer()
    text = (
        tr.gettext("Approved: user {user} is now a monitor.")
        if decision.approved
        else tr.gettext("Refused: user {user} was told.")
    ).format(user=decision.user_id)
    await drop_buttons(query)
    if update.effective_chat is not None:
        await update.effective_chat.send_message(html.escape(text))


# -- following -----------------------------------------------------------------------------------


async def offer_case(update: Update, context: HotlineContext, typed: str) -> None:
    """Check the case can be followed, then ask which changes to hear about."""
    tr, services = context.tr, context.services
    async with services.sessions() as session:
        try:
            case = await subscriptions.followable_case(session, normalise_case_code(typed))
        except subscriptions.NotFollowable:
            case = None
        code = case.code if case is not None else None
    if code is None:
        await _reply(update, _not_followable(tr))
        return
    text = tr.gettext("Follow case {code}: which changes should I send you?").format(
        code=f"<code>{html.escape(code)}</code>"
    )
    await _reply(update, text, filter_keyboard(tr, "case", code))


async def follow_command(update: Update, context: HotlineContext) -> None:
    """/follow CODE | /follow region [name] | /follow all."""
    if not await _approved(update, context, "monitor.follow"):
        return
    tr = context.tr
    args = list(context.args or [])
    words = [a.lower() for a in args]
    if words == ["all"]:
        text = tr.gettext("Follow every public case: which changes should I send you?")
        await _reply(update, html.escape(text), filter_keyboard(tr, "all", None))
    elif words[:1] == ["region"] and len(words) == 2 and parse_region(words[1]) is not None:
        await _offer_region(update, context, words[1])
    elif words[:1] == ["region"]:
        await _reply(update, html.escape(tr.gettext("Which region?")), region_keyboard(tr))
    elif words[:1] == ["group"] and len(words) == 2 and words[1].isdigit():
        await _follow_group(update, context, int(words[1]))
    elif args:
        await offer_case(update, context, " ".join(args))
    else:
        text = tr.gettext(
            "Send /follow CODE for one case, /follow region for a region, /follow group NUMBER "
            "for a group of co-defendants, or /follow all for every public case."
        )
        await _reply(update, html.escape(text))


async def _follow_group(update: Update, context: HotlineContext, group_id: int) -> None:
    """Follow every case of a group of co-defendants (each case still heard of only as far as
    its family's consent allows): hearings and verdicts set for the group reach the monitor."""
    tr, services = context.tr, context.services
    try:
        async with services.sessions() as session, session.begin():
            await subscriptions.follow_group(session, context.profile.id, group_id)
    except subscriptions.NotFollowable:
        await _reply(update, html.escape(tr.gettext("There is no group with this number.")))
        return
    text = tr.gettext("You now follow the group of co-defendants {number}.").format(number=group_id)
    await _reply(update, html.escape(text))


async def _offer_region(update: Update, context: HotlineContext, region: str) -> None:
    tr = context.tr
    word = tr.gettext(REGION_WORDS[Region(region)])
    text = tr.gettext("Follow the region {region}: which changes should I send you?").format(
        region=word
    )
    await _reply(update, html.escape(text), filter_keyboard(tr, "region", region))


async def region_chosen(update: Update, context: HotlineContext) -> None:
    pressed = _pressed(update)
    if not await _approved(update, context, "monitor.follow"):
        return
    await _offer_region(update, context, pressed.args[0])


async def follow_button_pressed(update: Update, context: HotlineContext) -> None:
    pressed = _pressed(update)
    if not await _approved(update, context, "monitor.follow"):
        return
    await offer_case(update, context, pressed.args[0])


async def deep_link(update: Update, context: HotlineContext) -> None:
    """`/start follow-CODE`, the link staff publish for a case."""
    if not await _approved(update, context, "monitor.follow"):
        return
    payload = (context.args or [""])[0]
    await offer_case(update, context, payload.removeprefix(DEEP_LINK_PREFIX))


async def subscribe(update: Update, context: HotlineContext) -> None:
    """The filter choice: the subscription is written only now, after every check again."""
    pressed = _pressed(update)
    if not await _approved(update, context, "monitor.follow"):
        return
    kind = pressed.verb.removeprefix("sub-")
    arg = pressed.args[0] if kind != "all" else "-"
    alert_filter = AlertFilter(pressed.args[-1])
    tr, services, user_id = context.tr, context.services, context.profile.id
    async with services.sessions() as session, session.begin():
        try:
            if kind == "case":
                await subscriptions.follow_case(session, user_id, arg, alert_filter)
            elif kind == "region":
                await subscriptions.follow_region(session, user_id, Region(arg), alert_filter)
            else:
                await subscriptions.follow_all(session, user_id, alert_filter)
        except subscriptions.NotFollowable:
            await _reply(update, _not_followable(tr))
            return
        audit.record(
            session,
            actor_id=user_id,
            action="monitor.follow",
            case_code=arg if kind == "case" else None,
            detail=f"{kind}:{arg if kind == 'region' else ''} {alert_filter}",
            at=services.clock(),
        )
    text = tr.gettext("Done: you follow {what} ({filter}).").format(
        what=_what(tr, kind, arg), filter=tr.gettext(FILTER_WORDS[alert_filter])
    )
    await _reply(update, html.escape(text))


def _what(tr: Translator, kind: str, arg: str) -> str:
    if kind == "case":
        return tr.gettext("case {code}").format(code=arg)
    if kind == "region":
        return tr.gettext("the region {region}").format(region=tr.gettext(REGION_WORDS[arg]))
    return tr.gettext("every public case")


async def following(update: Update, context: HotlineContext) -> None:
    """/following: each subscription with an Unfollow button."""
    if not await _approved(update, context, "monitor.following"):
        return
    tr, services = context.tr, context.services
    async with services.sessions() as session:
        views = await subscriptions.subscriptions_of(session, context.profile.id)
    if not views:
        await _reply(
            update, html.escape(tr.gettext("You do not follow anything yet. Try /follow."))
        )
        return
    lines = [html.escape(tr.gettext("You follow:"))]
    buttons = []
    for view in views:
        label = target_label(tr, view)
        lines.append(
            html.escape(f"• {label} ({tr.gettext(FILTER_WORDS.get(view.alert_filter, ''))})")
        )
        buttons.append(
            [
                InlineKeyboardButton(
                    tr.gettext("Unfollow: {what}").format(what=label),
                    callback_data=unfollow_data(view.target),
                )
            ]
        )
    await _reply(update, "\n".join(lines), InlineKeyboardMarkup(buttons))


async def _unfollow(update: Update, context: HotlineContext, target: str | None) -> None:
    tr, services = context.tr, context.services
    removed = False
    if target is not None:
        async with services.sessions() as session, session.begin():
            removed = await subscriptions.unfollow(session, context.profile.id, target)
            if removed:
                audit.record(
                    session,
                    actor_id=context.profile.id,
                    action="monitor.unfollow",
                    detail=target.split(":")[0],
                    at=services.clock(),
                )
    text = (
        tr.gettext("Done: you no longer follow it.")
        if removed
        else tr.gettext("You were not following that. /following lists what you follow.")
    )
    await _reply(update, html.escape(text))


async def unfollow_command(update: Update, context: HotlineContext) -> None:
    if not await _approved(update, context, "monitor.unfollow"):
        return
    await _unfollow(update, context, parse_target(list(context.args or [])))


async def unfollow_button(update: Update, context: HotlineContext) -> None:
    pressed = _pressed(update)
    if not await _approved(update, context, "monitor.unfollow"):
        return
    scope = pressed.verb.removeprefix("unf-")
    target = f"{scope}:{pressed.args[0]}" if pressed.args else subscriptions.ALL_TARGET
    await _unfollow(update, context, target)


# -- digest --------------------------------------------------------------------------------------


async def digest_command(update: Update, context: HotlineContext) -> None:
    """/digest on [HH:MM] | /digest off."""
    if not await _approved(update, context, "monitor.digest"):
        return
    tr, services = context.tr, context.services
    args = [a.lower() for a in context.args or []]
    minute = digests.parse_send_time(args[1]) if len(args) == 2 else None
    if (
        not args
        or args[0] not in ("on", "off")
        or len(args) > 2
        or (len(args) == 2 and minute is None)
    ):
        text = tr.gettext(
            "Send /digest on to get a daily digest (at 18:00 Kyiv time, or /digest on 08:30 "
            "for another time), or /digest off to stop it."
        )
        await _reply(update, html.escape(text))
        return
    async with services.sessions() as session, session.begin():
        setting = await digests.set_digest(
            session, context.profile.id, enabled=args[0] == "on", send_at_minute=minute
        )
    if setting.enabled:
        hours, minutes = divmod(setting.send_at_minute, 60)
        text = tr.gettext(
            "The daily digest is on: every day at {time} ({zone}), if anything changed."
        ).format(time=f"{hours:02d}:{minutes:02d}", zone=setting.timezone)
    else:
        text = tr.gettext("The daily digest is off.")
    await _reply(update, html.escape(text))


def register(application: HotlineApplication) -> None:
    text = filters.TEXT & ~filters.COMMAND
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("monitor", ask_organisation)],
            states={
                ASK_ORGANISATION: [MessageHandler(text, ask_purpose)],
                ASK_PURPOSE: [MessageHandler(text, send_request)],
            },
            fallbacks=[CommandHandler("cancel", cancel_request)],
            name="monitor_request",
            persistent=True,
            allow_reentry=True,
        )
    )
    application.add_handler(
        CommandHandler(
            "start", deep_link, filters=filters.Regex(rf"^/start\s+{DEEP_LINK_PREFIX}\S+\s*$")
        )
    )
    application.add_handler(CommandHandler("follow", follow_command))
    application.add_handler(CommandHandler("following", following))
    application.add_handler(CommandHandler("unfollow", unfollow_command))
    application.add_handler(CommandHandler("digest", digest_command))
    application.add_handler(
        CallbackQueryHandler(decide, pattern=MONITOR.pattern_of("approve", "refuse"))
    )
    application.add_handler(
        CallbackQueryHandler(follow_button_pressed, pattern=MONITOR.pattern_of("follow"))
    )
    application.add_handler(
        CallbackQueryHandler(region_chosen, pattern=MONITOR.pattern_of("region"))
    )
    application.add_handler(
        CallbackQueryHandler(subscribe, pattern=MONITOR.pattern_of(*SUBSCRIBE_VERBS))
    )
    application.add_handler(
        CallbackQueryHandler(unfollow_button, pattern=MONITOR.pattern_of(*UNFOLLOW_VERBS))
    )
