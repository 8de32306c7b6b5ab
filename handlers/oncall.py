"""Staff on call: /oncall, and the buttons of an urgent alert ("I'll take it", then the steps the
family is told).

    /oncall                                   your state, who is on call now, your shifts
    /oncall on | /oncall off                  switch yourself (off during a shift: this shift)
    /oncall schedule <user id> <days> <hours> admins: a weekly shift, e.g. mon-fri 09-18
    /oncall unschedule <user id>              admins: remove someone's shifts

Every action re-checks the role on the server (`handlers.guard.require`), whatever button was
pressed, and is audited by the storage operation it calls. The first press of "I'll take it"
owns the case (`storage.urgent.take`: one conditional update decides); a later press gets "taken
by ..." and its alert loses the button. The owner (or an admin) then picks what the family is
told from buttons; the family reads it in plain words, in their language, through the outbox.
"""

from __future__ import annotations

import contextlib
import html
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.callbacks import DUTY
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from handlers.guard import require
from handlers.urgent_words import BY_WORDS, STEP_BUTTONS, STEP_SENTENCES, WHAT_WORDS, word
from storage import oncall, urgent
from storage.access import Permission
from storage.codes import normalise_case_code
from storage.enums import Role
from storage.identity import is_user_key
from storage.oncall import Duty, MemberDuty, ShiftError
from storage.urgent import POSTED_STEPS, UrgentDetails, UrgentNotFound


def duty_of(context: HotlineContext) -> Duty:
    services = context.services
    return Duty.of(services.admin_keys, services.settings.timezone)


def _local(context: HotlineContext, when: datetime) -> datetime:
    return when.astimezone(duty_of(context).timezone)


# -- /oncall -------------------------------------------------------------------------------------


def _shift_lines(member: MemberDuty) -> list[str]:
    return [
        f"{oncall.describe_days(shift.days)} {oncall.describe_hours(shift)}"
        for shift in member.shifts
    ]


def _state_line(context: HotlineContext, member: MemberDuty) -> str:
    tr = context.tr
    if member.switched_on:
        return tr.gettext("You are on call now (switched on until you switch off).")
    if member.on_call:
        return tr.gettext("You are on call now, by your shift.")
    if member.off_until is not None:
        return tr.gettext("You are off call until {time} (you switched off this shift).").format(
            time=tr.format_datetime(_local(context, member.off_until))
        )
    return tr.gettext("You are not on call.")


def _switch_markup(tr: Translator, member: MemberDuty) -> InlineKeyboardMarkup:
    if member.on_call:
        button = InlineKeyboardButton(tr.gettext("Go off call"), callback_data=DUTY.build("off"))
    else:
        button = InlineKeyboardButton(tr.gettext("Go on call"), callback_data=DUTY.build("on"))
    return InlineKeyboardMarkup([[button]])


async def _overview(context: HotlineContext) -> tuple[str, InlineKeyboardMarkup]:
    tr, services = context.tr, context.services
    async with services.sessions() as session:
        members = await oncall.roster(session, duty_of(context), now=services.clock())
    me = next(
        (m for m in members if m.user_id == context.profile.id),
        MemberDuty(context.profile.id, False, False, None, ()),
    )
    on_call = [m.user_id for m in members if m.on_call]
    lines = [_state_line(context, me)]
    own = _shift_lines(me)
    if own:
        lines.append(tr.gettext("Your weekly shifts: {shifts}").format(shifts=", ".join(own)))
    lines.append(
        tr.ngettext(
            "On call now: {count} staff member.",
            "On call now: {count} staff members.",
            len(on_call),
        ).format(count=len(on_call))
    )
    if not on_call:
        lines.append(tr.gettext("Nobody is on call: urgent alerts go to the admins straight away."))
    if context.profile.role == Role.ADMIN:
        lines += ["", tr.gettext("Roster:")]
        for member in members:
            mark = "🟢" if member.on_call else "⚪"
            shifts = ", ".join(_shift_lines(member)) or "—"
            lines.append(f"{mark} {member.user_id}: {shifts}")
        lines += [
            "",
            tr.gettext(
                "Set a weekly shift: /oncall schedule <user id> <days> <hours>, for example "
                "/oncall schedule 123456789 mon-fri 09-18 (times in {zone}). Remove someone's "
                "shifts: /oncall unschedule <user id>."
            ).format(zone=services.settings.timezone),
        ]
    return html.escape("\n".join(lines)), _switch_markup(tr, me)


async def oncall_command(update: Update, context: HotlineContext) -> None:
    message = update.effective_message
    if message is None or not await require(
        update, context, Permission.HANDLE_URGENT, action="oncall"
    ):
        return
    args = [arg.lower() for arg in context.args or []]
    if args[:1] in (["on"], ["off"]):
        await _switch(update, context, args[0] == "on")
        return
    if args[:1] == ["schedule"]:
        await _schedule(update, context, list(context.args or [])[1:])
        return
    if args[:1] == ["unschedule"]:
        await _unschedule(update, context, list(context.args or [])[1:])
        return
    if args:
        await message.reply_text(
            context.tr.gettext(
                "Usage: /oncall, /oncall on, /oncall off; admins: /oncall schedule <user id> "
                "<days> <hours>, /oncall unschedule <user id>"
            )
        )
        return
    text, markup = await _overview(context)
    await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


