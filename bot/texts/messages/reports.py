"""Staff notices about new reports, rendered in the staff member's language at send time.

They carry the case code, region and detention date, and a button to open the case, but never the
detainee's name: the staff group's history lives on every member's phone (and on the phones of
members who leave), can be forwarded, and a phone seized at a checkpoint would list every detainee.
The name is one tap away in /case, which checks the role and writes an audit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from html import escape
from typing import Any

from bot.callbacks import CASE
from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer
from bot.texts.vocabulary import REGION_WORDS


def _region(tr: Translator, params: Mapping[str, Any]) -> str:
    region = str(params.get("region") or "")
    word = REGION_WORDS.get(region)
    return escape(tr.gettext(word) if word else region)


def _date(tr: Translator, params: Mapping[str, Any]) -> str:
    raw = params.get("detention_date")
    if not raw:
        return escape(tr.gettext("date not given"))
    try:
        return escape(tr.format_date(date.fromisoformat(str(raw))))
    except ValueError:
        return escape(str(raw))


def _open_button(tr: Translator, code: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    return (((tr.gettext("Open case"), CASE.build("show", code)),),)


def staff_new_report(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    code = str(params.get("code", ""))
    text = tr.gettext(
        "New report: case {code}\nRegion: {region}\nDetained on: {date}\n\n"
        "Open it to read the details."
    ).format(
        code=f"<code>{escape(code)}</code>", region=_region(tr, params), date=_date(tr, params)
    )
    buttons = _open_button(tr, code)
    original = params.get("duplicate_of")
    if original:
        text += "\n\n" + tr.gettext(
            "Possible duplicate of case {original} (same name and date of birth). The reporter "
            "was not told: compare the two before you merge them or link the reporter."
        ).format(original=f"<code>{escape(str(original))}</code>")
        buttons += (
            (
                (
                    tr.gettext("Open case {code}").format(code=original),
                    CASE.build("show", original),
                ),
            ),
        )
    return RenderedMessage(text, buttons=buttons)


def staff_contact_joined(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    code = str(params.get("code", ""))
    text = tr.gettext(
        "Another person reported the same detainee as case {code} (same name and date of "
        "birth), so the report was joined to the case.\nRegion: {region}\nDetained on: {date}"
        "\n\nOpen the case to read what they said and to link them if they are family: until "
        "then they do not see the case."
    ).format(
        code=f"<code>{escape(code)}</code>", region=_region(tr, params), date=_date(tr, params)
    )
    return RenderedMessage(text, buttons=_open_button(tr, code))


TEMPLATES: dict[str, Renderer] = {
    "reports.staff_new_report": staff_new_report,
    "reports.staff_contact_joined": staff_contact_joined,
}
