"""Messages about the case library's anonymised export: the admins' notice of a monitor's
request (with Approve/Refuse buttons) and the monitor's answer."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bot.callbacks import LIBRARY
from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer


def export_request(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    user = int(params.get("user_id", 0))
    text = tr.gettext(
        "Monitor {user} asks for the anonymised export of public cases (code, region, status, "
        "custody, articles and dates; no names)."
    ).format(user=f"<code>{user}</code>")
    buttons = (
        (
            (tr.gettext("Approve"), LIBRARY.build("grant", user)),
            (tr.gettext("Refuse"), LIBRARY.build("deny", user)),
        ),
    )
    return RenderedMessage(text, buttons=buttons, protect_content=True)


def export_decided(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("approved"):
        text = tr.gettext(
            "You may now download the anonymised export of public cases: send /cases and press "
            "Export."
        )
    else:
        text = tr.gettext("Your request for the anonymised export was not approved.")
    return RenderedMessage(escape(text))


TEMPLATES: dict[str, Renderer] = {
    "library.export_request": export_request,
    "library.export_decided": export_decided,
}