async def _switch(update: Update, context: HotlineContext, on: bool) -> None:
    services = context.services
    async with services.sessions() as session, session.begin():
        member = await oncall.switch(
            session, duty_of(context), context.profile.id, on, now=services.clock()
        )
    text = _state_line(context, member)
    if update.callback_query is not None:
        await update.callback_query.answer(text)
        # too old to edit, or unchanged: the answer above said it
        with contextlib.suppress(TelegramError):
            await update.callback_query.edit_message_reply_markup(
                _switch_markup(context.tr, member)
            )
    elif update.effective_message is not None:
        await update.effective_message.reply_text(
            text, reply_markup=_switch_markup(context.tr, member)
        )


async def switch_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    if not await require(update, context, Permission.HANDLE_URGENT, action="oncall"):
        return
    press = DUTY.parse(query.data)
    if press is None:
        await query.answer(context.tr.gettext("This button is no longer valid."))
        return
    await _switch(update, context, press.verb == "on")


def _target(context: HotlineContext, text: str) -> tuple[int, bytes | None] | None:
    """A Telegram id or the user number the bot shows: (user key, sealed id to send to)."""
    if not text.isdigit() or int(text) == 0:
        return None
    number = int(text)
    keys = context.services.keys
    return keys.key(number), None if is_user_key(number) else keys.seal(number)


async def _schedule(update: Update, context: HotlineContext, args: list[str]) -> None:
    message = update.effective_message
    assert message is not None
    tr = context.tr
    if not await require(update, context, Permission.MANAGE_ONCALL, action="oncall.schedule"):
        return
    usage = tr.gettext(
        "Usage: /oncall schedule <user id> <days> <hours>, for example /oncall schedule "
        "123456789 mon-fri 09-18, or sat,sun 10-16, or daily 22-08."
    )
    target = _target(context, args[0]) if len(args) == 3 else None
    if target is None:
        await message.reply_text(usage)
        return
    try:
        shift = oncall.parse_shift(args[1], args[2])
    except ShiftError:
        await message.reply_text(usage)
        return
    user_id, sealed = target
    services = context.services
    try:
        async with services.sessions() as session, session.begin():
            shifts = await oncall.add_shift(
                session,
                duty_of(context),
                actor_id=context.profile.id,
                user_id=user_id,
                shift=shift,
                now=services.clock(),
                sealed_telegram_id=sealed,
            )
    except oncall.NotStaff:
        await message.reply_text(
            tr.gettext("User {user} is not staff: give them the role first (/grant).").format(
                user=args[0]
            )
        )
        return
    described = ", ".join(
        f"{oncall.describe_days(each.days)} {oncall.describe_hours(each)}" for each in shifts
    )
    await message.reply_text(
        tr.gettext("Shifts of user {user}: {shifts} ({zone}).").format(
            user=args[0], shifts=described, zone=services.settings.timezone
        )
    )


async def _unschedule(update: Update, context: HotlineContext, args: list[str]) -> None:
    message = update.effective_message
    assert message is not None
    tr = context.tr
    if not await require(update, context, Permission.MANAGE_ONCALL, action="oncall.schedule"):
        return
    target = _target(context, args[0]) if len(args) == 1 else None
    if target is None:
        await message.reply_text(tr.gettext("Usage: /oncall unschedule <user id>"))
        return
    services = context.services
    async with services.sessions() as session, session.begin():
        removed = await oncall.clear_shifts(
            session, actor_id=context.profile.id, user_id=target[0], now=services.clock()
        )
    await message.reply_text(
        tr.ngettext(
            "Removed {count} shift of user {user}.",
            "Removed {count} shifts of user {user}.",
            removed,
        ).format(count=removed, user=args[0])
    )


# -- the alert's buttons -------------------------------------------------------------------------


def details_text(context: HotlineContext, found: UrgentDetails) -> str:
    """The case as its owner sees it: where, what, by whom, how to reach the family, the steps
    told so far. HTML."""
    tr, e = context.tr, html.escape
    if found.phone:
        contact = found.phone
    elif found.contact_here:
        contact = tr.gettext("here in Telegram")
    else:
        contact = tr.gettext("not given")
    lines = [
        "🚨 <b>"
        + e(tr.gettext("Urgent case {code}: you took it.").format(code=found.code))
        + "</b>",
        e(tr.gettext("What: {what}").format(what=word(tr, WHAT_WORDS, found.what))),
        e(tr.gettext("By: {by}").format(by=word(tr, BY_WORDS, found.detained_by))),
        e(tr.gettext("Where: {place}").format(place=found.place or tr.gettext("not given"))),
        e(tr.gettext("Contact: {contact}").format(contact=contact)),
        e(
            tr.gettext("Reported: {time}").format(
                time=tr.format_datetime(_local(context, found.created_at))
            )
        ),
        "",
        e(tr.gettext("The family has been told:")),
    ]
    for step, when in found.steps:
        sentence = STEP_SENTENCES.get(step)
        said = tr.gettext(sentence) if sentence else step
        lines.append(e(f"• {tr.format_datetime(_local(context, when))[-5:]} {said}"))
    lines += [
        "",
        e(
            tr.gettext(
                "Tap what the family should be told next: they read it in plain words, in "
                "their language. To write to them yourself: /case {code}."
            ).format(code=found.code)
        ),
    ]
    return "\n".join(lines)


