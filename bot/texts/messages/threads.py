"""What staff and families read of a conversation: the desk notice and the staff answer.

The notice to staff names the case code and the kind of message, never the detainee's name nor
the family's words (a staff phone's lock screen, or a staff group, may be seen by others); the
text is read in the thread view. The staff answer reaches the family with protect_content.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bot.callbacks import DESK
from bot.i18n import N_, Translator
from bot.texts.messages.base import ATTACHMENT_KINDS, Attachment, RenderedMessage, Renderer

KIND_WORDS: dict[str, str] = {
    "text": N_("text"),
    "photo": N_("photo"),
    "document": N_("document"),
    "voice": N_("voice message"),
    "video": N_("video"),
    "video_note": N_("video message"),
    "audio": N_("audio"),
    "animation": N_("animation"),
    "sticker": N_("sticker"),
    "location": N_("location"),
    "contact": N_("contact"),
    "other": N_("other message"),
}


def kind_word(tr: Translator, kind: object) -> str:
    return tr.gettext(KIND_WORDS.get(str(kind), KIND_WORDS["other"]))


def family_message_staff(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    kind = escape(kind_word(tr, params.get("kind")))
    if params.get("code"):
        text = tr.gettext("New message from a family about case {code} ({kind}).").format(
            code=f"<code>{escape(str(params['code']))}</code>", kind=kind
        )
    else:
        text = tr.gettext(
            "New message from a family without a case, conversation {thread} ({kind})."
        ).format(thread=escape(str(params.get("thread", ""))), kind=kind)
    text += "\n" + tr.gettext("Reply to this notice to answer, or open the conversation.")
    message = params.get("message")
    return RenderedMessage(
        text,
        buttons=(
            (
                (tr.gettext("Open"), DESK.build("mopen", message)),
                (tr.gettext("Reply"), DESK.build("mreply", message)),
            ),
        ),
    )


def staff_reply(tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    if params.get("code"):
        head = tr.gettext("Message from the hotline about case {code}:").format(
            code=f"<code>{escape(str(params['code']))}</code>"
        )
    else:
        head = tr.gettext("Message from the hotline:")
    body = escape(str(params.get("text") or ""))
    hint = tr.gettext("To answer, just write here.")
    text = "\n\n".join(part for part in (head, body, hint) if part)
    kind, file_id = params.get("kind"), params.get("file_id")
    attachment = (
        Attachment(str(kind), str(file_id)) if kind in ATTACHMENT_KINDS and file_id else None
    )
    return RenderedMessage(text, protect_content=True, attachment=attachment)


TEMPLATES: dict[str, Renderer] = {
    "threads.family_message_staff": family_message_staff,
    "threads.staff_reply": staff_reply,
}
