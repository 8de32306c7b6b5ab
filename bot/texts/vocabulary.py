"""The words of the domain's stored values, for every screen and message that shows them.

Keys are the stored strings (mostly `storage.enums` members); values are msgids, translated at
use with `word(tr, TABLE, value)` (or `tr.gettext`). One table per vocabulary, so a region or a
close reason reads the same in the report form, the staff card, a monitor's alert and /mydata.
"""

from __future__ import annotations

from bot.i18n import N_, Translator
from storage.enums import AlertFilter, CloseReason, EventKind, MonitorStatus
from storage.field_words import ACCESS_WORDS as ACCESS_WORDS
from storage.field_words import CUSTODY_WORDS as CUSTODY_WORDS
from storage.field_words import DATE_WORDS as DATE_WORDS
from storage.field_words import DETAINER_WORDS as DETAINER_WORDS
from storage.field_words import FLAG_WORDS as FLAG_WORDS
from storage.field_words import LAWYER_WORDS as LAWYER_WORDS
from storage.field_words import REGIME_WORDS as REGIME_WORDS
from storage.field_words import REGION_WORDS as REGION_WORDS
from storage.field_words import RELATION_WORDS as RELATION_WORDS
from storage.field_words import VISIBILITY_WORDS as VISIBILITY_WORDS

# The words of the case fields' choices live with the fields (`storage.field_words`, read by the
# registry in `storage.fields`); they are re-exported here so every text finds them in one place.

CLOSE_REASON_WORDS: dict[str, str] = {
    CloseReason.DUPLICATE: N_("duplicate"),
    CloseReason.WITHDRAWN: N_("withdrawn by the family"),
    CloseReason.REJECTED: N_("rejected"),
}
EVENT_WORDS: dict[str, str] = {
    EventKind.CREATED: N_("reported"),
    EventKind.STATUS_CHANGED: N_("status changed"),
    EventKind.PUBLIC_NOTE: N_("note for the family"),
    EventKind.FAMILY_NOTE: N_("note for the family only"),
    EventKind.INTERNAL_NOTE: N_("internal note"),
    EventKind.INFO_REQUESTED: N_("question to the family"),
    EventKind.INFO_RECEIVED: N_("answer from the family"),
    EventKind.CONTACT_LINKED: N_("relative linked"),
    EventKind.MERGED: N_("merged"),
    EventKind.VISIBILITY_CHANGED: N_("publicity changed"),
    EventKind.RECORD_CHANGED: N_("record updated"),
    EventKind.URGENT_TAKEN: N_("urgent alert taken"),
    EventKind.URGENT_STEP: N_("step told to the family"),
    EventKind.URGENT_ESCALATED: N_("urgent alert sent again"),
}
FILTER_WORDS: dict[str, str] = {
    AlertFilter.ALL_CHANGES: N_("All changes"),
    AlertFilter.VERDICTS_AND_RETURNS: N_("Only verdicts and returns"),
}
"""What a monitor's subscription sends: every change, or only verdicts and returns."""
VERIFICATION_WORDS: dict[str, str] = {
    "call": N_("A call to the case's reporter"),
    "documents": N_("Documents"),
    "known": N_("Known to us"),
    "other": N_("Other"),
}
"""How staff verified a relative before linking them (`storage.relatives.VERIFICATION_METHODS`)."""
REQUEST_WORDS: dict[str, str] = {
    MonitorStatus.PENDING: N_("waiting for a decision"),
    MonitorStatus.APPROVED: N_("approved"),
    MonitorStatus.REFUSED: N_("refused"),
}
"""Where a monitor access request stands."""
LANGUAGE_NAMES: dict[str, str] = {
    "uk": "Українська",
    "crh": "Qırımtatarca",
    "en": "English",
    "ru": "Русский",
}
"""Each language in its own words (never translated: a reader finds their own)."""


def word(tr: Translator, words: dict[str, str], value: object) -> str:
    """The translated label of a stored value (the value itself if unknown). Plain text."""
    msgid = words.get(str(value))
    return tr.gettext(msgid) if msgid else str(value)
