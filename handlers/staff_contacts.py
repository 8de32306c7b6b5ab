"""Staff decisions that decide who hears about a case: linking a relative, merging, notes.

The adversary can pose as a relative: it knows detainees' names and birth dates. So:

- **Linking a relative** (`case:link:CODE:USER`) first shows the person's own report beside the
  case's (what matches, what differs), their Telegram name and username as they filed, and asks how
  they were verified; only a verification choice (`case:lok:CODE:USER:method`) links them, and
  the audit row keeps the method. Someone no longer waiting (approved, or erased by /forget) is
  refused, whatever the button says.
- **Merging** asks for confirmation with both cases' codes, statuses, regions and dates, so a
  mistyped code is seen before one family is shown another family's detainee
  (`case:mok:CODE:INTO`). The merged case's family is not linked: they wait for approval.
- **Notes**: the button, the prompt and the answer say exactly who reads the note (the family,
  and on a public case the monitors who follow it); a note can go to the family only. The prompt
  of a note sent with a status change says who reads it too (`case:okn:CODE:STATUS`).

Every press re-checks the role on the server (`handlers.staff_operation.case_press`), and every
operation runs through `handlers.staff_operation.run`, which answers its refusals. The card's
buttons are built in `handlers.staff`; the typed note and merge code arrive in
`handlers.staff_input` and come back here to be answered.
"""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import CASE
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import N_, Translator
from bot.texts import vocabulary as kb
from bot.texts.statuses import status_word
from bot.texts.vocabulary import VERIFICATION_WORDS
from handlers import staff_operation
from handlers.replies import reply_html as _reply
from handlers.staff_operation import CASE_REFUSALS, case_press
from storage import audit, cases, fields, relatives
from storage.access import Permission
from storage.cases import CaseRefusal
from storage.codes import normalise_case_code
from storage.enums import AuditOutcome, CaseStatus
from storage.recipients import NoteReaders, note_readers

log = logging.getLogger(__name__)

INPUT_KEY = "staff_input"  # the pending typed input that handlers.staff_input reads
VERB_PERMISSIONS = {
    "link": Permission.REVIEW_CASES,
    "lok": Permission.CHANGE_STATUS,
    "mok": Permission.MERGE_CASES,
    "note": Permission.ADD_NOTES,
    "fnote": Permission.ADD_NOTES,
    "okn": Permission.CHANGE_STATUS,
}
FIELD_LABELS = {f.column: f.label for f in fields.REGISTRY.compared() if f.column}
"""The compared facts and their labels, by column (`storage.fields`)."""
NOTE_PROMPT = N_("Write the note for the family:")
STATUS_NOTE_PROMPT = N_("Write the note for the family (it is sent with the status change):")
CANCEL_HINT = N_("(/cancel to stop)")


async def contact_button(update: Update, context: HotlineContext) -> None:
    pressed = await case_press(update, context, VERB_PERMISSIONS)
    if pressed is None:
        return
    code, args = pressed.args[0], pressed.args[1:]
    if pressed.verb == "link":
        await show_comparison(update, context, code, int(args[0]))
    elif pressed.verb == "lok":
        await approve(update, context, code, int(args[0]), args[1])
    elif pressed.verb == "mok":
        await apply_merge(update, context, code, args[0])
    elif pressed.verb == "okn":
        await ask_status_note(update, context, code, CaseStatus(args[0]))
    else:
        await ask_note(update, context, code, family_only=pressed.verb == "fnote")


# -- linking a relative --------------------------------------------------------------------------


def _value(tr: Translator, name: str, value: str | None) -> str:
    field = fields.REGISTRY.by_column(fields.PERSONAL, name) or fields.REGISTRY.by_column(
        fields.CASES, name
    )
    if not value or field is None:
        return value or "—"
    return field.kind.show(tr, field, value)