def steps_markup(tr: Translator, code: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            tr.gettext(STEP_BUTTONS[step]), callback_data=DUTY.build("step", code, step)
        )
        for step in POSTED_STEPS
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([InlineKeyboardButton(tr.gettext("Open case"), callback_data=f"case:show:{code}")])
    return InlineKeyboardMarkup(rows)


def _code_of(data: str | None, verb: str) -> tuple[str, tuple[str, ...]] | None:
    press = DUTY.parse(data)
    if press is None or press.verb != verb:
        return None
    code = normalise_case_code(press.args[0])
    return (code, press.args[1:]) if code is not None else None


async def _mark_alert(message: object, note: str, code: str, tr: Translator) -> None:
    """The alert keeps its text, gains one line, and loses "I'll take it"."""
    if not isinstance(message, Message) or not message.text:
        return
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton(tr.gettext("Open case"), callback_data=f"case:show:{code}")]]
    )
    with contextlib.suppress(TelegramError):  # too old to edit: the answer to the press says it
        await message.edit_text(
            f"{message.text_html}\n\n{html.escape(note)}",
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )


async def take_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    if not await require(update, context, Permission.HANDLE_URGENT, action="urgent.take"):
        return
    tr, services = context.tr, context.services
    parsed = _code_of(query.data, "take")
    if parsed is None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    code = parsed[0]
    user = update.effective_user
    try:
        async with services.sessions() as session, session.begin():
            taken = await urgent.take(
                session,
                services.cipher,
                code,
                context.profile.id,
                now=services.clock(),
                taker_name=user.full_name if user is not None else None,
            )
    except UrgentNotFound:
        await query.answer(tr.gettext("This urgent case no longer exists."), show_alert=True)
        return
    if taken.details is None:
        who = taken.taker or tr.gettext("another staff member")
        note = tr.gettext("Already taken by {name}.").format(name=who)
        await query.answer(note, show_alert=True)
        await _mark_alert(query.message, "✋ " + note, code, tr)
        return
    await query.answer(tr.gettext("It is yours. The family has been told someone is on it."))
    if taken.won:
        await _mark_alert(query.message, "✅ " + tr.gettext("You took it."), code, tr)
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(
            details_text(context, taken.details),
            parse_mode=ParseMode.HTML,
            reply_markup=steps_markup(tr, code),
            protect_content=True,
        )


async def step_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    if not await require(update, context, Permission.HANDLE_URGENT, action="urgent.step"):
        return
    tr, services = context.tr, context.services
    parsed = _code_of(query.data, "step")
    if parsed is None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    code, (step,) = parsed
    try:
        async with services.sessions() as session, session.begin():
            stepped = await urgent.post_step(
                session,
                services.cipher,
                code,
                context.profile.id,
                step,
                now=services.clock(),
                is_admin=context.profile.role == Role.ADMIN,
            )
    except UrgentNotFound:
        await query.answer(tr.gettext("This urgent case no longer exists."), show_alert=True)
        return
    if stepped.refused == "taken":
        who = stepped.details.taker or tr.gettext("another staff member")
        await query.answer(
            tr.gettext("{name} took this case: only they or an admin can tell the family.").format(
                name=who
            ),
            show_alert=True,
        )
        return
    if stepped.refused == "not_taken":
        await query.answer(tr.gettext("Take the case first."), show_alert=True)
        return
    if stepped.refused is not None:
        await query.answer(tr.gettext("This button is no longer valid."))
        return
    await query.answer(tr.gettext("Sent to the family."))
    with contextlib.suppress(TelegramError):  # too old to edit: the answer above said it
        await query.edit_message_text(
            details_text(context, stepped.details),
            parse_mode=ParseMode.HTML,
            reply_markup=steps_markup(tr, code),
        )


async def duty_button(update: Update, context: HotlineContext) -> None:
    """Every `DUTY` button, by its verb (the role is checked by each)."""
    query = update.callback_query
    assert query is not None
    press = DUTY.parse(query.data)
    if press is not None and press.verb == "take":
        await take_button(update, context)
    elif press is not None and press.verb == "step":
        await step_button(update, context)
    elif press is not None and press.verb in ("on", "off"):
        await switch_button(update, context)
    elif await require(update, context, Permission.HANDLE_URGENT, action="urgent"):
        await query.answer(context.tr.gettext("This button is no longer valid."))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("oncall", oncall_command))
    application.add_handler(CallbackQueryHandler(duty_button, pattern=DUTY.pattern))
