"""The status table (storage/statuses.py): every status has a complete row, its words are
translated in every language, and every table derived from it agrees with it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.callbacks import CASE, RECORD
from bot.i18n import LANGUAGES, I18n, catalog_path, default_locales_dir, load_catalog
from bot.texts.messages import TEMPLATES
from bot.texts.messages.discreet import FAMILY_FACING
from handlers.staff import case_markup
from storage import lifecycle, subscriptions
from storage.case_views import INBOX_STATUSES, StaffCaseView
from storage.enums import CaseStatus, Visibility
from storage.lifecycle import allowed_next
from storage.statuses import ROWS, STATUSES, CardFlow, Status


def test_every_status_has_exactly_one_row_in_lifecycle_order() -> None:
    assert [row.status for row in ROWS] == list(CaseStatus)
    assert set(STATUSES) == set(CaseStatus)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: str(row.status))
def test_every_row_is_complete(row: Status) -> None:
    assert row.word.strip() and row.explanation.strip()
    assert row.family_template in TEMPLATES and row.family_template in FAMILY_FACING
    if row.staff_alert is not None:
        assert row.staff_alert in TEMPLATES and row.staff_alert not in FAMILY_FACING
    if row.flow in (CardFlow.QUESTION, CardFlow.REASON):
        assert row.button, "a special card flow needs its own button label"
    if row.flow == CardFlow.NONE:  # never offered: so nothing may lead there
        assert all(row.status not in targets for targets in lifecycle.TRANSITIONS.values())
    assert not (row.forward & {row.status})


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_status_word_is_translated(lang: str) -> None:
    catalog = load_catalog(catalog_path(default_locales_dir(), lang))
    for row in ROWS:
        for msgid in (row.word, row.explanation, *([row.button] if row.button else [])):
            message = catalog.get(msgid)
            assert message is not None and message.string, (lang, msgid)
            assert not message.fuzzy, (lang, msgid)


def test_the_lifecycle_is_derived_from_the_table() -> None:
    assert {row.status for row in ROWS if row.final} == lifecycle.FINAL
    assert {row.status for row in ROWS if row.exit} == lifecycle.EXITS
    assert set(CaseStatus) - lifecycle.FINAL == lifecycle.OPEN
    for row in ROWS:
        targets = lifecycle.TRANSITIONS[row.status]
        assert row.forward <= targets
        if row.final:
            assert targets == row.forward
        else:
            assert targets == row.forward | (lifecycle.EXITS - {row.status})


def test_the_derived_tables_agree_with_the_table() -> None:
    assert {row.status for row in ROWS if row.verdict} == subscriptions.VERDICTS_AND_RETURNS
    assert set(INBOX_STATUSES) == {row.status for row in ROWS if row.inbox}
    # Exactly the return home alerts every staff member, today.
    assert [row.status for row in ROWS if row.alerts_all_staff] == [CaseStatus.RETURNED]


def _view(status: CaseStatus) -> StaffCaseView:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return StaffCaseView(
        code="K7M4-9XQ2",
        status=status,
        visibility=Visibility.ANONYMOUS,
        region="crimea",
        detained_by=None,
        detention_date=None,
        reporter_id=None,
        merged_into=None,
        closed_reason=None,
        created_at=now,
        updated_at=now,
        personal={},
        contacts=[],
        events=[],
        allowed_next=allowed_next(status),
    )


@pytest.mark.parametrize("status", list(CaseStatus))
def test_the_staff_card_offers_each_allowed_move_as_its_row_says(status: CaseStatus) -> None:
    tr = I18n(default_language="en").get("en")
    buttons = {
        data: label
        for row in case_markup(tr, _view(status)).inline_keyboard
        for button in row
        for label, data in [(button.text, button.callback_data)]
    }
    offered: set[CaseStatus] = set()
    for data, label in buttons.items():
        if str(data).startswith(RECORD.head()):
            continue  # "Edit details": the prisoner's record, not a move
        pressed = CASE.parse(str(data))
        assert pressed is not None
        if pressed.verb == "st":
            target = STATUSES[CaseStatus(pressed.args[1])]
            assert target.flow == CardFlow.MOVE
            assert label == (target.button or "→ " + target.word)
            offered.add(target.status)
        elif pressed.verb == "ask":
            offered |= {row.status for row in ROWS if row.flow == CardFlow.QUESTION}
        elif pressed.verb == "close":
            offered |= {row.status for row in ROWS if row.flow == CardFlow.REASON}
    assert offered == set(lifecycle.TRANSITIONS[status])
