"""Buttons of the report form, built with the `REPORT` codec (`bot.callbacks`).

A question's buttons carry its field key (`rep:a:region:crimea`, `rep:skip:birth`), so a tap on
an earlier question's button is told apart; every value is re-checked by the field's kind on the
server. The words of the choices live with the fields (`storage.field_words`); they are
re-exported here for the modules that show them.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import REPORT
from bot.i18n import Translator
from storage.field_words import (
    DATE_WORDS,
    DETAINER_WORDS,
    LAWYER_WORDS,
    REGION_WORDS,
    RELATION_WORDS,
    VISIBILITY_WORDS,
)
from storage.fields import Field

__all__ = [
    "DATE_WORDS",
    "DETAINER_WORDS",
    "LAWYER_WORDS",
    "REGION_WORDS",
    "RELATION_WORDS",
    "VISIBILITY_WORDS",
    "consent_keyboard",
    "step_keyboard",
    "summary_keyboard",
    "word",
]


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
                button(tr.gettext("I agree"), REPORT.build("consent", "yes")),
                button(tr.gettext("I do not agree"), REPORT.build("consent", "no")),
            ]
        ]
    )


def step_keyboard(tr: Translator, field: Field) -> InlineKeyboardMarkup:
    """The field's choices and its kind's extra buttons, then Back and (optional fields) Skip."""
    choices = [(tr.gettext(label), value) for value, label in (field.choices or {}).items()]
    choices += [(tr.gettext(label), value) for label, value in field.kind.extra]
    buttons = [button(label, REPORT.build("a", field.key, value)) for label, value in choices]
    per_row = field.per_row
    rows = [buttons[start : start + per_row] for start in range(0, len(buttons), per_row)]
    tail = [button("« " + tr.gettext("Back"), REPORT.build("back", field.key))]
    if field.optional:
        tail.append(button(tr.gettext("Skip") + " »", REPORT.build("skip", field.key)))
    rows.append(tail)
    return InlineKeyboardMarkup(rows)


def summary_keyboard(tr: Translator, fields: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """An Edit button per field (two per row), then Confirm."""
    edits = [button("✎ " + label, REPORT.build("edit", key)) for key, label in fields]
    rows = [edits[start : start + 2] for start in range(0, len(edits), 2)]
    rows.append([button("✅ " + tr.gettext("Confirm and send"), REPORT.build("confirm"))])
    return InlineKeyboardMarkup(rows)
