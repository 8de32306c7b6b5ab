"""What staff read about messages that could not be delivered: one summary per burst, never one
notice per message (jobs/dead_letters.py gathers them)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer


def _number(params: Mapping[str, Any], key: str) -> int:
    try:
        return int(params.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _hours(value: object) -> str:
    try:
        hours = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    return f"{hours:g}"


def dead_summary(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    count = _number(params, "count")
    lines = [
        tr.ngettext(
            "{count} message could not be delivered:",
            "{count} messages could not be delivered:",
            count,
        ).format(count=count)
    ]
    if blocked := _number(params, "blocked"):
        line = tr.gettext("the recipient blocked the bot: {count}").format(count=blocked)
        lines.append("• " + line)
    if refused := _number(params, "refused"):
        lines.append(
            "• "
            + tr.gettext("refused by Telegram (chat not found or a malformed message): {count}")
            .format(count=refused)
        )  # fmt: skip
    if unreachable := _number(params, "unreachable"):
        lines.append(
            "• "
            + tr.gettext("Telegram could not be reached for {hours} h: {count}").format(
                hours=escape(_hours(params.get("hours"))), count=unreachable
            )
        )
    codes = [str(code) for code in params.get("codes") or []]
    if codes:
        shown = ", ".join(f"<code>{escape(code)}</code>" for code in codes)
        lines.append(tr.gettext("Cases: {codes}").format(codes=shown))
        if more := _number(params, "more_codes"):
            lines.append(tr.gettext("and {count} more").format(count=more))
    return RenderedMessage("\n".join(lines))


TEMPLATES: dict[str, Renderer] = {"delivery.dead_summary": dead_summary}
