"""The words of the domain's stored values, for every screen and message that shows them.

Keys are the stored strings (mostly `storage.enums` members); values are msgids, translated at
use with `word(tr, TABLE, value)` (or `tr.gettext`). One table per vocabulary, so a region or a
close reason reads the same in the report form, the staff card, a monitor's alert and /mydata.
"""

from __future__ import annotations

from bot.i18n import N_, Translator
from storage.enums import (
    AlertFilter,
    CloseReason,
    Detainer,
    EventKind,
    MonitorStatus,
    Region,
    Relation,
    Visibility,
)

RELATION_WORDS: dict[str, str] = {
    Relation.PARENT: N_("Parent"),
    Relation.SPOUSE: N_("Wife or husband"),
    Relation.CHILD: N_("Son or daughter"),
    Relation.SIBLING: N_("Brother or sister"),
    Relation.OTHER_RELATIVE: N_("Other relative"),
    Relation.FRIEND: N_("Friend"),
    Relation.LAWYER: N_("Lawyer"),
    Relation.OTHER: N_("Other"),
}
REGION_WORDS: dict[str, str] = {
    Region.CRIMEA: N_("Crimea"),
    Region.SEVASTOPOL: N_("Sevastopol"),
    Region.DONETSK: N_("Donetsk oblast (occupied part)"),
    Region.LUHANSK: N_("Luhansk oblast (occupied part)"),
    Region.ZAPORIZHZHIA: N_("Zaporizhzhia oblast (occupied part)"),
    Region.KHERSON: N_("Kherson oblast (occupied part)"),
    Region.RUSSIA: N_("Russia"),
    Region.OTHER: N_("Other place"),
}
DETAINER_WORDS: dict[str, str] = {
    Detainer.FSB: N_("FSB"),
    Detainer.POLICE: N_("Police"),
    Detainer.MILITARY: N_("Military"),
    Detainer.UNKNOWN: N_("Unknown"),
    Detainer.OTHER: N_("Other"),
}
LAWYER_WORDS: dict[str, str] = {
    "yes": N_("Yes, there is a lawyer"),
    "no": N_("No lawyer"),
    "unknown": N_("I don't know"),
}
VISIBILITY_WORDS: dict[str, str] = {
    Visibility.PUBLIC: N_("Public: the name may be published"),
    Visibility.ANONYMOUS: N_("Anonymous: region, date and status only, no name"),
    Visibility.STAFF_ONLY: N_("Staff only: nothing is published"),
}
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
