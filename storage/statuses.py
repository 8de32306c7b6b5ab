"""Every case status in one table: its words, its place in the lifecycle, and what it sets off.

Adding a status is a member of `storage.enums.CaseStatus`, one `Status` row here, and its words
in the catalogs. Everything else is derived from this table:

- the lifecycle graph and its refusals (`storage.lifecycle`: TRANSITIONS, FINAL, OPEN, EXITS);
- the status word and explanation every screen shows (`bot.texts.statuses`);
- the monitors' "only verdicts and returns" filter (`storage.subscriptions.VERDICTS_AND_RETURNS`);
- which cases wait in the staff inbox (`storage.case_views.inbox`);
- what a change to it sends, and to whom (`storage.cases.change_status`: the family's template,
  and whether every staff member and admin is alerted);
- how staff make the move: the card's button and what it asks (`handlers.staff.case_markup`,
  and `storage.cases.change_status`, which refuses a move that skips its question or reason).

`tests/storage/test_statuses.py` checks that every status has a complete row, its words
translated in every language, and that the lifecycle and every derived table agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storage.enums import CaseStatus
from storage.msgids import N_

S = CaseStatus


class CardFlow(StrEnum):
    """How staff move a case to a status: the card's button and what follows it."""

    MOVE = "move"  # "→ <word>" (or `Status.button`), then Confirm / Confirm with a note
    QUESTION = "question"  # staff type a question for the family; sending it is the move
    REASON = "reason"  # staff choose a reason (`CloseReason`); merging is offered beside it
    NONE = "none"  # never offered: no move leads there (a case starts in it)


T_STATUS_CHANGED = "cases.status_changed"
T_RETURNED = "cases.returned"
T_RETURNED_STAFF = "cases.returned_staff"


@dataclass(frozen=True)
class Status:
    """One row: what a status means and what moving a case to it does."""

    status: CaseStatus
    word: str
    """msgid: the status in a few words (a family reads it)."""
    explanation: str
    """msgid: what it means for the family, in one sentence."""
    forward: frozenset[CaseStatus] = frozenset()
    """Where a case may move from here, besides the exits (which every open status may take)."""
    exit: bool = False
    """Reachable from every open status: the ways a case ends (or a person is freed)."""
    final: bool = False
    """No exit from here; only `forward` moves (a closed case's reopening) leave it."""
    verdict: bool = False
    """Monitors who follow "only verdicts and returns" hear about a move to it."""
    inbox: bool = False
    """A case in this status waits in the staff inbox."""
    family_template: str = T_STATUS_CHANGED
    """The outbox template the family (and the note's readers) receive for a move to it."""
    staff_alert: str | None = None
    """When set, every staff member and admin (and the staff group) gets this template."""
    flow: CardFlow = CardFlow.MOVE
    button: str | None = None
    """msgid of the card button when it is not "→ <word>"."""

    @property
    def alerts_all_staff(self) -> bool:
        return self.staff_alert is not None


ROWS: tuple[Status, ...] = (
    Status(
        S.NEW,
        N_("Received"),
        N_("The hotline has received the report and will look at it soon."),
        forward=frozenset({S.UNDER_REVIEW}),
        inbox=True,
        flow=CardFlow.NONE,
    ),
    Status(
        S.UNDER_REVIEW,
        N_("Under review"),
        N_("The hotline is checking the information."),
        forward=frozenset({S.NEED_INFO, S.VERIFIED}),
    ),
    Status(
        S.NEED_INFO,
        N_("Waiting for information from the family"),
        N_("The hotline needs more information: please answer the question it sent you."),
        forward=frozenset({S.UNDER_REVIEW}),
        inbox=True,
        flow=CardFlow.QUESTION,
        button=N_("Ask family for information"),
    ),
    Status(
        S.VERIFIED,
        N_("Verified"),
        N_(
            "The hotline has confirmed the detention and added the person to the registry of "
            "political prisoners."
        ),
        forward=frozenset({S.CHARGED}),
    ),
    Status(
        S.CHARGED,
        N_("Charged"),
        N_("The person has been formally charged."),
        forward=frozenset({S.SENTENCED}),
    ),
    Status(
        S.SENTENCED,
        N_("Sentenced"),
        N_("A court has passed a sentence."),
        forward=frozenset({S.TRANSFERRED}),
        verdict=True,
    ),
    Status(
        S.TRANSFERRED,
        N_("Transferred"),
        N_("The person has been moved to another place of detention."),
    ),
    Status(
        S.RELEASED,
        N_("Released"),
        N_("The person has been freed but is not yet home."),
        exit=True,
        verdict=True,
    ),
    Status(
        S.RETURNED,
        N_("Returned home"),
        N_("The person is home, in government-controlled territory."),
        exit=True,
        final=True,
        verdict=True,
        family_template=T_RETURNED,
        staff_alert=T_RETURNED_STAFF,
        button=N_("Mark returned"),
    ),
    Status(
        S.CLOSED,
        N_("Closed"),
        N_("The case is closed (a duplicate, withdrawn, or not confirmed)."),
        forward=frozenset({S.UNDER_REVIEW}),  # reopening: the only way back from a final status
        exit=True,
        final=True,
        flow=CardFlow.REASON,
        button=N_("Close"),
    ),
    Status(
        S.DECEASED,
        N_("Deceased"),
        N_("We are deeply sorry: the person has died."),
        exit=True,
        final=True,
        verdict=True,
    ),
)

STATUSES: dict[CaseStatus, Status] = {row.status: row for row in ROWS}


def row_of(status: str) -> Status | None:
    """The row of a stored status string; None for a value no status has (an old database)."""
    try:
        return STATUSES[CaseStatus(status)]
    except ValueError:
        return None