def comparison_text(tr: Translator, seen: relatives.Comparison) -> str:
    """HTML: who asks, their report beside the case's, what differs, and what approval gives."""
    e = html.escape
    telegram = " ".join(
        part
        for part in (
            seen.telegram_name,
            f"@{seen.telegram_username}" if seen.telegram_username else "",
        )
        if part
    ) or tr.gettext("not recorded")
    lines = [
        tr.gettext("<b>Link a relative to case {code}?</b>").format(code=e(seen.code)),
        tr.gettext("Telegram: {name} · id <code>{id}</code>").format(
            name=e(telegram), id=seen.user_id
        ),
        tr.gettext("Says they are: {relation} · phone: {phone}").format(
            relation=e(kb.word(tr, kb.RELATION_WORDS, seen.relation) if seen.relation else "—"),
            phone=e(seen.phone or "—"),
        ),
        "",
    ]
    if seen.theirs is None:
        lines.append(tr.gettext("Their report (sent before reports had their own case):"))
        lines.append(e(seen.earlier_summary or "—"))
    else:
        lines.append(
            tr.gettext("Case {code} · their own report {theirs} ({status}):").format(
                code=e(seen.code),
                theirs=e(seen.theirs.code),
                status=e(status_word(tr, seen.theirs.status)),
            )
        )
        for name, label in FIELD_LABELS.items():
            match = relatives.field_match(seen, name)
            mark = {True: "✓", False: "≠", None: "·"}[match]
            left = _value(tr, name, seen.original.fields.get(name))
            right = _value(tr, name, seen.theirs.fields.get(name))
            lines.append(f"{mark} {e(tr.gettext(label))}: {e(left)} | {e(right)}")
        differing = [tr.gettext(FIELD_LABELS[name]) for name in seen.differing()]
        lines.append("")
        lines.append(
            e(tr.gettext("Differs: {fields}").format(fields=", ".join(differing)))
            if differing
            else e(tr.gettext("Nothing differs where both reports answered."))
        )
    lines += [
        "",
        e(
            tr.gettext(
                "Once linked, they receive every update of this case with the detainee's name, "
                "and can answer staff questions. The same name and date of birth prove nothing: "
                "anyone may know them. How did you verify this person?"
            )
        ),
    ]
    return "\n".join(lines)


def comparison_markup(tr: Translator, seen: relatives.Comparison) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                tr.gettext("Link · {method}").format(method=tr.gettext(word)),
                callback_data=CASE.build("lok", seen.code, seen.user_id, method),
            )
        ]
        for method, word in VERIFICATION_WORDS.items()
    ]
    rows.append(
        [InlineKeyboardButton(tr.gettext("Cancel"), callback_data=CASE.build("show", seen.code))]
    )
    return InlineKeyboardMarkup(rows)


async def show_comparison(update: Update, context: HotlineContext, code: str, user: int) -> None:
    tr, services = context.tr, context.services
    async with services.sessions() as session, session.begin():
        seen = await relatives.comparison(session, services.cipher, code, user)
        audit.record(
            session,
            actor_id=context.profile.id,
            action="case.compare_contact",
            outcome=AuditOutcome.OK if seen else AuditOutcome.REFUSED,
            case_code=code,
            target_user_id=user,
            at=services.clock(),
        )
    if seen is None:
        text = tr.gettext(CASE_REFUSALS[CaseRefusal.NOT_WAITING]).format(code=code)
        await _reply(update, html.escape(text))
        return
    await _reply(
        update, comparison_text(tr, seen), comparison_markup(tr, seen), protect_content=True
    )


async def approve(
    update: Update, context: HotlineContext, code: str, user: int, method: str
) -> None:
    tr, services = context.tr, context.services
    linked = await staff_operation.run(
        update,
        context,
        lambda session: cases.link_contact(
            session,
            services.cipher,
            code,
            user,
            actor_id=context.profile.id,
            now=services.clock(),
            verified_by=method,
        ),
        action="case.link_contact",
        code=code,
    )
    if linked is None:
        return
    text = tr.gettext(
        "User {user} now receives the updates of case {code} (verified by: {method})."
    ).format(user=user, code=code, method=tr.gettext(VERIFICATION_WORDS[method]))
    await _reply(update, html.escape(text))


# -- merging -------------------------------------------------------------------------------------


def _side(tr: Translator, side: cases.MergeSide) -> str:
    return tr.gettext("case {code}: {status}, {region}, detained on {date}").format(
        code=f"<code>{html.escape(side.code)}</code>",
        status=html.escape(status_word(tr, side.status)),
        region=html.escape(kb.word(tr, kb.REGION_WORDS, side.region)),
        date=tr.format_date(side.detention_date) if side.detention_date else "?",
    )


async def confirm_merge(update: Update, context: HotlineContext, code: str, typed: str) -> None:
    """The staff member typed the code of the case to keep: show both, and ask."""
    tr = context.tr
    target = normalise_case_code(typed)
    if target is None:
        await _reply(update, html.escape(tr.gettext("That is not a case code.")))
        return
    sides = await staff_operation.run(
        update,
        context,
        lambda session: cases.merge_preview(session, code, target),
        action="case.merge",
        code=code,
    )
    if sides is None:
        return
    merged, kept = sides
    text = "\n".join(
        [
            tr.gettext("<b>Merge these two cases?</b>"),
            tr.gettext("Close as a duplicate: {case}").format(case=_side(tr, merged)),
            tr.gettext("Keep: {case}").format(case=_side(tr, kept)),
            "",
            html.escape(
                tr.gettext(
                    "The family of the closed case is not linked to the kept case: each of them "
                    "waits on its card until you approve them."
                )
            ),
        ]
    )
    label = tr.gettext("Merge {code} into {into}").format(code=merged.code, into=kept.code)
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=CASE.build("mok", merged.code, kept.code))],
            [InlineKeyboardButton(tr.gettext("Cancel"), callback_data=CASE.build("show", code))],
        ]
    )
    await _reply(update, text, markup)


