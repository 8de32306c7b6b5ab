"""The lifecycle graph over every pair of statuses, against DESIGN.md transcribed by hand."""

from __future__ import annotations

import itertools

import pytest

from storage.enums import CaseStatus as S
from storage.lifecycle import (
    RefusalReason,
    TransitionRefused,
    allowed_next,
    check_transition,
)

OPEN = [
    S.NEW,
    S.UNDER_REVIEW,
    S.NEED_INFO,
    S.VERIFIED,
    S.CHARGED,
    S.SENTENCED,
    S.TRANSFERRED,
    S.RELEASED,
]
EXITS = {S.RELEASED, S.RETURNED, S.CLOSED, S.DECEASED}
# DESIGN.md, transcribed independently of storage.lifecycle.
EXPECTED: set[tuple[S, S]] = {
    (S.NEW, S.UNDER_REVIEW),
    (S.UNDER_REVIEW, S.NEED_INFO),
    (S.NEED_INFO, S.UNDER_REVIEW),
    (S.UNDER_REVIEW, S.VERIFIED),
    (S.VERIFIED, S.CHARGED),
    (S.CHARGED, S.SENTENCED),
    (S.SENTENCED, S.TRANSFERRED),
    (S.CLOSED, S.UNDER_REVIEW),
} | {(old, new) for old in OPEN for new in EXITS if old != new}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)))
def test_every_pair_matches_the_design(old: S, new: S) -> None:
    if (old, new) in EXPECTED:
        assert check_transition(old, new) is None
        assert new in allowed_next(old)
    else:
        with pytest.raises(TransitionRefused) as refused:
            check_transition(old, new)
        assert refused.value.old == old and refused.value.new == new
        assert new not in allowed_next(old)


def test_examples_of_the_issue_give_clear_reasons() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_transition(S.RETURNED, S.CHARGED)
    assert refused.value.reason == RefusalReason.FINAL
    assert "final" in str(refused.value)
    with pytest.raises(TransitionRefused) as refused:
        check_transition(S.CLOSED, S.VERIFIED)
    assert refused.value.reason == RefusalReason.CLOSED_ONLY_REOPEN
    with pytest.raises(TransitionRefused) as refused:
        check_transition(S.NEW, S.CHARGED)
    assert refused.value.reason == RefusalReason.NOT_IN_GRAPH
    with pytest.raises(TransitionRefused) as refused:
        check_transition(S.VERIFIED, S.VERIFIED)
    assert refused.value.reason == RefusalReason.SAME_STATUS
    with pytest.raises(TransitionRefused) as refused:
        check_transition("bogus", S.VERIFIED)
    assert refused.value.reason == RefusalReason.UNKNOWN_STATUS


def test_final_states_have_no_exit_but_reopen() -> None:
    assert allowed_next(S.RETURNED) == []
    assert allowed_next(S.DECEASED) == []
    assert allowed_next(S.CLOSED) == [S.UNDER_REVIEW]
    assert allowed_next("bogus") == []
