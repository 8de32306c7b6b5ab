"""What families, monitors and staff read when a case changes, rendered at send time in the
recipient's language. Every parameter is escaped for HTML; messages naming the detainee are sent
with protect_content so they cannot be forwarded or saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer
from bot.texts.statuses import status_word as shared_status_word


def status_word(tr: Translator, status: object) -> str:
    """The shared status word (bot.texts.statuses), escaped for HTML."""
    return escape(shared_status_word(tr, str(status)))


def _p(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else escape(str(value))


def _case_label(tr: Translator, params: Mapping[str, Any]) -> str:
    """'K7M4-9XQ2 (Name)' when the recipient may see the name, else the code alone."""
    code = f"<code>{_p(params, 'code')}</code>"
    if params.get("name"):
        return tr.gettext("{code} ({name})").format(code=code, name=_p(params, "name"))
    return code


def _with_note(tr: Translator, text: str, params: Mapping[str, Any]) -> str:
    if not params.get("note"):
        return text
    return text + "\n\n" + tr.gettext("Note from the hotline:") + "\n" + _p(params, "note")


def status_changed(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext("Case {case}: the status is now <b>{status}</b>.").format(
        case=_case_label(tr, params), status=status_word(tr, params.get("new"))
    )
    return RenderedMessage(_with_note(tr, text, params), protect_content=bool(params.get("name")))


def public_note(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext("A note from the hotline about case {case}:").format(
        case=_case_label(tr, params)
    )
    return RenderedMessage(text + "\n\n" + _p(params, "note"), protect_content=True)


def info_requested(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "The hotline needs a little more information about case {case}:\n\n{question}\n\n"
        "Please write your answer here, as an ordinary message. It goes straight to the staff."
    ).format(case=_case_label(tr, params), question=_p(params, "question"))
    return RenderedMessage(text, protect_content=True)


def returned(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("name"):
        text = tr.gettext(
            "Wonderful news: {name} is home, in safety. Case {code} is now marked as "
            "<b>returned</b>.\n\nWe are so glad for you. If you need anything now, a doctor, "
            "a lawyer or documents, write to us: we are still here."
        ).format(name=_p(params, "name"), code=f"<code>{_p(params, 'code')}</code>")
    else:
        text = tr.gettext(
            "Wonderful news: the person in case {code} is home, in safety. The case is now "
            "marked as <b>returned</b>."
        ).format(code=f"<code>{_p(params, 'code')}</code>")
    return RenderedMessage(_with_note(tr, text, params), protect_content=bool(params.get("name")))


def returned_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext("Case {code} is marked returned: the person is home.").format(
        code=f"<code>{_p(params, 'code')}</code>"
    )
    return RenderedMessage(text)


def merged(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "Case {code} describes the same person as case {into}, so the two were joined. "
        "From now on you will receive the updates of case {into}."
    ).format(code=f"<code>{_p(params, 'code')}</code>", into=f"<code>{_p(params, 'into')}</code>")
    return RenderedMessage(text)


def contact_linked(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "The hotline linked you to case {case}: you will receive its updates here."
    ).format(case=_case_label(tr, params))
    return RenderedMessage(text, protect_content=bool(params.get("name")))


def need_info_reminder(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "A gentle reminder: the hotline is still waiting for your answer about case {case}:"
        "\n\n{question}\n\nWhenever you are ready, just write it here."
    ).format(case=_case_label(tr, params), question=_p(params, "question"))
    return RenderedMessage(text, protect_content=True)


def stale_cases_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    codes = [escape(str(code)) for code in params.get("codes", [])]
    total = int(params.get("total", len(codes)))
    days = int(params.get("days", 30))
    head = tr.ngettext(
        "{count} open case has not changed for {days} days or more:",
        "{count} open cases have not changed for {days} days or more:",
        total,
    ).format(count=total, days=days)
    lines = [f"/case {code}" for code in codes]
    if total > len(codes):
        lines.append(tr.gettext("and {count} more").format(count=total - len(codes)))
    return RenderedMessage(head + "\n" + "\n".join(lines))


def dead_letter_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("code"):
        text = tr.gettext(
            "A notification about case {code} could not be delivered after several tries "
            "(outbox message {id}, {error})."
        ).format(
            code=f"<code>{_p(params, 'code')}</code>",
            id=_p(params, "id"),
            error=_p(params, "error"),
        )
    else:
        text = tr.gettext(
            "A message could not be delivered after several tries (outbox message {id}, {error})."
        ).format(id=_p(params, "id"), error=_p(params, "error"))
    return RenderedMessage(text)


TEMPLATES: dict[str, Renderer] = {
    "cases.status_changed": status_changed,
    "cases.public_note": public_note,
    "cases.info_requested": info_requested,
    "cases.returned": returned,
    "cases.returned_staff": returned_staff,
    "cases.merged": merged,
    "cases.contact_linked": contact_linked,
    "cases.need_info_reminder": need_info_reminder,
    "cases.stale_cases_staff": stale_cases_staff,
    "cases.dead_letter_staff": dead_letter_staff,
}
