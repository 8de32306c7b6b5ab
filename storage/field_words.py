"""The words of the case fields answered with a button: stored value → msgid (translated where
shown). The registry (`storage.fields`) gives each choice field its words; the staff card, the
monitors' texts and the outbox templates read the same tables."""

from __future__ import annotations

from storage.enums import (
    Custody,
    Detainer,
    HealthFlag,
    HearingAccess,
    Region,
    Relation,
    SentenceRegime,
    Visibility,
)
from storage.msgids import N_

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
DATE_WORDS: dict[str, str] = {"today": N_("Today"), "yesterday": N_("Yesterday")}
"""Buttons of a date question: the day is worked out when tapped."""

CUSTODY_WORDS: dict[str, str] = {
    Custody.PRE_TRIAL: N_("In pre-trial detention"),
    Custody.HOUSE_ARREST: N_("Under house arrest or restrictions"),
    Custody.COLONY: N_("Serving a sentence in a colony"),
    Custody.IN_TRANSIT: N_("In transit between places of detention"),
    Custody.RELEASED: N_("Released"),
    Custody.PERSECUTED_FREE: N_("Prosecuted, not detained"),
    Custody.UNKNOWN: N_("Whereabouts unknown"),
}
ACCESS_WORDS: dict[str, str] = {
    HearingAccess.OPEN: N_("Open hearing"),
    HearingAccess.CLOSED: N_("Closed hearing"),
}
REGIME_WORDS: dict[str, str] = {
    SentenceRegime.GENERAL: N_("General regime colony"),
    SentenceRegime.STRICT: N_("Strict regime colony"),
    SentenceRegime.SPECIAL: N_("Special regime colony"),
    SentenceRegime.PRISON: N_("Prison"),
    SentenceRegime.SETTLEMENT: N_("Colony-settlement"),
}
FLAG_WORDS: dict[str, str] = {
    HealthFlag.CHRONIC: N_("Chronic illness"),
    HealthFlag.URGENT_CARE: N_("Needs urgent medical care"),
}
