"""What each case status means, in words a frightened relative understands.

The words and explanations are the status table's (`storage.statuses`), so they are the same on
every screen and in every message: the family's /status, the staff card, monitors' alerts.
"""

from __future__ import annotations

from bot.i18n import Translator
from storage.statuses import ROWS, row_of

STATUS_WORDS: dict[str, str] = {row.status: row.word for row in ROWS}
"""Status → its word's msgid (for matching what staff type, e.g. /find status:Verified)."""


def status_word(tr: Translator, status: str) -> str:
    """The translated word (plain text: escape it for HTML at use)."""
    row = row_of(status)
    return tr.gettext(row.word) if row is not None else status


def status_explanation(tr: Translator, status: str) -> str:
    row = row_of(status)
    return tr.gettext(row.explanation) if row is not None else ""
