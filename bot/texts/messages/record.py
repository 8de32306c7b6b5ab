"""What a family or monitor reads when the prisoner's record changes, hearing reminders, signs of
life and the silence alarm.

Values arrive as the plain values storage/record.py keeps (ISO dates, a UTC hearing instant,
articles as {"number", "part"}, a term in months, flags) and are shown by their field's kind
(storage/fields.py), at send time, in the reader's language and date format. Every value is
escaped for HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from html import escape
from typing import Any

from bot.i18n import N_, Translator
from bot.texts.messages.base import RenderedMessage, Renderer
from storage import fields
from storage.enums import SignOfLife
from storage.field_words import CUSTODY_WORDS


def custody_word(tr: Translator, custody: object) -> str:
    """Plain text (escape at use); empty when custody is not set."""
    msgid = CUSTODY_WORDS.get(str(custody)) if custody else None
    return tr.gettext(msgid) if msgid else str(custody or "")


def article_text(tr: Translator, article: Mapping[str, Any]) -> str:
    """One article of the criminal code in the reader's words (plain text: escape at use)."""
    fld = fields.REGISTRY["articles"]
    return fld.kind.show(tr, fld, [dict(article)])


def label(tr: Translator, key: str) -> str:
    fld = fields.REGISTRY.get(key)
    return tr.gettext(fld.label) if fld is not None else key


def value_text(tr: Translator, key: str, value: Any) -> str:
    """A field's value as the reader reads it (plain text: escape at use); "—" when empty."""
    fld = fields.REGISTRY.get(key)
    if value is None or value == [] or value == "":
        return "—"
    return fld.kind.show(tr, fld, value) if fld is not None else str(value)


def record_lines(tr: Translator, values: Mapping[str, Any], keys: list[str]) -> list[str]:
    """`<b>Label:</b> value` lines (HTML) of the given fields that have a value."""
    lines = []
    for key in keys:
        if values.get(key) in (None, [], ""):
            continue
        lines.append(f"<b>{escape(label(tr, key))}:</b> {escape(value_text(tr, key, values[key]))}")
    return lines


def _case(tr: Translator, params: Mapping[str, Any]) -> str:
    code = f"<code>{escape(str(params.get('code', '')))}</code>"
    if params.get("name"):
        return tr.gettext("{code} ({name})").format(code=code, name=escape(str(params["name"])))
    return code


def record_changed(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    key = str(params.get("field"))
    value = escape(value_text(tr, key, params.get("value")))
    text = tr.gettext("Case {case}: {field} is now {value}.").format(
        case=_case(tr, params), field=f"<b>{escape(label(tr, key))}</b>", value=value
    )
    return RenderedMessage(text, protect_content=True)


def hearing_reminder(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext("Reminder: the next court hearing in case {case} is on {when}.").format(
        case=_case(tr, params), when=escape(value_text(tr, "next_hearing", params.get("hearing")))
    )
    return RenderedMessage(text, protect_content=True)


TEMPLATES: dict[str, Renderer] = {
    "record.changed": record_changed,
    "record.changed_monitor": record_changed,
    "record.hearing_reminder": hearing_reminder,
    "record.hearing_reminder_monitor": hearing_reminder,
}


SIGN_WORDS: dict[str, str] = {
    SignOfLife.LETTER: N_("a letter"),
    SignOfLife.CALL: N_("a call"),
    SignOfLife.VISIT: N_("a visit"),
    SignOfLife.LAWYER_VISIT: N_("a lawyer's visit"),
}
SIGN_BUTTONS: dict[str, str] = {
    SignOfLife.LETTER: N_("✉ A letter came"),
    SignOfLife.CALL: N_("☎ A call"),
    SignOfLife.VISIT: N_("👁 A visit"),
    SignOfLife.LAWYER_VISIT: N_("⚖ A lawyer's visit"),
}


def sign_text(tr: Translator, kind: object, on_date: date) -> str:
    """`a letter, 02.12.2026` (plain text: escape at use)."""
    return tr.gettext("{what}, {date}").format(
        what=tr.gettext(SIGN_WORDS.get(str(kind), str(kind))), date=tr.format_date(on_date)
    )


def silence_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    days = int(params.get("days", 0))
    text = tr.ngettext(
        "No sign of life in case {code} for {days} day (since {since}). /case {code}",
        "No sign of life in case {code} for {days} days (since {since}). /case {code}",
        days,
    ).format(
        code=escape(str(params.get("code", ""))),
        days=days,
        since=escape(tr.format_date(date.fromisoformat(str(params.get("since"))))),
    )
    return RenderedMessage(text)


def silence_monitor(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    days = int(params.get("days", 0))
    text = tr.ngettext(
        "No sign of life from {case} for {days} day (since {since}).",
        "No sign of life from {case} for {days} days (since {since}).",
        days,
    ).format(
        case=_case(tr, params),
        days=days,
        since=escape(tr.format_date(date.fromisoformat(str(params.get("since"))))),
    )
    return RenderedMessage(text, protect_content=bool(params.get("name")))


TEMPLATES.update(
    {
        "record.silence_staff": silence_staff,
        "record.silence_monitor": silence_monitor,
    }
)
