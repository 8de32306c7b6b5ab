"""What staff read when a staff chat cannot be reached (`storage.reachability`): once per
episode, naming no one (the staff group is read on many phones); the server's
`python -m bot staff list` shows who it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer


def staff_unreachable(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("group"):
        text = tr.gettext(
            "Notices cannot reach the staff group: Telegram says the chat does not exist. Check "
            "{setting} and that the bot is still a member of the group. Until then, notices "
            "about new reports are lost."
        ).format(setting="<code>HOTLINE_STAFF_CHAT_ID</code>")
    else:
        text = tr.gettext(
            "Notices cannot reach a staff member: Telegram says their chat does not exist "
            "(they have probably never opened the bot). Until they open the bot and send /start, "
            "they do not hear about new reports. On the server, {command} shows who it is."
        ).format(command="<code>python -m bot staff list</code>")
    return RenderedMessage(text)


TEMPLATES: dict[str, Renderer] = {"reachability.staff_unreachable": staff_unreachable}