async def apply_merge(update: Update, context: HotlineContext, code: str, target: str) -> None:
    tr, services = context.tr, context.services
    merged = await staff_operation.run(
        update,
        context,
        lambda session: cases.merge_cases(
            session,
            services.cipher,
            code,
            target,
            actor_id=context.profile.id,
            now=services.clock(),
        ),
        action="case.merge",
        code=code,
    )
    if merged is None:
        return
    text = tr.gettext("Case {code} was merged into {into}.").format(code=code, into=target)
    await _reply(update, html.escape(text))


# -- notes ---------------------------------------------------------------------------------------


def readers_text(tr: Translator, readers: NoteReaders, *, sent: bool) -> str:
    """Exactly who reads the note (plain text)."""
    family = tr.ngettext(
        "the family of case {code} ({count} person)",
        "the family of case {code} ({count} people)",
        readers.family,
    ).format(code=readers.code, count=readers.family)
    if readers.monitors:
        monitors = tr.ngettext(
            "{count} monitor who follows it (the case is public: they also see the name)",
            "{count} monitors who follow it (the case is public: they also see the name)",
            readers.monitors,
        ).format(count=readers.monitors)
        who = tr.gettext("{family} and {monitors}").format(family=family, monitors=monitors)
    else:
        who = family
    if sent:
        return tr.gettext("The note was sent to {who}.").format(who=who)
    return tr.gettext("Who will read it: {who}.").format(who=who)


async def ask_note(
    update: Update, context: HotlineContext, code: str, *, family_only: bool
) -> None:
    """Ask for the note, saying who will read it. Monitors are included only when the staff
    member chose it and the case is public; the pending input remembers what was announced, so
    a case made public meanwhile does not widen the audience."""
    tr = context.tr
    readers = await staff_operation.run(
        update,
        context,
        lambda session: note_readers(session, code, monitors=not family_only),
        action="case.note",
        code=code,
    )
    if readers is None:
        return
    with_monitors = not family_only and readers.monitors_may_read
    if context.user_data is not None:
        kind = "note" if with_monitors else "fnote"
        context.user_data[INPUT_KEY] = {"kind": kind, "code": code, "status": ""}
    text = "\n".join(
        [tr.gettext(NOTE_PROMPT), readers_text(tr, readers, sent=False)]
        + (
            [tr.gettext("Monitors following the case read it too, now and in their digests.")]
            if with_monitors
            else []
        )
        + [tr.gettext(CANCEL_HINT)]
    )
    await _reply(update, html.escape(text))


async def ask_status_note(
    update: Update, context: HotlineContext, code: str, status: CaseStatus
) -> None:
    """A note sent with a status change goes wherever the change goes: on a public case, to the
    monitors who follow it too. Say so before it is written (`handlers.staff_input` applies
    it)."""
    tr = context.tr
    readers = await staff_operation.run(
        update,
        context,
        lambda session: note_readers(session, code, monitors=True, new_status=status),
        action="case.status",
        code=code,
    )
    if readers is None:
        return
    if context.user_data is not None:
        context.user_data[INPUT_KEY] = {"kind": "status_note", "code": code, "status": str(status)}
    text = "\n".join(
        [
            tr.gettext(STATUS_NOTE_PROMPT),
            readers_text(tr, readers, sent=False),
            tr.gettext(CANCEL_HINT),
        ]
    )
    await _reply(update, html.escape(text))


async def note_typed(
    update: Update, context: HotlineContext, kind: str, code: str, text: str
) -> None:
    """Send the typed note as announced (`kind` "note": the family and the monitors; "fnote":
    the family only), and tell the staff member exactly who it went to."""
    tr, services = context.tr, context.services
    sent = await staff_operation.run(
        update,
        context,
        lambda session: cases.send_note(
            session,
            services.cipher,
            code,
            text,
            monitors=kind == "note",
            actor_id=context.profile.id,
            now=services.clock(),
        ),
        action="case.public_note" if kind == "note" else "case.family_note",
        code=code,
    )
    if sent is None:
        return
    log.info("case %s: %s (event %d)", code, kind, sent.event_id)
    await _reply(update, html.escape(readers_text(tr, sent, sent=True)))


def register(application: HotlineApplication) -> None:
    pattern = CASE.pattern_of(*VERB_PERMISSIONS)
    application.add_handler(CallbackQueryHandler(contact_button, pattern=pattern))
