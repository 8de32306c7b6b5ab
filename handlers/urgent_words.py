"""The words of the urgent path: its choices, the steps families are told, and the advice for
the next hour. Labels are msgids, translated at use (handlers, and the outbox templates of
`bot.texts.messages.urgent`, which render them in the recipient's language at send time).

The advice is for someone whose home is being searched or whose relative was just taken, reading
it on a phone that may lose its connection: short lines, no links, nothing to look up. It says
what the law the occupying authorities apply allows (the right not to testify against oneself or
one's close relatives, Article 51 of the Russian Constitution; objections written into a
record), and what protects the person: names, car plates, witnesses, a copy of every record.
"""

from __future__ import annotations

from bot.i18n import N_, Translator
from storage.enums import Detainer, UrgentKind, UrgentStep

WHAT_WORDS: dict[str, str] = {
    UrgentKind.SEARCH: N_("A search"),
    UrgentKind.DETENTION: N_("A detention"),
    UrgentKind.TAKEN_AWAY: N_("Someone was taken away"),
}
BY_WORDS: dict[str, str] = {  # the same msgids as the report form's
    Detainer.FSB: N_("FSB"),
    Detainer.POLICE: N_("Police"),
    Detainer.MILITARY: N_("Military"),
    Detainer.UNKNOWN: N_("Unknown"),
    Detainer.OTHER: N_("Other"),
}
STEP_BUTTONS: dict[str, str] = {
    UrgentStep.LAWYER_TOLD: N_("Lawyer told"),
    UrgentStep.LAWYER_ON_WAY: N_("Lawyer on the way"),
    UrgentStep.LAWYER_THERE: N_("Lawyer arrived"),
    UrgentStep.STILL_LOOKING: N_("Still looking for a lawyer"),
    UrgentStep.LOCATING: N_("Finding out where they are"),
    UrgentStep.LOCATED: N_("Found where they are held"),
    UrgentStep.WILL_CALL: N_("We will call the family"),
    UrgentStep.DONE: N_("Finished"),
}
"""What staff tap (short)."""
STEP_SENTENCES: dict[str, str] = {
    UrgentStep.TAKEN: N_("A member of the hotline has your alert and is working on it now."),
    UrgentStep.LAWYER_TOLD: N_("A lawyer has been told."),
    UrgentStep.LAWYER_ON_WAY: N_("A lawyer is on the way."),
    UrgentStep.LAWYER_THERE: N_("The lawyer has arrived."),
    UrgentStep.STILL_LOOKING: N_(
        "We are still looking for a lawyer who can come. We have not forgotten you."
    ),
    UrgentStep.LOCATING: N_("We are finding out where the person was taken."),
    UrgentStep.LOCATED: N_(
        "We have found out where the person is held. We will write to you here with the details."
    ),
    UrgentStep.WILL_CALL: N_("Someone from the hotline will call you shortly."),
    UrgentStep.DONE: N_(
        "The urgent part is over. We continue to follow the case: write here whenever you need."
    ),
}
"""What the family reads (plain words)."""

ADVICE_HEADING = N_(
    "What to do in the next hour. Keep this message: it stays readable without internet."
)
ADVICE_ALWAYS = N_(
    "• Stay calm and do not resist physically: it can be used for new charges.\n"
    "• Ask each officer for their name, rank and unit, and to show their ID. Write everything "
    "down with the time: names, the number plates and colour of the cars, the names of the "
    "witnesses.\n"
    "• No one has to testify against themselves or their close relatives (Article 51 of the "
    'Russian Constitution, which the occupying authorities apply). Say: "I will speak only '
    'with my lawyer."\n'
    "• Do not sign anything without a lawyer. If you are made to sign a record, read all of it "
    'first, write your objections in it ("I do not agree", "my lawyer was not let in") and '
    "ask for a copy.\n"
    "• You do not have to unlock your phone or tell your passwords.\n"
    "• Nobody from the hotline will ask you for money. Do not pay anyone who offers to "
    '"settle" the matter.'
)
ADVICE_SEARCH = N_(
    "During a search:\n"
    "• Ask to see the court decision or order for the search; note its number and date.\n"
    "• Ask for your lawyer to be let in.\n"
    "• Stay where they search and watch their hands, so that nothing is planted; the witnesses "
    "must watch too.\n"
    "• Check that everything they take is listed in the record, with the serial numbers of "
    "phones and computers."
)
ADVICE_TAKEN = N_(
    "If someone was detained or taken away:\n"
    "• Write down where, when and by whom, and which way they were driven.\n"
    "• Ask the officers where they are taking the person.\n"
    "• Ask neighbours and passers-by what they saw, and whether a camera filmed it.\n"
    "• If you go to the police to ask, do not give any explanation there without a lawyer."
)
ADVICE_TELL_US = N_(
    "Tell us here as soon as you learn where the person is, or if anything changes. What you "
    "write here reaches only the hotline's staff."
)


def word(tr: Translator, words: dict[str, str], value: object) -> str:
    """The translated label of a stored value; the value itself if unknown, "?" if None."""
    if value is None:
        return "?"
    msgid = words.get(str(value))
    return tr.gettext(msgid) if msgid else str(value)


def advice(tr: Translator, what: str | None) -> str:
    """The advice for the next hour, plain text (to be escaped): what always holds, then what
    fits what is happening (both parts when the family did not say)."""
    parts = [tr.gettext(ADVICE_HEADING), tr.gettext(ADVICE_ALWAYS)]
    if what in (None, UrgentKind.SEARCH):
        parts.append(tr.gettext(ADVICE_SEARCH))
    if what != UrgentKind.SEARCH:
        parts.append(tr.gettext(ADVICE_TAKEN))
    parts.append(tr.gettext(ADVICE_TELL_US))
    return "\n\n".join(parts)
