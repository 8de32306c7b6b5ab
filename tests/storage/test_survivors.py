"""Rules that once had no test: each of these kills a hand-made mutant that every other
deterministic test let through (tests/mutants.py applies them; tests/README.md lists them)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import cases, outbox, recipients, statuses
from storage.access import is_staff
from storage.codes import new_case_code
from storage.enums import CaseStatus, OutboxKind, Role
from storage.lifecycle import FINAL
from storage.models import AuditEntry, Case, User
from storage.outbox import PRIORITY_STAFF, Outgoing
from tests.support.case_factory import ensure_user, make_case
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = 500
STAFF_MEMBER = 501
FAMILY = 100


async def new_case(db: Db, status: CaseStatus = CaseStatus.NEW, reporter: int = FAMILY) -> str:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, ACTOR)
        return await make_case(session, db.cipher, reporter_id=reporter, status=status)


@pytest.mark.parametrize("final", sorted(FINAL))
async def test_no_merge_into_a_case_that_is_over(db: Db, final: CaseStatus) -> None:
    """A duplicate merged into a closed, returned or deceased case would close it for nothing:
    its family would wait for approval on a case nobody works on any more."""
    survivor = await new_case(db, status=final)
    duplicate = await new_case(db, reporter=FAMILY + 1)
    async with db.sessions() as session, session.begin():
        with pytest.raises(cases.CaseRefused) as refused:
            await cases.merge_preview(session, duplicate, survivor)
        assert refused.value.reason == cases.CaseRefusal.TARGET_FINAL
        with pytest.raises(cases.CaseRefused) as refused:
            await cases.merge_cases(
                session, db.cipher, duplicate, survivor, actor_id=ACTOR, now=NOW
            )
        assert refused.value.reason == cases.CaseRefusal.TARGET_FINAL
    async with db.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == duplicate))
        assert case is not None and (case.status, case.merged_into_id) == (CaseStatus.NEW, None)


@pytest.mark.parametrize("monitors", [True, False])
async def test_every_note_to_the_family_is_audited(db: Db, monitors: bool) -> None:
    """Public notes (family and monitors) and family notes alike leave an audit row."""
    code = await new_case(db)
    async with db.sessions() as session, session.begin():
        await cases.send_note(
            session, db.cipher, code, "a note", monitors=monitors, actor_id=ACTOR, now=NOW
        )
    async with db.sessions() as session:
        entries = list(await session.scalars(select(AuditEntry)))
    action = "case.public_note" if monitors else "case.family_note"
    assert [(e.actor_id, e.action, e.case_code) for e in entries] == [(ACTOR, action, code)]
    assert "a note" not in (entries[0].detail or "")


async def test_returned_home_goes_to_staff_before_their_notices(db: Db) -> None:
    """'Returned home' is an alert every staff member must see first: it overtakes the staff
    notices already waiting in their chat (it has a case alert's priority, not a notice's)."""
    code = await new_case(db, status=CaseStatus.VERIFIED)
    async with db.sessions() as session, session.begin():
        session.add(User(id=STAFF_MEMBER, role=Role.STAFF))
        await session.flush()
        await outbox.enqueue(
            session,
            db.cipher,
            [
                Outgoing(
                    STAFF_MEMBER,
                    "earlier-notice",
                    "cases.dead_letter_staff",
                    {"code": "K"},
                    kind=OutboxKind.STAFF_ALERT,
                    priority=PRIORITY_STAFF,
                )
            ],
            now=NOW,
        )
        await cases.change_status(
            session,
            db.cipher,
            code,
            CaseStatus.RETURNED,
            actor_id=ACTOR,
            now=NOW,
            staff=recipients.StaffContacts(frozenset(), None),
        )
    async with db.sessions() as session, session.begin():
        claimed = await outbox.claim(
            session, db.cipher, now=NOW, lease=timedelta(seconds=30), limit=10
        )
    first = [row for row in claimed if row.chat_id == STAFF_MEMBER]
    assert [row.template for row in first] == [statuses.T_RETURNED_STAFF]
    assert first[0].priority < PRIORITY_STAFF


def test_a_monitor_is_not_staff() -> None:
    """Monitors follow public cases; they never read the staff side (trusted rate, staff help,
    the desk's replies)."""
    assert {role for role in Role if is_staff(role)} == {Role.STAFF, Role.ADMIN}
    assert not is_staff(Role.MONITOR.value)


def test_case_codes_come_from_secrets_not_random() -> None:
    """Codes must not be predictable from the `random` module's state (seedable, and its
    Mersenne Twister can be rebuilt from outputs): the same seed must not give the same codes."""
    random.seed(1234)
    first = [new_case_code() for _ in range(20)]
    random.seed(1234)
    second = [new_case_code() for _ in range(20)]
    assert first != second
