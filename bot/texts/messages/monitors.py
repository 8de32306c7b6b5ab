"""What monitors and the admins who approve them read: case alerts, digest parts, access requests.

A monitor alert names the detainee only when the family made the case public; an anonymous case
shows code, region, status and date. The parameters were cut to that rule when queued (and again
if consent narrowed before sending), so a template never decides what a monitor may see, it only
shows what it was given, escaped for HTML.

Digest parts are split by `split_digest` at queue time, with the same line renderer the template
uses, so each part stays under Telegram's limit of 4,096 characters; lines are whole HTML
fragments, so a split between lines can never cut a tag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from bot.callbacks import MONITOR
from bot.i18n import Translator
from bot.texts.messages.base import RenderedMessage, Renderer
from bot.texts.messages.cases import status_word
from bot.texts.vocabulary import REGION_WORDS
from storage.enums import EventKind

TELEGRAM_LIMIT = 4096
DIGEST_NOTE_SHOWN = 300


def _p(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return "" if value is None else escape(str(value))


def region_word(tr: Translator, region: object) -> str:
    word = REGION_WORDS.get(str(region))
    return escape(tr.gettext(word) if word else str(region or ""))


def _case_label(tr: Translator, params: Mapping[str, Any]) -> str:
    code = f"<code>{_p(params, 'code')}</code>"
    if params.get("name"):
        return tr.gettext("{code} ({name})").format(code=code, name=_p(params, "name"))
    return code


def telegram_length(text: str) -> int:
    """Telegram counts UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def monitor_alert(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    when = escape(tr.format_date(date.fromisoformat(str(params["date"]))))
    case, region = _case_label(tr, params), region_word(tr, params.get("region"))
    if params.get("kind") == EventKind.PUBLIC_NOTE:
        text = tr.gettext("Case {case}, {region}, {date}: a note from the hotline:").format(
            case=case, region=region, date=when
        )
        text += "\n\n" + _p(params, "note")
    else:
        text = tr.gettext(
            "Case {case}, {region}: the status is now <b>{status}</b> ({date})."
        ).format(case=case, region=region, status=status_word(tr, params.get("status")), date=when)
        if params.get("note"):
            text += "\n\n" + tr.gettext("Note from the hotline:") + "\n" + _p(params, "note")
    return RenderedMessage(text, protect_content=bool(params.get("name")))


# -- digest --------------------------------------------------------------------------------------


def digest_line(tr: Translator, item: Mapping[str, Any]) -> str:
    """One change: time, case (name only if public), region, status or the note (shortened)."""
    head = tr.gettext("{time} {case}, {region}:").format(
        time=_p(item, "time"),
        case=_case_label(tr, item),
        region=region_word(tr, item.get("region")),
    )
    if item.get("kind") == EventKind.PUBLIC_NOTE:
        note = str(item.get("note") or "")
        if len(note) > DIGEST_NOTE_SHOWN:
            note = note[:DIGEST_NOTE_SHOWN] + "…"
        return f"{head} {escape(' '.join(note.split()))}"
    return f"{head} <b>{status_word(tr, item.get('status'))}</b>"


def digest_header(tr: Translator, date_text: str, part: int, parts: int) -> str:
    head = tr.gettext("<b>Digest for {date}</b>: changes in the cases you follow.").format(
        date=escape(date_text)
    )
    if parts > 1:
        head += " " + tr.gettext("(part {part} of {parts})").format(part=part, parts=parts)
    return head


def split_digest(
    tr: Translator,
    date_text: str,
    items: Sequence[Mapping[str, Any]],
    limit: int = TELEGRAM_LIMIT,
    *,
    line_size: Callable[[Mapping[str, Any]], int] | None = None,
) -> list[list[Mapping[str, Any]]]:
    """Pack items, in order, into as few parts as the limit allows; a part breaks only between
    lines. The header is measured with a three-digit part count, the widest it can be.
    `line_size` (an item's `digest_line` length in `tr`'s language) lets a caller that splits
    many digests sharing items measure each line once."""
    budget = limit - telegram_length(digest_header(tr, date_text, 999, 999)) - 1
    measure = line_size or (lambda item: telegram_length(digest_line(tr, item)))
    parts: list[list[Mapping[str, Any]]] = [[]]
    used = 0
    for item in items:
        size = measure(item) + 1  # the newline before it
        if parts[-1] and used + size > budget:
            parts.append([])
            used = 0
        parts[-1].append(item)
        used += size
    return [part for part in parts if part]


def digest_part(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    date_text = tr.format_date(date.fromisoformat(str(params["date"])))
    header = digest_header(tr, date_text, int(params["part"]), int(params["parts"]))
    lines = [digest_line(tr, item) for item in params.get("items", [])]
    named = any(item.get("name") for item in params.get("items", []))
    return RenderedMessage("\n".join([header, *lines]), protect_content=named)


# -- access requests -----------------------------------------------------------------------------


def access_request(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    text = tr.gettext(
        "User {user} asks for monitor access.\nOrganisation: {organisation}\nPurpose: {purpose}"
    ).format(
        user=f"<code>{_p(params, 'user_id')}</code>",
        organisation=_p(params, "organisation"),
        purpose=_p(params, "purpose"),
    )
    request_id = int(params["request_id"])
    buttons = (
        (
            (tr.gettext("Approve"), MONITOR.build("approve", request_id)),
            (tr.gettext("Refuse"), MONITOR.build("refuse", request_id)),
        ),
    )
    return RenderedMessage(text, buttons=buttons, protect_content=True)


def access_outcome(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("approved"):
        text = tr.gettext(
            "Your monitor access was approved. Follow a case with /follow CODE, a region with "
            "/follow region, or every public case with /follow all. /digest on sends a daily "
            "digest."
        )
    else:
        text = tr.gettext(
            "Your request for monitor access was not approved. If you think this is a mistake, "
            "please contact the hotline."
        )
    return RenderedMessage(escape(text))


TEMPLATES: dict[str, Renderer] = {
    "monitors.alert": monitor_alert,
    "monitors.digest_part": digest_part,
    "monitors.access_request": access_request,
    "monitors.access_outcome": access_outcome,
}
