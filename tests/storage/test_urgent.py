"""The urgent path and the on-call roster in storage, on SQLite and PostgreSQL: one transaction
files an urgent case without a name, two takes at once give one owner, steps reach the family
only from the owner, escalation follows a fixed clock, shifts follow the hotline's time zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from storage import oncall, urgent
from storage.enums import AuditOutcome, CaseStatus, EventKind, OutboxStatus, Role
from storage.models import (
    AuditEntry,
    Case,
    CaseContact,
    CaseEvent,
    CasePersonal,
    OutboxMessage,
    UrgentCase,
)
from storage.outbox import open_params
from storage.users import set_role
from tests.support.case_factory import ensure_user
from tests.support.databases import Db
from tests.support.sealed import every_key

KYIV = ZoneInfo("Europe/Kyiv")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=KYIV).astimezone(UTC)  # Monday 10:00 in Kyiv
FAMILY = 100
ADMIN = 900
STAFF_A, STAFF_B = 501, 502
DUTY = oncall.Duty(frozenset({ADMIN}), KYIV)
ANSWERS = urgent.UrgentAnswers(
    place="Simferopol, Kyivska 12", what="detention", detained_by="fsb", phone="+380671234567"
)


async def _people(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        for user in (FAMILY, ADMIN, STAFF_A, STAFF_B):
            await ensure_user(session, user, "en")
        await set_role(session, STAFF_A, Role.STAFF)
        await set_role(session, STAFF_B, Role.STAFF)


async def _file(db: Db, now: datetime = MONDAY_10) -> urgent.UrgentFiled:
    async with db.sessions() as session, session.begin():
        return await urgent.file_urgent(
            session, db.cipher, FAMILY, ANSWERS, now=now, duty=DUTY, reports_per_day=5
        )


async def _rows(db: Db, template: str) -> list[OutboxMessage]:
    async with db.sessions() as session:
        found = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.template == template)
            .order_by(OutboxMessage.id)
        )
        return list(found)


async def test_filing_is_one_transaction_without_a_name(db: Db) -> None:
    await _people(db)
    async with db.sessions() as session, session.begin():
        await oncall.switch(session, DUTY, STAFF_A, True, now=MONDAY_10)
    filed = await _file(db)
    assert filed.alerted == 1 and not filed.nobody_on_call
    async with db.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == filed.code))
        assert case is not None and case.status == CaseStatus.NEW and case.detained_by == "fsb"
        personal = await session.get(CasePersonal, case.id)
        assert personal is not None and personal.detainee_name is None  # no name: still a case
        assert b"Simferopol" not in (personal.arrest_place or b"")
        contact = await session.scalar(select(CaseContact).where(CaseContact.case_id == case.id))
        assert contact is not None and contact.is_reporter and contact.approved
        row = await session.get(UrgentCase, case.id)
        assert row is not None and row.what == "detention" and row.taken_by is None
        events = list(await session.scalars(select(CaseEvent.kind)))
        audits = list(await session.scalars(select(AuditEntry.action)))
        draft = await urgent.urgent_draft_for(session, db.cipher, FAMILY)
    opener = await every_key(db.sessions, db.cipher)
    assert opener.open(personal.arrest_place) == "Simferopol, Kyivska 12"
    assert events == [EventKind.CREATED] and audits == ["oncall.on", "urgent.file"]
    (alert,) = await _rows(db, urgent.T_ALERT)
    assert alert.chat_id == STAFF_A and alert.priority < 0  # before every other row
    params = open_params(opener, alert.payload)
    assert params["code"] == filed.code and params["what"] == "detention"
    assert "Simferopol" not in str(params) and "380" not in str(params)  # no place, no phone
    # the report form starts from the same answers
    assert draft is not None and draft.code == filed.code
    assert (draft.place, draft.detained_by, draft.phone) == (
        "Simferopol, Kyivska 12",
        "fsb",
        "+380671234567",
    )


async def test_nobody_on_call_alerts_the_admins_at_once(db: Db) -> None:
    await _people(db)
    filed = await _file(db)
    assert filed.nobody_on_call
    assert [row.chat_id for row in await _rows(db, urgent.T_ALERT)] == [ADMIN]


async def test_two_takes_at_once_give_exactly_one_owner(db: Db) -> None:
    await _people(db)
    async with db.sessions() as session, session.begin():
        await oncall.switch(session, DUTY, STAFF_A, True, now=MONDAY_10)
        await oncall.switch(session, DUTY, STAFF_B, True, now=MONDAY_10)
    filed = await _file(db)
    async with db.sessions() as session, session.begin():  # both alerts went out
        await session.execute(
            OutboxMessage.__table__.update().values(status=OutboxStatus.SENT)  # type: ignore[attr-defined]
        )

    async def take(staff: int) -> urgent.Taken:
        async with db.sessions() as session, session.begin():
            return await urgent.take(
                session, db.cipher, filed.code, staff, now=MONDAY_10, taker_name=f"Staff {staff}"
            )

    results = await asyncio.gather(take(STAFF_A), take(STAFF_B))
    winners = [r for r in results if r.won]
    losers = [r for r in results if not r.won]
    assert len(winners) == 1 and len(losers) == 1
    winner, loser = winners[0], losers[0]
    assert loser.details is None and loser.taken_by == winner.taken_by
    assert loser.taker == f"Staff {winner.taken_by}"
    async with db.sessions() as session:
        row = await session.get(UrgentCase, filed.case_id)
        taken_events = await session.scalar(
            select(func.count()).where(CaseEvent.kind == EventKind.URGENT_TAKEN)
        )
        refused = list(
            await session.scalars(
                select(AuditEntry.actor_id).where(AuditEntry.outcome == AuditOutcome.REFUSED)
            )
        )
    assert row is not None and row.taken_by == winner.taken_by
    assert taken_events == 1 and refused == [loser_id(winner)]
    (family_row,) = await _rows(db, urgent.T_STEP)
    assert family_row.chat_id == FAMILY
    (told,) = await _rows(db, urgent.T_TAKEN)
    assert told.chat_id == loser_id(winner)
    # a second press by the owner changes nothing
    again = await take(winner.taken_by or 0)
    assert again.already_yours and not again.won
    assert len(await _rows(db, urgent.T_STEP)) == 1


def loser_id(winner: urgent.Taken) -> int:
    return STAFF_B if winner.taken_by == STAFF_A else STAFF_A


async def test_steps_come_from_the_owner_or_an_admin_only(db: Db) -> None:
    await _people(db)
    filed = await _file(db)
    async with db.sessions() as session, session.begin():
        early = await urgent.post_step(
            session, db.cipher, filed.code, STAFF_A, "lawyer_told", now=MONDAY_10
        )
    assert early.refused == "not_taken"
    async with db.sessions() as session, session.begin():
        await urgent.take(session, db.cipher, filed.code, STAFF_A, now=MONDAY_10)
    later = MONDAY_10 + timedelta(minutes=3)
    async with db.sessions() as session, session.begin():
        other = await urgent.post_step(
            session, db.cipher, filed.code, STAFF_B, "lawyer_told", now=later
        )
        forged = await urgent.post_step(session, db.cipher, filed.code, STAFF_A, "taken", now=later)
    assert other.refused == "taken" and forged.refused == "bad_step"
    async with db.sessions() as session, session.begin():
        mine = await urgent.post_step(
            session, db.cipher, filed.code, STAFF_A, "lawyer_on_way", now=later
        )
        admin = await urgent.post_step(
            session, db.cipher, filed.code, ADMIN, "done", now=later, is_admin=True
        )
    assert mine.refused is None and admin.refused is None
    assert [step for step, _ in admin.details.steps] == ["taken", "lawyer_on_way", "done"]
    steps = await _rows(db, urgent.T_STEP)
    assert [row.chat_id for row in steps] == [FAMILY] * 3
    opener = await every_key(db.sessions, db.cipher)
    async with db.sessions() as session:
        row = await session.get(UrgentCase, filed.case_id)
    said = [open_params(opener, r.payload)["step"] for r in steps]
    assert said == ["taken", "lawyer_on_way", "done"]
    assert row is not None and row.done_at is not None and row.last_step == "done"


async def test_escalation_follows_the_clock_once_per_period(db: Db) -> None:
    await _people(db)
    async with db.sessions() as session, session.begin():
        await oncall.switch(session, DUTY, STAFF_A, True, now=MONDAY_10)
    filed = await _file(db)

    async def escalate(at: datetime) -> list[str]:
        async with db.sessions() as session, session.begin():
            return await urgent.escalate_due(session, db.cipher, now=at, minutes=10, duty=DUTY)

    assert await escalate(MONDAY_10 + timedelta(minutes=9, seconds=59)) == []
    assert await escalate(MONDAY_10 + timedelta(minutes=10)) == [filed.code]
    assert await escalate(MONDAY_10 + timedelta(minutes=10)) == []  # once per period
    assert await escalate(MONDAY_10 + timedelta(minutes=19)) == []
    alerts = await _rows(db, urgent.T_ALERT)
    assert [(row.chat_id, row.dedupe_key.split(":")[2]) for row in alerts] == [
        (STAFF_A, "0"),
        (STAFF_A, "1"),
        (ADMIN, "1"),
    ]
    assert await escalate(MONDAY_10 + timedelta(minutes=20)) == [filed.code]
    async with db.sessions() as session, session.begin():
        await urgent.take(session, db.cipher, filed.code, STAFF_A, now=MONDAY_10)
    assert await escalate(MONDAY_10 + timedelta(hours=2)) == []  # taken: left alone
    async with db.sessions() as session:
        row = await session.get(UrgentCase, filed.case_id)
    assert row is not None and row.rounds == 2


async def test_escalation_stops_after_the_last_round(db: Db) -> None:
    await _people(db)
    await _file(db)
    codes = []
    for minutes in range(10, 100, 10):
        async with db.sessions() as session, session.begin():
            codes += await urgent.escalate_due(
                session,
                db.cipher,
                now=MONDAY_10 + timedelta(minutes=minutes),
                minutes=10,
                duty=DUTY,
            )
    assert len(codes) == urgent.MAX_ROUNDS


async def test_shifts_follow_the_hotlines_time_zone(db: Db) -> None:
    await _people(db)
    async with db.sessions() as session, session.begin():
        await oncall.add_shift(
            session,
            DUTY,
            actor_id=ADMIN,
            user_id=STAFF_A,
            shift=oncall.parse_shift("mon-fri", "09-18"),
            now=MONDAY_10,
        )
        await oncall.add_shift(
            session,
            DUTY,
            actor_id=ADMIN,
            user_id=STAFF_B,
            shift=oncall.parse_shift("sun", "22-06"),
            now=MONDAY_10,
        )
        with pytest.raises(oncall.NotStaff):
            await oncall.add_shift(
                session,
                DUTY,
                actor_id=ADMIN,
                user_id=FAMILY,
                shift=oncall.parse_shift("daily", "00-24"),
                now=MONDAY_10,
            )

    async def on_call(at: datetime) -> list[int]:
        async with db.sessions() as session:
            return await oncall.on_call_now(session, DUTY, now=at)

    assert await on_call(MONDAY_10) == [STAFF_A]
    assert await on_call(datetime(2026, 3, 2, 18, 0, tzinfo=KYIV)) == []  # the end is exclusive
    assert await on_call(datetime(2026, 3, 7, 10, 0, tzinfo=KYIV)) == []  # Saturday
    assert await on_call(datetime(2026, 3, 8, 23, 0, tzinfo=KYIV)) == [STAFF_B]  # Sunday night
    assert await on_call(datetime(2026, 3, 9, 5, 59, tzinfo=KYIV)) == [
        STAFF_B
    ]  # Sunday 22-06 ends on Monday
    assert await on_call(datetime(2026, 7, 6, 9, 0, tzinfo=KYIV)) == [STAFF_A]  # summer time
    # /oncall off during a shift: off for this shift, back for the next one
    async with db.sessions() as session, session.begin():
        member = await oncall.switch(session, DUTY, STAFF_A, False, now=MONDAY_10)
    assert not member.on_call and member.off_until == datetime(2026, 3, 2, 18, 0, tzinfo=KYIV)
    assert await on_call(MONDAY_10 + timedelta(hours=1)) == []
    assert await on_call(datetime(2026, 3, 3, 9, 30, tzinfo=KYIV)) == [STAFF_A]
    # a revoked member falls silent with the role
    async with db.sessions() as session, session.begin():
        await set_role(session, STAFF_A, Role.FAMILY)
    assert await on_call(datetime(2026, 3, 3, 9, 30, tzinfo=KYIV)) == []


@pytest.mark.parametrize(
    ("days", "hours", "expected"),
    [
        ("mon-fri", "09-18", (0b0011111, 540, 1080)),
        ("sat,sun", "10:30-16", (0b1100000, 630, 960)),
        ("fri-mon", "22-06", (0b1110001, 1320, 360)),
        ("daily", "00-24", (0b1111111, 0, 0)),
        ("Wed", "9-17", (0b0000100, 540, 1020)),
    ],
)
def test_shifts_are_read_as_admins_write_them(
    days: str, hours: str, expected: tuple[int, int, int]
) -> None:
    shift = oncall.parse_shift(days, hours)
    assert (shift.days, shift.start_minute, shift.end_minute) == expected
    again = oncall.parse_shift(oncall.describe_days(shift.days), oncall.describe_hours(shift))
    assert again == shift


@pytest.mark.parametrize(
    ("days", "hours"), [("someday", "09-18"), ("mon", "9"), ("mon", "25-26"), ("mon", "09-18:61")]
)
def test_unreadable_shifts_are_refused(days: str, hours: str) -> None:
    with pytest.raises(oncall.ShiftError):
        oncall.parse_shift(days, hours)


async def test_the_full_report_is_tied_to_the_urgent_answers_it_started_from(db: Db) -> None:
    await _people(db)
    filed = await _file(db)
    async with db.sessions() as session, session.begin():
        session.add(
            Case(
                code="FULL-RPRT",
                status=CaseStatus.NEW,
                region="crimea",
                reporter_id=FAMILY,
                created_at=MONDAY_10,
                updated_at=MONDAY_10,
            )
        )
        await session.flush()
        await urgent.mark_draft_used(
            session, filed.case_id, "FULL-RPRT", user_id=STAFF_A, now=MONDAY_10
        )  # not the reporter: ignored
        assert await urgent.urgent_draft_for(session, db.cipher, FAMILY) is not None
        await urgent.mark_draft_used(
            session, filed.case_id, "FULL-RPRT", user_id=FAMILY, now=MONDAY_10
        )
    async with db.sessions() as session:
        assert await urgent.urgent_draft_for(session, db.cipher, FAMILY) is None
        full = await session.scalar(select(Case).where(Case.code == "FULL-RPRT"))
        row = await session.get(UrgentCase, filed.case_id)
    assert full is not None and full.duplicate_of == filed.code  # staff see they belong together
    assert row is not None and row.report_code == "FULL-RPRT"
