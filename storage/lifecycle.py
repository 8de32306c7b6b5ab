"""The case lifecycle as data, and the one check every status change goes through.

    new → under_review → (need_info ↔ under_review) → verified → charged → sentenced → transferred
    any open state → released | returned | closed | deceased;  released → returned
    returned, closed, deceased are final; closed → under_review (reopen) is the only way back.

The graph is derived from the status table (`storage.statuses`): each status's forward moves,
plus, from every open status, the exits. Kept pure (no database) so it can be tested
exhaustively over every pair of statuses (tests/storage/test_lifecycle.py, which transcribes the
graph above by hand).
"""

from __future__ import annotations

from enum import StrEnum

from storage.enums import CaseStatus
from storage.statuses import ROWS

FINAL: frozenset[CaseStatus] = frozenset(row.status for row in ROWS if row.final)
OPEN: frozenset[CaseStatus] = frozenset(CaseStatus) - FINAL
EXITS: frozenset[CaseStatus] = frozenset(row.status for row in ROWS if row.exit)


def _build() -> dict[CaseStatus, frozenset[CaseStatus]]:
    """Forward moves, and the exits from every open status (never to itself)."""
    return {
        row.status: (row.forward | (frozenset() if row.final else EXITS)) - {row.status}
        for row in ROWS
    }


TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = _build()
"""status -> the statuses staff may move a case to from there."""


class RefusalReason(StrEnum):
    """Why a move is refused; handlers turn each into a translated sentence."""

    UNKNOWN_STATUS = "unknown_status"
    SAME_STATUS = "same_status"
    FINAL = "final"
    CLOSED_ONLY_REOPEN = "closed_only_reopen"
    NOT_IN_GRAPH = "not_in_graph"


class TransitionRefused(Exception):
    """A status change outside the lifecycle graph. The message carries no personal data."""

    def __init__(self, old: str, new: str, reason: RefusalReason) -> None:
        self.old = old
        self.new = new
        self.reason = reason
        super().__init__(f"{old} -> {new} refused: {_EXPLANATIONS[reason]}")


_EXPLANATIONS: dict[RefusalReason, str] = {
    RefusalReason.UNKNOWN_STATUS: "unknown status",
    RefusalReason.SAME_STATUS: "the case already has this status",
    RefusalReason.FINAL: "the case is final (returned or deceased) and cannot change",
    RefusalReason.CLOSED_ONLY_REOPEN: "a closed case can only be reopened to under_review",
    RefusalReason.NOT_IN_GRAPH: "this move is not in the case lifecycle",
}


def allowed_next(old: str) -> list[CaseStatus]:
    """The statuses reachable from `old`, in lifecycle order (for buttons)."""
    try:
        targets = TRANSITIONS[CaseStatus(old)]
    except ValueError:
        return []
    return [status for status in CaseStatus if status in targets]


def check_transition(old: str, new: str) -> None:
    """Return None when `old -> new` is in the graph, else raise `TransitionRefused`."""
    try:
        before, after = CaseStatus(old), CaseStatus(new)
    except ValueError:
        raise TransitionRefused(old, new, RefusalReason.UNKNOWN_STATUS) from None
    if after in TRANSITIONS[before]:
        return
    if before == after:
        raise TransitionRefused(old, new, RefusalReason.SAME_STATUS)
    if before in FINAL and TRANSITIONS[before]:  # closed: reopening is its only move
        raise TransitionRefused(old, new, RefusalReason.CLOSED_ONLY_REOPEN)
    if before in FINAL:
        raise TransitionRefused(old, new, RefusalReason.FINAL)
    raise TransitionRefused(old, new, RefusalReason.NOT_IN_GRAPH)
