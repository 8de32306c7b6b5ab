"""What each case status means, in words a frightened relative understands.

Other modules (alerts, staff cards) import these too, so the words are the same everywhere. They are
msgids: translate them at use with `tr.gettext`.
"""

from __future__ import annotations

from bot.i18n import N_, Translator
from storage.enums import CaseStatus

STATUS_WORDS: dict[CaseStatus, str] = {
    CaseStatus.NEW: N_("Received"),
    CaseStatus.UNDER_REVIEW: N_("Under review"),
    CaseStatus.NEED_INFO: N_("Waiting for information from the family"),
    CaseStatus.VERIFIED: N_("Verified"),
    CaseStatus.CHARGED: N_("Charged"),
    CaseStatus.SENTENCED: N_("Sentenced"),
    CaseStatus.TRANSFERRED: N_("Transferred"),
    CaseStatus.RELEASED: N_("Released"),
    CaseStatus.RETURNED: N_("Returned home"),
    CaseStatus.CLOSED: N_("Closed"),
    CaseStatus.DECEASED: N_("Deceased"),
}

STATUS_EXPLANATIONS: dict[CaseStatus, str] = {
    CaseStatus.NEW: N_("The hotline has received the report and will look at it soon."),
    CaseStatus.UNDER_REVIEW: N_("The hotline is checking the information."),
    CaseStatus.NEED_INFO: N_(
        "The hotline needs more information: please answer the question it sent you."
    ),
    CaseStatus.VERIFIED: N_(
        "The hotline has confirmed the detention and added the person to the registry of "
        "political prisoners."
    ),
    CaseStatus.CHARGED: N_("The person has been formally charged."),
    CaseStatus.SENTENCED: N_("A court has passed a sentence."),
    CaseStatus.TRANSFERRED: N_("The person has been moved to another place of detention."),
    CaseStatus.RELEASED: N_("The person has been freed but is not yet home."),
    CaseStatus.RETURNED: N_("The person is home, in government-controlled territory."),
    CaseStatus.CLOSED: N_("The case is closed (a duplicate, withdrawn, or not confirmed)."),
    CaseStatus.DECEASED: N_("We are deeply sorry: the person has died."),
}


def _known(status: str) -> CaseStatus | None:
    try:
        return CaseStatus(status)
    except ValueError:
        return None


def status_word(tr: Translator, status: str) -> str:
    """The translated word (plain text: escape it for HTML at use)."""
    known = _known(status)
    return tr.gettext(STATUS_WORDS[known]) if known is not None else status


def status_explanation(tr: Translator, status: str) -> str:
    known = _known(status)
    return tr.gettext(STATUS_EXPLANATIONS[known]) if known is not None else ""
