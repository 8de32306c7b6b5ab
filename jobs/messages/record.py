"""The words of the prisoner's record, and what a family or monitor reads when it changes.

Values arrive as the plain values storage/record.py keeps (ISO dates, a UTC hearing instant,
articles as {"number", "part"}, a term in months, flags) and are rendered here, at send time, in
the reader's language and date format; hearings in court time (Moscow time, as the courts of
occupied Crimea sit). Every value is escaped for HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from html import escape
from typing import Any

from bot.i18n import N_, Translator
from jobs.messages.base import RenderedMessage, Renderer
from storage.enums import Custody, HealthFlag, HearingAccess, SentenceRegime, SignOfLife
from storage.record_values import court_time

RECORD_LABELS: dict[str, str] = {
    "custody": N_("Custody"),
    "articles": N_("Articles"),
    "criminal_case": N_("Criminal case or group"),
    "court": N_("Court"),
    "next_hearing": N_("Next hearing"),
    "hearing_access": N_("Hearing open to the public"),
    "pretrial_until": N_("Pre-trial detention until"),
    "sentence_term": N_("Sentence"),
    "sentence_regime": N_("Regime"),
    "detention_place": N_("Place of detention"),
    "postal_address": N_("Postal address for letters"),
    "punishment_cell_since": N_("In a punishment cell since"),
    "health_flags": N_("Health"),
    "end_of_term": N_("End of term"),
}
CUSTODY_WORDS: dict[str, str] = {
    Custody.PRE_TRIAL: N_("In pre-trial detention"),
    Custody.HOUSE_ARREST: N_("Under house arrest or restrictions"),
    Custody.COLONY: N_("Serving a sentence in a colony"),
    Custody.IN_TRANSIT: N_("In transit between places of detention"),
    Custody.RELEASED: N_("Released"),
    Custody.PERSECUTED_FREE: N_("Prosecuted, not detained"),
    Custody.UNKNOWN: N_("Whereabouts unknown"),
}
ACCESS_WORDS: dict[str, str] = {
    HearingAccess.OPEN: N_("Open hearing"),
    HearingAccess.CLOSED: N_("Closed hearing"),
}
REGIME_WORDS: dict[str, str] = {
    SentenceRegime.GENERAL: N_("General regime colony"),
    SentenceRegime.STRICT: N_("Strict regime colony"),
    SentenceRegime.SPECIAL: N_("Special regime colony"),
    SentenceRegime.PRISON: N_("Prison"),
    SentenceRegime.SETTLEMENT: N_("Colony-settlement"),
}
FLAG_WORDS: dict[str, str] = {
    HealthFlag.CHRONIC: N_("Chronic illness"),
    HealthFlag.URGENT_CARE: N_("Needs urgent medical care"),
}
CHOICE_WORDS: dict[str, dict[str, str]] = {
    "custody": CUSTODY_WORDS,
    "hearing_access": ACCESS_WORDS,
    "sentence_regime": REGIME_WORDS,
    "health_flags": FLAG_WORDS,
}


def _word(tr: Translator, words: Mapping[str, str], value: object) -> str:
    msgid = words.get(str(value))
    return tr.gettext(msgid) if msgid else str(value)


def custody_word(tr: Translator, custody: object) -> str:
    """Plain text (escape at use); empty when custody is not set."""
    return _word(tr, CUSTODY_WORDS, custody) if custody else ""


def article_text(tr: Translator, article: Mapping[str, Any]) -> str:
    if article.get("part"):
        return tr.gettext("art. {number} part {part}").format(
            number=article["number"], part=article["part"]
        )
    return tr.gettext("art. {number}").format(number=article["number"])


def term_text(tr: Translator, months: int) -> str:
    years, rest = divmod(int(months), 12)
    parts = []
    if years:
        parts.append(tr.ngettext("{count} year", "{count} years", years).format(count=years))
    if rest:
        parts.append(tr.ngettext("{count} month", "{count} months", rest).format(count=rest))
    return " ".join(parts)


def hearing_text(tr: Translator, value: str) -> str:
    local = court_time(datetime.fromisoformat(value))
    if (local.hour, local.minute) == (0, 0):  # the time is not known
        return tr.format_date(local.date())
    return tr.gettext("{when} (Moscow time)").format(when=tr.format_datetime(local))


def value_text(tr: Translator, key: str, value: Any) -> str:
    """A record value as the reader reads it (plain text: escape at use); "—" when empty."""
    if value is None or value == [] or value == "":
        return "—"
    if key == "articles":
        return ", ".join(article_text(tr, article) for article in value)
    if key == "next_hearing":
        return hearing_text(tr, str(value))
    if key in ("pretrial_until", "punishment_cell_since", "end_of_term"):
        return tr.format_date(date.fromisoformat(str(value)))
    if key == "sentence_term":
        return term_text(tr, int(value))
    if key == "health_flags":
        return ", ".join(_word(tr, FLAG_WORDS, flag) for flag in value)
    if key in CHOICE_WORDS:
        return _word(tr, CHOICE_WORDS[key], value)
    return str(value)


def record_lines(tr: Translator, values: Mapping[str, Any], keys: list[str]) -> list[str]:
    """`<b>Label:</b> value` lines (HTML) of the given fields that have a value."""
    lines = []
    for key in keys:
        if values.get(key) in (None, [], ""):
            continue
        label = escape(tr.gettext(RECORD_LABELS[key]))
        lines.append(f"<b>{label}:</b> {escape(value_text(tr, key, values[key]))}")
    return lines


def _case(tr: Translator, params: Mapping[str, Any]) -> str:
    code = f"<code>{escape(str(params.get('code', '')))}</code>"
    if params.get("name"):
        return tr.gettext("{code} ({name})").format(code=code, name=escape(str(params["name"])))
    return code


def record_changed(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    key = str(params.get("field"))
    label = escape(tr.gettext(RECORD_LABELS.get(key, key)))
    value = escape(value_text(tr, key, params.get("value")))
    text = tr.gettext("Case {case}: {field} is now {value}.").format(
        case=_case(tr, params), field=f"<b>{label}</b>", value=value
    )
    return RenderedMessage(text, protect_content=True)


def hearing_reminder(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext("Reminder: the next court hearing in case {case} is on {when}.").format(
        case=_case(tr, params), when=escape(hearing_text(tr, str(params.get("hearing"))))
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
        what=_word(tr, SIGN_WORDS, kind), date=tr.format_date(on_date)
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
