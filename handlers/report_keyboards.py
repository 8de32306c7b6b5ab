"""Words and buttons of the report form: the choices a relative taps instead of typing.

Labels are msgids (translated at use). Button data is `rep:<verb>:<step>[:<value>]`; the step in
the data lets the handler ignore a tap on an earlier question's buttons, and every value is
re-checked against its enumeration on the server.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_, Translator
from storage.enums import Detainer, Region, Relation, Visibility

PREFIX = "rep"
CONSENT_YES = "rep:consent:yes"
CONSENT_NO = "rep:consent:no"
CONFIRM = "rep:confirm"
LAWYER_ANSWERS = ("yes", "no", "unknown")
CONTACT_HERE = "here"
DOCUMENTS_DONE = "done"

RELATION_WORDS: dict[str, str] = {
    Relation.PARENT: N_("Parent"),
    Relation.SPOUSE: N_("Wife or husband"),
    Relation.CHILD: N_("Son or daughter"),
    Relation.SIBLING: N_("Brother or sister"),
    Relation.OTHER_RELATIVE: N_("Other relative"),
    Relation.FRIEND: N_("Friend"),
    Relation.LAWYER: N_("Lawyer"),
    Relation.OTHER: N_("Other"),
}
REGION_WORDS: dict[str, str] = {
    Region.CRIMEA: N_("Crimea"),
    Region.SEVASTOPOL: N_("Sevastopol"),
    Region.DONETSK: N_("Donetsk oblast (occupied part)"),
    Region.LUHANSK: N_("Luhansk oblast (occupied part)"),
    Region.ZAPORIZHZHIA: N_("Zaporizhzhia oblast (occupied part)"),
    Region.KHERSON: N_("Kherson oblast (occupied part)"),
    Region.RUSSIA: N_("Russia"),
    Region.OTHER: N_("Other place"),
}
DETAINER_WORDS: dict[str, str] = {
    Detainer.FSB: N_("FSB"),
    Detainer.POLICE: N_("Police"),
    Detainer.MILITARY: N_("Military"),
    Detainer.UNKNOWN: N_("Unknown"),
    Detainer.OTHER: N_("Other"),
}
LAWYER_WORDS: dict[str, str] = {
    "yes": N_("Yes, there is a lawyer"),
    "no": N_("No lawyer"),
    "unknown": N_("I don't know"),
}
VISIBILITY_WORDS: dict[str, str] = {
    Visibility.PUBLIC: N_("Public: the name may be published"),
    Visibility.ANONYMOUS: N_("Anonymous: region, date and status only, no name"),
    Visibility.STAFF_ONLY: N_("Staff only: nothing is published"),
}
DATE_WORDS: dict[str, str] = {"today": N_("Today"), "yesterday": N_("Yesterday")}


def word(tr: Translator, words: dict[str, str], value: object) -> str:
    """The translated label of a stored value (the value itself if unknown)."""
    msgid = words.get(str(value))
    return tr.gettext(msgid) if msgid else str(value)


def button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def consent_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                button(tr.gettext("I agree"), CONSENT_YES),
                button(tr.gettext("I do not agree"), CONSENT_NO),
            ]
        ]
    )


def step_keyboard(
    tr: Translator,
    step: str,
    words: dict[str, str] | None,
    *,
    optional: bool,
    per_row: int = 1,
    extra: list[tuple[str, str]] | None = None,
) -> InlineKeyboardMarkup:
    """The choices of a step (if any), then Skip (optional steps) and Back."""
    choices = [
        (tr.gettext(label), f"rep:a:{step}:{value}") for value, label in (words or {}).items()
    ]
    choices += [(label, f"rep:a:{step}:{value}") for label, value in extra or []]
    rows = [
        [button(label, data) for label, data in choices[start : start + per_row]]
        for start in range(0, len(choices), per_row)
    ]
    tail = [button("« " + tr.gettext("Back"), f"rep:back:{step}")]
    if optional:
        tail.append(button(tr.gettext("Skip") + " »", f"rep:skip:{step}"))
    rows.append(tail)
    return InlineKeyboardMarkup(rows)


def summary_keyboard(tr: Translator, fields: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """An Edit button per field (two per row), then Confirm."""
    edits = [button("✎ " + label, f"rep:edit:{step}") for step, label in fields]
    rows = [edits[start : start + 2] for start in range(0, len(edits), 2)]
    rows.append([button("✅ " + tr.gettext("Confirm and send"), CONFIRM)])
    return InlineKeyboardMarkup(rows)
