"""Staff keep the prisoner's record: "Edit details" on the card, a field, its value, whom to tell.

The flow is three presses or two presses and a typed value: the field picker (`rec:menu`), the
field (`rec:field`: choice buttons, or a prompt for a typed value), then "who should be told?"
(`rec:tell`: nobody, the family, or the family and the monitors of a public case). The value
waits in user data between the steps (it may be long, and callback data is short and forgeable);
a Tell press applies it only if it names the same case and field. Every step re-checks the role;
the operation (storage/record.py) writes value, event, audit and messages in one transaction.

The same flow edits a group of co-defendants (`/group`): the target is then ``g<id>`` and the
value is written to every case of the group at once.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import RECORD
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts.messages.record import label, record_lines, value_text
from handlers.guard import require
from handlers.replies import reply_html, stop_here
from storage import record
from storage.access import Permission
from storage.codes import normalise_case_code
from storage.enums import Visibility
from storage.field_checks import Invalid, parse_text
from storage.fields import Flags, Typing
from storage.record import GROUP_FIELDS, Tell, editable, monitor_may_read, record_keys

log = logging.getLogger(__name__)

INPUT_KEY = "record_input"
INPUT_GROUP = (
    -11
)  # before the other staff input (-10, -9) and the report form (-8): only when a value is awaited
CLEAR = "-"
TEXT_LIMIT = 500
FLAG_CHOICES = {
    "chronic": ["chronic"],
    "urgent_care": ["urgent_care"],
    "both": ["chronic", "urgent_care"],
}

PROMPTS: dict[str, str] = {  # by the field's kind (storage/fields.py); others: "Text"
    "Text": N_("Write the new value of «{field}»."),
    "Date": N_("Write the date for «{field}», for example 01.03.2027."),
    "BirthOrAge": N_(
        "Write the date of birth, for example 21.03.1985, or the age, for example 45."
    ),
    "Hearing": N_(
        "Write the date and time of the next hearing, Moscow time, for example 12.01.2027 10:30."
    ),
    "Articles": N_("Write the articles, for example 205.5 part 2, 275.1."),
    "Months": N_("Write the term in years, or years and months: 12, or 12 6."),
    "Phone": N_("Write the phone number, for example +380 67 123 45 67."),
}


def _group_id(target: str) -> int | None:
    return int(target[1:]) if target.startswith("g") and target[1:].isdigit() else None


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def _label(tr: Translator, key: str) -> str:
    return label(tr, key)


async def _say(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """`text` is HTML the caller escaped."""
    if update.callback_query is not None and update.effective_chat is not None:
        await update.effective_chat.send_message(
            text, parse_mode=ParseMode.HTML, reply_markup=markup
        )
    else:
        await reply_html(update, text, markup)


# -- the field picker ------------------------------------------------------------------------------


async def show_menu(update: Update, context: HotlineContext, target: str) -> None:
    tr, services = context.tr, context.services
    group_id = _group_id(target)
    try:
        async with services.sessions() as session:
            if group_id is not None:
                group = await record.group_view(session, services.cipher, group_id)
                keys = [key for key in record_keys() if key in GROUP_FIELDS]
                heading = tr.gettext("Group {name}: cases {codes}").format(
                    name=html.escape(group.name),
                    codes=", ".join(f"<code>{code}</code>" for code in group.codes) or "—",
                )
                lines = [heading]
            else:
                case = await record._case(session, target)
                view = await record.read_record(session, services.cipher, case)
                keys = list(editable())
                heading = html.escape(tr.gettext("The record of case {code}")).format(
                    code=f"<code>{case.code}</code>"
                )
                lines = [f"<b>{heading}</b>", *record_lines(tr, view.values, record_keys())]
                lines += _transfers(tr, view.transfers)
                if view.group_name:
                    lines.append(
                        html.escape(tr.gettext("Group: {name}")).format(
                            name=html.escape(view.group_name)
                        )
                    )
    except (record.RecordCaseNotFound, record.UnknownGroup):
        await _say(update, html.escape(tr.gettext("No case or group has this number any more.")))
        return
    buttons = [_button("✎ " + _label(tr, key), RECORD.build("field", target, key)) for key in keys]
    rows = [buttons[start : start + 2] for start in range(0, len(buttons), 2)]
    lines.append(html.escape(tr.gettext("Choose what to change:")))
    await _say(update, "\n".join(lines), InlineKeyboardMarkup(rows))


def _transfers(tr: Translator, transfers: list[dict[str, str]]) -> list[str]:
    if not transfers:
        return []
    label = html.escape(tr.gettext("Earlier places of detention"))
    items = [
        html.escape(
            tr.gettext("{place} (until {date})").format(
                place=item.get("place", ""),
                date=value_text(tr, "end_of_term", item.get("until")),
            )
        )
        for item in transfers
    ]
    return [f"<b>{label}:</b> " + "; ".join(items)]


async def ask_value(update: Update, context: HotlineContext, target: str, key: str) -> None:
    tr = context.tr
    fld = editable()[key]
    field = html.escape(_label(tr, key))
    if not fld.kind.typed and fld.choices is not None:
        choices = [(value, tr.gettext(msgid)) for value, msgid in fld.choices.items()]
        if isinstance(fld.kind, Flags):
            words = [tr.gettext(msgid) for msgid in fld.choices.values()]
            choices.append((Flags.ALL, " + ".join(words)))
        rows = [[_button(text, RECORD.build("set", target, key, value))] for value, text in choices]
        rows.append([_button(tr.gettext("Clear"), RECORD.build("set", target, key, CLEAR))])
        text = html.escape(tr.gettext("Choose the new value of «{field}»:")).format(field=field)
        await _say(update, text, InlineKeyboardMarkup(rows))
        return
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"target": target, "key": key, "stage": "value"}
    prompt = PROMPTS.get(fld.kind.name, PROMPTS["Text"])
    hint = html.escape(tr.gettext("Send - to clear it, or /cancel to stop."))
    await _say(update, f"{html.escape(tr.gettext(prompt)).format(field=field)}\n{hint}")


def _typing(context: HotlineContext) -> Typing:
    return Typing(today=context.services.clock().date())


def parse_value(key: str, text: str, context: HotlineContext) -> Any:
    """The typed value in its form shape; raises `Invalid` with the reason."""
    if text.strip() == CLEAR:
        return None
    fld = editable()[key]
    return fld.kind.parse(text, _typing(context))


# -- whom to tell, then save -----------------------------------------------------------------------


async def ask_whom_to_tell(
    update: Update, context: HotlineContext, target: str, key: str, value: Any
) -> None:
    tr, services = context.tr, context.services
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {
            "target": target,
            "key": key,
            "value": value,
            "stage": "tell",
        }
    public = _group_id(target) is not None
    if not public:
        async with services.sessions() as session:
            try:
                case = await record._case(session, target)
            except record.RecordCaseNotFound:
                await _say(
                    update, html.escape(tr.gettext("No case or group has this number any more."))
                )
                return
            public = case.visibility == Visibility.PUBLIC
    rows = [
        [_button(tr.gettext("Tell nobody"), RECORD.build("tell", target, key, Tell.NOBODY))],
        [_button(tr.gettext("Tell the family"), RECORD.build("tell", target, key, Tell.FAMILY))],
    ]
    if public and monitor_may_read(editable()[key]):
        everyone = RECORD.build("tell", target, key, Tell.FAMILY_AND_MONITORS)
        rows.append([_button(tr.gettext("Tell the family and monitors"), everyone)])
    text = html.escape(tr.gettext("New value of «{field}»: {value}\nWho should be told?")).format(
        field=html.escape(_label(tr, key)), value=html.escape(value_text(tr, key, value))
    )
    await _say(update, text, InlineKeyboardMarkup(rows))


async def save(update: Update, context: HotlineContext, target: str, key: str, tell: Tell) -> None:
    tr, services = context.tr, context.services
    pending: dict[str, Any] | None = (context.user_data or {}).get(INPUT_KEY)
    if (
        pending is None
        or pending.get("stage") != "tell"
        or (pending.get("target"), pending.get("key")) != (target, key)
    ):
        await _say(update, html.escape(tr.gettext("This button is no longer valid.")))
        return
    assert context.user_data is not None
    context.user_data.pop(INPUT_KEY, None)
    value, group_id = pending.get("value"), _group_id(target)
    actor, now = context.profile.id, services.clock()
    try:
        async with services.sessions() as session, session.begin():
            if group_id is not None:
                edits = list(
                    await record.edit_group(
                        session,
                        services.cipher,
                        group_id,
                        key,
                        value,
                        tell=tell,
                        actor_id=actor,
                        now=now,
                    )
                )
            else:
                edits = [
                    await record.edit_record(
                        session,
                        services.cipher,
                        target,
                        key,
                        value,
                        tell=tell,
                        actor_id=actor,
                        now=now,
                    )
                ]
    except (record.RecordCaseNotFound, record.UnknownGroup, record.UnknownRecordField):
        await _say(update, html.escape(tr.gettext("No case or group has this number any more.")))
        return
    log.info(
        "record %s of %s by %s",
        key,
        services.cipher.pseudonym(target),
        services.cipher.pseudonym(actor),
    )
    family = sum(edit.family for edit in edits)
    monitors = sum(edit.monitors for edit in edits)
    changed = sum(1 for edit in edits if edit.changed)
    text = tr.ngettext(
        "Saved on {count} case. Told: {family} family members, {monitors} monitors.",
        "Saved on {count} cases. Told: {family} family members, {monitors} monitors.",
        changed,
    ).format(count=changed, family=family, monitors=monitors)
    if not changed:
        text = tr.gettext("Nothing changed: the record already says this.")
    markup = InlineKeyboardMarkup(
        [[_button(tr.gettext("Edit details"), RECORD.build("menu", target))]]
    )
    await _say(update, html.escape(text), markup)


# -- routing ---------------------------------------------------------------------------------------


async def record_button(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    assert query is not None
    pressed = RECORD.parse(query.data)
    if not await require(update, context, Permission.EDIT_RECORD, action="case.record"):
        return
    if pressed is None or (len(pressed.args) > 1 and pressed.args[1] not in editable()):
        await query.answer(context.tr.gettext("This button is no longer valid."), show_alert=True)
        return
    await query.answer()
    target = pressed.args[0]
    if _group_id(target) is None and normalise_case_code(target) is None:
        await _say(
            update, html.escape(context.tr.gettext("No case or group has this number any more."))
        )
        return
    if pressed.verb == "menu":
        await show_menu(update, context, target)
    elif pressed.verb == "field":
        await ask_value(update, context, target, pressed.args[1])
    elif pressed.verb == "set":
        key, choice = pressed.args[1], pressed.args[2]
        fld = editable()[key]
        try:
            value = None if choice == CLEAR else fld.kind.tap(fld, choice, _typing(context), None)
        except Invalid:
            await _say(update, html.escape(context.tr.gettext("This button is no longer valid.")))
            return
        await ask_whom_to_tell(update, context, target, key, value)
    elif pressed.verb == "tell":
        try:
            tell = Tell(pressed.args[2])
        except ValueError:
            await _say(update, html.escape(context.tr.gettext("This button is no longer valid.")))
            return
        await save(update, context, target, pressed.args[1], tell)


async def typed_value(update: Update, context: HotlineContext) -> None:
    """The awaited value, typed by a staff member in a private chat."""
    pending: dict[str, Any] | None = (context.user_data or {}).get(INPUT_KEY)
    message = update.effective_message
    if pending is None or pending.get("stage") != "value" or message is None or not message.text:
        return
    if not await require(update, context, Permission.EDIT_RECORD, action="case.record.input"):
        await stop_here(update, context)
    key, target = str(pending.get("key")), str(pending.get("target"))
    try:
        value = parse_value(key, message.text, context)
    except Invalid as invalid:
        reason = context.tr.gettext(invalid.msgid).format(**invalid.params)
        hint = context.tr.gettext("Send - to clear it, or /cancel to stop.")
        await reply_html(update, html.escape(f"{reason}\n{hint}"))
        await stop_here(update, context)
    await ask_whom_to_tell(update, context, target, key, value)
    await stop_here(update, context)


async def cancel_input(update: Update, context: HotlineContext) -> None:
    if context.user_data is None or INPUT_KEY not in context.user_data:
        return
    context.user_data.pop(INPUT_KEY, None)
    await reply_html(update, html.escape(context.tr.gettext("Cancelled.")))
    await stop_here(update, context)


# -- groups of co-defendants -----------------------------------------------------------------------

USAGE = N_(
    "/group: the groups of co-defendants\n"
    "/group new NAME: a new group\n"
    "/group NUMBER add CODE [CODE…]: put cases in a group\n"
    "/group remove CODE: take a case out of its group\n"
    "/group NUMBER: set a hearing or a verdict for the whole group"
)


async def group_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.EDIT_RECORD, action="group"):
        return
    tr, services = context.tr, context.services
    args = list(context.args or [])
    actor, now = context.profile.id, services.clock()
    try:
        async with services.sessions() as session, session.begin():
            if not args:
                groups = await record.list_groups(session, services.cipher)
                await _list_groups(update, context, groups)
                return
            if args[0].lower() == "new" and len(args) > 1:
                name = parse_text(" ".join(args[1:]), limit=200, multiline=False)
                group_id = await record.create_group(
                    session, services.cipher, name, actor_id=actor, now=now
                )
                text = tr.gettext(
                    "Group {number} was created. Add cases: /group {number} add CODE"
                ).format(number=group_id)
            elif args[0].lower() == "remove" and len(args) == 2:
                code = await record.set_case_group(session, args[1], None, actor_id=actor, now=now)
                text = tr.gettext("Case {code} is in no group now.").format(code=code)
            elif args[0].isdigit() and len(args) > 2 and args[1].lower() == "add":
                codes = [
                    await record.set_case_group(
                        session, code, int(args[0]), actor_id=actor, now=now
                    )
                    for code in args[2:]
                ]
                text = tr.gettext("Added to group {number}: {codes}").format(
                    number=args[0], codes=", ".join(codes)
                )
            elif args[0].isdigit() and len(args) == 1:
                text = ""
            else:
                text = tr.gettext(USAGE)
    except Invalid as invalid:
        await reply_html(update, html.escape(tr.gettext(invalid.msgid).format(**invalid.params)))
        return
    except (record.RecordCaseNotFound, record.UnknownGroup):
        await reply_html(
            update, html.escape(tr.gettext("No case or group has this number any more."))
        )
        return
    if not text:
        await show_menu(update, context, f"g{args[0]}")
        return
    await reply_html(update, html.escape(text))


async def _list_groups(
    update: Update, context: HotlineContext, groups: list[record.GroupView]
) -> None:
    tr = context.tr
    if not groups:
        await reply_html(
            update, html.escape(tr.gettext("There are no groups yet.") + "\n\n" + tr.gettext(USAGE))
        )
        return
    lines = [
        html.escape(
            tr.ngettext(
                "{number}. {name}: {count} case",
                "{number}. {name}: {count} cases",
                len(group.codes),
            ).format(number=group.id, name=group.name, count=len(group.codes))
        )
        for group in groups
    ]
    rows = [
        [_button(f"{group.id}. {group.name}"[:40], RECORD.build("menu", f"g{group.id}"))]
        for group in groups
    ]
    await reply_html(update, "\n".join(lines), InlineKeyboardMarkup(rows))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("group", group_command))
    application.add_handler(CallbackQueryHandler(record_button, pattern=RECORD.pattern))
    application.add_handler(CommandHandler("cancel", cancel_input), group=INPUT_GROUP)
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND,
            typed_value,
        ),
        group=INPUT_GROUP,
    )
