"""What staff read while composing and managing announcements: the words, the buttons, the
refusals and the one-line description of a broadcast (handlers.broadcast uses them).

Button data is built with `bot.callbacks.BROADCAST` / `BROADCASTS`; `verb_pattern` routes a
family's verbs in the conversation.
"""

from __future__ import annotations

import html
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import BROADCAST, BROADCASTS, CallbackFamily
from bot.i18n import N_, Translator
from bot.texts.vocabulary import LANGUAGE_NAMES, REGION_WORDS
from handlers.telegram_html import CAPTION_LIMIT, TEXT_LIMIT, Problem
from storage.broadcasts import LANGUAGES, Audience, BroadcastView
from storage.enums import BroadcastStatus

AUDIENCE_WORDS: dict[str, str] = {
    Audience.EVERYONE: N_("Everyone"),
    Audience.FAMILIES: N_("Families"),
    Audience.MONITORS: N_("Monitors"),
    Audience.STAFF: N_("Staff"),
    Audience.LANGUAGE: N_("Users of one language"),
    Audience.REGION: N_("Followers of one region"),
}
LANGUAGE_WORDS: dict[str, str] = LANGUAGE_NAMES
"""Each language by its own name (not translated: a reader finds their language by it)."""
STATUS_WORDS: dict[str, str] = {
    BroadcastStatus.DRAFT: N_("draft"),
    BroadcastStatus.SENDING: N_("sending"),
    BroadcastStatus.PAUSED: N_("paused"),
    BroadcastStatus.CANCELLED: N_("cancelled"),
    BroadcastStatus.DONE: N_("finished"),
}


def verb_pattern(family: CallbackFamily, *verbs: str) -> str:
    """The regex routing these verbs of the family (with or without arguments)."""
    names = "|".join(re.escape(verb) for verb in verbs)
    return f"^{re.escape(family.prefix)}:(?:{names})(?::|$)"


# -- words ----------------------------------------------------------------------------------------


def audience_label(tr: Translator, audience: str, argument: str | None) -> str:
    """'Followers of one region: Crimea', escaped for HTML."""
    label = tr.gettext(AUDIENCE_WORDS.get(audience, audience))
    if argument is None:
        return html.escape(label)
    if audience == Audience.REGION:
        detail = tr.gettext(REGION_WORDS.get(argument, argument))
    else:
        detail = LANGUAGE_WORDS.get(argument, argument)
    return html.escape(f"{label}: {detail}")


def problem_reply(tr: Translator, problem: Problem, detail: str, length: int) -> str:
    """What staff read when their text cannot be sent (nothing was queued)."""
    if problem == Problem.EMPTY:
        return tr.gettext("The announcement is empty. Please send the text to broadcast.")
    if problem == Problem.BAD_HTML:
        return tr.gettext(
            "Telegram would refuse this text: its HTML is not valid ({detail}). Only Telegram's "
            "tags are allowed (b, i, u, s, a, code, pre, blockquote, tg-spoiler), every tag must "
            "be closed, and a plain &lt; or &amp; must be written &amp;lt; or &amp;amp;. "
            "Nothing was sent; please send the corrected text."
        ).format(detail=html.escape(detail))
    if problem == Problem.CAPTION_TOO_LONG:
        return tr.gettext(
            "With a photo, the text can be at most {limit} characters; this one has {length}. "
            "Nothing was sent. Send a shorter text with /broadcast, or press No photo."
        ).format(limit=tr.format_number(CAPTION_LIMIT), length=tr.format_number(length))
    return tr.gettext(
        "The text can be at most {limit} characters; this one has {length}. Nothing was sent; "
        "please send a shorter text."
    ).format(limit=tr.format_number(TEXT_LIMIT), length=tr.format_number(length))


# -- keyboards ------------------------------------------------------------------------------------


def audience_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext(word), callback_data=BROADCAST.build("aud", audience))]
            for audience, word in AUDIENCE_WORDS.items()
        ]
    )


