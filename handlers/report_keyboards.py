"""Words and buttons of the report form: the choices a relative taps instead of typing.

Labels are msgids (translated at use). Button data is `rep:<verb>:<step>[:<value>]`; the step in
the data lets the handler ignore a tap on an earlier question's buttons, and every value is
re-checked against its enumeration on the server. The words of stored values (regions,
relations...) are `bot.texts.vocabulary`'s, re-exported here for the form.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_, Translator
from bot.texts.vocabulary import DETAINER_WORDS as DETAINER_WORDS
from bot.texts.vocabulary import LAWYER_WORDS as LAWYER_WORDS
from bot.texts.vocabulary import REGION_WORDS as REGION_WORDS
from bot.texts.vocabulary import RELATION_WORDS as RELATION_WORDS
from bot.texts.vocabulary import VISIBILITY_WORDS as VISIBILITY_WORDS
from bot.texts.vocabulary import word as word

PREFIX = "rep"
CONSENT_YES = "rep:consent:yes"
CONSENT_NO = "rep:consent:no"
CONFIRM = "rep:confirm"
LAWYER_ANSWERS = ("yes", "no", "unknown")
CONTACT_HERE = "here"
DOCUMENTS_DONE = "done"

DATE_WORDS: dict[str, str] = {"today": N_("Today"), "yesterday": N_("Yesterday")}


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
