"""Discreet notifications: what a family's lock screen shows, and staff alerts about a seized phone.

A phone taken at a checkpoint shows its notifications. So a push to a family says only that there
is news, in their language, with a "Show" button; the details (the template the row was queued
with) are rendered when the button is pressed, sent with protect_content, and deleted after
`HOTLINE_DISCREET_DETAILS_MINUTES` (handlers/safety.py). A family may switch this off in /privacy.

Which templates are family-facing is declared here, in one place: the delivery job replaces each
of them by the notice when the recipient is discreet, and "Show" reveals only these. A new
family-facing template joins by adding its name to `FAMILY_FACING`.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bot.callbacks import SHOW
from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer

FAMILY_FACING: frozenset[str] = frozenset(
    {
        "cases.status_changed",
        "cases.public_note",
        "cases.info_requested",
        "cases.returned",
        "cases.merged",
        "cases.contact_linked",
        "cases.need_info_reminder",
        "threads.staff_reply",
        "record.changed",
        "record.hearing_reminder",
        "urgent.step",
    }
)
"""Templates that tell a family about their case: sent discreetly unless the family opted out."""


def is_discreet(template: str, recipient_discreet: bool) -> bool:
    """True when the row must go out as the discreet notice instead of its own text."""
    return recipient_discreet and template in FAMILY_FACING


def show_data(row_id: int) -> str:
    return SHOW.bare(row_id)


def notice(tr: Translator, row_id: int) -> RenderedMessage:
    """No name, no status, no code: only that there is something to see, and the button."""
    return RenderedMessage(
        escape(tr.gettext("There is news about your case.")),
        buttons=(((tr.gettext("Show"), show_data(row_id)),),),
    )


def _p(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else escape(str(value))


def _codes(params: Mapping[str, Any]) -> str:
    codes = [f"<code>{escape(str(code))}</code>" for code in params.get("codes", [])]
    return ", ".join(codes) if codes else "—"


def frozen_user_wrote_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "Frozen account {user} (cases: {codes}) wrote to the bot. It was shown nothing; if the "
        "family got the phone back, /unfreeze {user}."
    ).format(user=_p(params, "user"), codes=_codes(params))
    return RenderedMessage(text)


def frozen_by_pin_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "Account {user} (cases: {codes}) was frozen after {count} wrong PINs: someone else may "
        "have the phone. Please reach the family another way; /unfreeze {user} when it is safe."
    ).format(user=_p(params, "user"), codes=_codes(params), count=_p(params, "count"))
    return RenderedMessage(text)


TEMPLATES: dict[str, Renderer] = {
    "safety.frozen_user_wrote_staff": frozen_user_wrote_staff,
    "safety.frozen_by_pin_staff": frozen_by_pin_staff,
}