def argument_keyboard(tr: Translator, audience: Audience) -> InlineKeyboardMarkup:
    if audience == Audience.LANGUAGE:
        choices = [(code, LANGUAGE_WORDS[code]) for code in LANGUAGES]
    else:
        choices = [(code, tr.gettext(word)) for code, word in REGION_WORDS.items()]
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=BROADCAST.build("of", audience, code))]
            for code, label in choices
        ]
    )


def confirm_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(tr.gettext("Send"), callback_data=BROADCAST.build("send")),
                InlineKeyboardButton(tr.gettext("Edit"), callback_data=BROADCAST.build("edit")),
                InlineKeyboardButton(tr.gettext("Cancel"), callback_data=BROADCAST.build("cancel")),
            ]
        ]
    )


def languages_keyboard(
    tr: Translator, texts: dict[str, str], *, editing: bool
) -> InlineKeyboardMarkup:
    """A button per language still missing (and, when editing, one per text to change), then
    "No more languages"."""
    rows: list[list[InlineKeyboardButton]] = []
    for code in LANGUAGES:
        if code in texts and editing:
            label = tr.gettext("Change: {language}")
        elif code not in texts:
            label = tr.gettext("Add: {language}")
        else:
            continue
        rows.append(
            [
                InlineKeyboardButton(
                    label.format(language=LANGUAGE_WORDS[code]),
                    callback_data=BROADCAST.build("lang", code),
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                tr.gettext("No more languages"), callback_data=BROADCAST.build("done")
            )
        ]
    )
    return InlineKeyboardMarkup(rows)


def manage_keyboard(tr: Translator, items: list[BroadcastView]) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for item in items:
        buttons: list[InlineKeyboardButton] = []
        if item.status == BroadcastStatus.SENDING:
            buttons.append(_manage_button(tr, N_("Pause #{id}"), "pause", item.id))
        if item.status == BroadcastStatus.PAUSED:
            buttons.append(_manage_button(tr, N_("Resume #{id}"), "resume", item.id))
        if item.status in (BroadcastStatus.SENDING, BroadcastStatus.PAUSED):
            buttons.append(_manage_button(tr, N_("Cancel #{id}"), "cancel", item.id))
        if buttons:
            rows.append(buttons)
    return InlineKeyboardMarkup(rows) if rows else None


def _manage_button(tr: Translator, label: str, verb: str, broadcast_id: int) -> Any:
    return InlineKeyboardButton(
        tr.gettext(label).format(id=broadcast_id),
        callback_data=BROADCASTS.build(verb, broadcast_id),
    )


def language_name(code: str) -> str:
    """A language by its own name."""
    return LANGUAGE_WORDS.get(code, code)


# -- /broadcasts ----------------------------------------------------------------------------------


def languages_line(tr: Translator, languages: tuple[str, ...]) -> str:
    """'Texts: Українська, English' (escaped)."""
    names = ", ".join(language_name(code) for code in languages)
    return html.escape(tr.gettext("Texts: {languages}").format(languages=names))


def describe(tr: Translator, item: BroadcastView) -> str:
    numbers = item.counts
    text = tr.gettext(
        "#{id} · {audience} · {status}\n"
        "delivered {delivered}, blocked {blocked}, failed {failed}, waiting {pending} of {total}"
    ).format(
        id=item.id,
        audience=audience_label(tr, item.audience, item.audience_arg),
        status=html.escape(tr.gettext(STATUS_WORDS.get(item.status, item.status))),
        delivered=tr.format_number(numbers.delivered),
        blocked=tr.format_number(numbers.blocked),
        failed=tr.format_number(numbers.failed),
        pending=tr.format_number(numbers.pending),
        total=tr.format_number(numbers.total),
    )
    if len(item.languages) > 1:
        text += "\n" + languages_line(tr, item.languages)
    return text
