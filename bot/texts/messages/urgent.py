"""The urgent path's messages, rendered at send time in the recipient's language.

- `urgent.alert` to those on call (and, escalated, to every admin): the case code, what is
  happening and by whom, when it was reported, and "I'll take it". No place, name or phone: a
  staff member's phone can be seized too; the one who takes it gets those in a protected message.
- `urgent.taken` to the others who were alerted: who took it.
- `urgent.step` to the family: one step in plain words ("a lawyer is on the way"). It is
  family-facing (`discreet.FAMILY_FACING`): a discreet family sees only that there
  is news until they tap Show.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

from bot.callbacks import DUTY
from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer
from handlers.urgent_words import BY_WORDS, STEP_SENTENCES, WHAT_WORDS, word


def _code(params: Mapping[str, Any]) -> str:
    return str(params.get("code", ""))


def _open_button(tr: Translator, code: str) -> tuple[str, str]:
    return (tr.gettext("Open case"), f"case:show:{code}")


def _since(tr: Translator, params: Mapping[str, Any]) -> str:
    try:
        return tr.format_datetime(datetime.fromisoformat(str(params.get("since"))))
    except ValueError:
        return "?"


def alert(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    code = _code(params)
    lines = []
    if int(params.get("round") or 0) > 0:
        waited = int(params.get("waited") or 0)
        lines.append(
            "⏰ "
            + escape(
                tr.ngettext(
                    "Nobody has taken this alert for {count} minute. It is sent again, "
                    "to the admins too.",
                    "Nobody has taken this alert for {count} minutes. It is sent again, "
                    "to the admins too.",
                    waited,
                ).format(count=waited)
            )
        )
    lines += [
        "🚨 <b>" + escape(tr.gettext("Urgent: it is happening now")) + "</b>",
        escape(tr.gettext("Case {code}")).format(code=f"<code>{escape(code)}</code>"),
        escape(tr.gettext("What: {what}").format(what=word(tr, WHAT_WORDS, params.get("what")))),
        escape(tr.gettext("By: {by}").format(by=word(tr, BY_WORDS, params.get("by")))),
        escape(tr.gettext("Reported: {time}").format(time=_since(tr, params))),
        "",
        escape(
            tr.gettext(
                "The first to tap \"I'll take it\" handles it: the place and the family's "
                "contact are shown to them."
            )
        ),
    ]
    buttons = (
        ((tr.gettext("🙋 I'll take it"), DUTY.build("take", code)),),
        (_open_button(tr, code),),
    )
    return RenderedMessage("\n".join(lines), buttons=buttons)


def taken(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    code = f"<code>{escape(_code(params))}</code>"
    taker = params.get("taker")
    if taker:
        text = escape(tr.gettext("Urgent case {code} was taken by {name}.")).format(
            code=code, name=escape(str(taker))
        )
    else:
        text = escape(tr.gettext("Urgent case {code} was taken by another staff member.")).format(
            code=code
        )
    return RenderedMessage(text)


def step(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    sentence = STEP_SENTENCES.get(str(params.get("step")))
    if sentence is None:
        raise ValueError("unknown urgent step")
    heading = escape(tr.gettext("Your urgent alert, case {code}:")).format(
        code=f"<code>{escape(_code(params))}</code>"
    )
    return RenderedMessage(f"{heading}\n{escape(tr.gettext(sentence))}", protect_content=True)


TEMPLATES: dict[str, Renderer] = {
    "urgent.alert": alert,
    "urgent.taken": taken,
    "urgent.step": step,
}
