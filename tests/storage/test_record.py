"""The prisoner's record: each edit is one transaction (value, event, audit, the messages staff
chose), a group's hearing reaches every co-defendant's case at once, and a hearing is reminded
the day before, once, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storage import record, subscriptions
from storage.enums import AlertFilter, Custody, EventKind, MonitorStatus, Role, Visibility
from storage.hearings import queue_hearing_reminders
from storage.models import AuditEntry, CaseEvent, CaseRecord, OutboxMessage, User
from storage.outbox import open_params
from storage.record import Tell
from storage.record_values import Article, parse_articles, parse_hearing, parse_sentence_months
from tests.support.case_factory import ensure_user, make_case
from tests.support.databases import Db
from tests.support.sealed import every_key

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
STAFF = 500
FAMILY = 100
MONITOR = 700
MONITOR_VERDICTS_ONLY = 701


async def _case(db: Db, visibility: Visibility = Visibility.PUBLIC, reporter: int = FAMILY) -> str:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, STAFF)
        return await make_case(session, db.cipher, reporter_id=reporter, visibility=visibility)


async def _monitors(db: Db, code: str) -> None:
    async with db.sessions() as session, session.begin():
        for user_id in (MONITOR, MONITOR_VERDICTS_ONLY):
            session.add(User(id=user_id, monitor_status=MonitorStatus.APPROVED, role=Role.MONITOR))
        await session.flush()
        await subscriptions.follow_case(session, MONITOR, code)
        await subscriptions.follow_case(
            session, MONITOR_VERDICTS_ONLY, code, AlertFilter.VERDICTS_AND_RETURNS
        )


async def _edit(db: Db, code: str, key: str, value: object, tell: Tell) -> record.RecordEdit:
    async with db.sessions() as session, session.begin():
        return await record.edit_record(
            session, db.cipher, code, key, value, tell=tell, actor_id=STAFF, now=NOW
        )


async def _rows(db: Db) -> list[tuple[int, str, dict[str, object]]]:
    opener = await every_key(db.sessions, db.cipher)
    async with db.sessions() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(r.chat_id, r.template, open_params(opener, r.payload)) for r in rows]


def test_articles_hearing_and_term_are_read_the_ways_staff_write_them() -> None:
    assert parse_articles("ст. 205.5 ч.2, 275.1; 205.5 ч. 2") == [
        Article("205.5", 2),
        Article("275.1", None),
    ]
    assert parse_articles("205.5 part 1 and 278") == [Article("205.5", 1), Article("278")]
    hearing = parse_hearing("12.01.2027 10:30", today=date(2027, 1, 10))
    assert hearing == datetime(2027, 1, 12, 7, 30, tzinfo=UTC)  # Moscow time is UTC+3
    assert parse_sentence_months("12 6") == 150
    assert parse_sentence_months("12,5") == 150
    assert parse_sentence_months("17 років") == 204
    for bad in ("", "no numbers here"):
        with pytest.raises(ValueError):
            parse_articles(bad)
    with pytest.raises(ValueError):
        parse_hearing("01.01.2027", today=date(2027, 1, 10))  # passed
    with pytest.raises(ValueError):
        parse_sentence_months("45")


@pytest.mark.parametrize(
    ("tell", "family", "monitors"),
    [(Tell.NOBODY, 0, 0), (Tell.FAMILY, 1, 0), (Tell.FAMILY_AND_MONITORS, 1, 1)],
)
async def test_an_edit_tells_exactly_whom_staff_chose(
    db: Db, tell: Tell, family: int, monitors: int
) -> None:
    code = await _case(db)
    await _monitors(db, code)
    edit = await _edit(db, code, "court", "Kyivskyi District Court of Simferopol", tell)
    assert (edit.changed, edit.family, edit.monitors) == (True, family, monitors)
    rows = await _rows(db)
    assert sorted(chat for chat, _, _ in rows) == sorted(
        [FAMILY] * family + [MONITOR] * monitors
    )  # never the monitor who asked for verdicts only
    assert all(params["value"] == "Kyivskyi District Court of Simferopol" for _, _, params in rows)
    async with db.sessions() as session:
        stored = await session.scalar(select(CaseRecord.court))
        assert stored is not None and b"Kyivskyi" not in stored  # sealed with the case key
        events = list(
            await session.scalars(
                select(CaseEvent).where(CaseEvent.kind == EventKind.RECORD_CHANGED)
            )
        )
        audits = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.record"))
        )
    assert len(events) == 1 and len(audits) == 1
    assert "Kyivskyi" not in (audits[0].detail or "")  # the audit names the field, not the value


async def test_health_never_reaches_monitors_and_private_cases_tell_no_monitor(db: Db) -> None:
    public = await _case(db)
    await _monitors(db, public)
    edit = await _edit(db, public, "health_flags", ["urgent_care"], Tell.FAMILY_AND_MONITORS)
    assert (edit.family, edit.monitors) == (1, 0)
    hidden = await _case(db, Visibility.ANONYMOUS, reporter=FAMILY + 1)
    async with db.sessions() as session, session.begin():
        await subscriptions.follow_all(session, MONITOR)
    edit = await _edit(db, hidden, "court", "Court", Tell.FAMILY_AND_MONITORS)
    assert (edit.family, edit.monitors) == (1, 0)


async def test_same_value_changes_nothing_and_a_new_place_keeps_the_old_in_the_history(
    db: Db,
) -> None:
    code = await _case(db)
    await _edit(db, code, "detention_place", "SIZO-1 Simferopol", Tell.NOBODY)
    again = await _edit(db, code, "detention_place", "SIZO-1 Simferopol", Tell.FAMILY)
    assert not again.changed and again.family == 0
    await _edit(db, code, "detention_place", "Colony No. 2, Rostov", Tell.NOBODY)
    await _edit(db, code, "custody", Custody.COLONY.value, Tell.NOBODY)
    await _edit(db, code, "articles", [Article("205.5", 2).as_json()], Tell.NOBODY)
    await _edit(db, code, "pretrial_until", "2027-03-01", Tell.NOBODY)
    async with db.sessions() as session:
        case = await record._case(session, code)
        view = await record.read_record(session, db.cipher, case)
    assert view.values["detention_place"] == "Colony No. 2, Rostov"
    assert view.values["custody"] == "colony"
    assert view.values["articles"] == [{"number": "205.5", "part": 2}]
    assert view.values["pretrial_until"] == "2027-03-01"
    assert view.transfers == [{"place": "SIZO-1 Simferopol", "until": "2027-01-10"}]


async def test_a_group_hearing_writes_one_event_per_case_in_one_transaction(db: Db) -> None:
    codes = [await _case(db, reporter=FAMILY + i) for i in range(3)]
    outsider = await _case(db, reporter=FAMILY + 9)
    async with db.sessions() as session, session.begin():
        group = await record.create_group(
            session, db.cipher, "Second Bakhchysarai group", actor_id=STAFF, now=NOW
        )
        for code in codes:
            await record.set_case_group(session, code, group, actor_id=STAFF, now=NOW)
    hearing = datetime(2027, 1, 12, 7, 0, tzinfo=UTC).isoformat()
    async with db.sessions() as session, session.begin():
        await subscriptions.follow_group(session, await ensure_user(session, MONITOR), group)
        monitor = await session.get(User, MONITOR)
        assert monitor is not None
        monitor.monitor_status, monitor.role = MonitorStatus.APPROVED, Role.MONITOR

    # A crash before the commit leaves no event at all: all cases or none.
    async def crash_after_the_writes() -> None:
        async with db.sessions() as session, session.begin():
            await record.edit_group(
                session, db.cipher, group, "next_hearing", hearing,
                tell=Tell.FAMILY_AND_MONITORS, actor_id=STAFF, now=NOW,
            )  # fmt: skip
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash_after_the_writes()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.kind == EventKind.RECORD_CHANGED)) == 0  # fmt: skip
    async with db.sessions() as session, session.begin():
        edits = await record.edit_group(
            session, db.cipher, group, "next_hearing", hearing,
            tell=Tell.FAMILY_AND_MONITORS, actor_id=STAFF, now=NOW,
        )  # fmt: skip
    assert sorted(edit.code for edit in edits) == sorted(codes)
    rows = await _rows(db)
    families = sorted(chat for chat, template, _ in rows if template == record.T_RECORD_FAMILY)
    assert families == [FAMILY, FAMILY + 1, FAMILY + 2]
    monitor_codes = sorted(
        str(params["code"]) for chat, _, params in rows if chat == MONITOR
    )  # the group's follower hears of each case in the group, not of the outsider
    assert monitor_codes == sorted(codes) and outsider not in monitor_codes


async def test_hearing_reminder_the_day_before_once_across_runs(db: Db) -> None:
    code = await _case(db)
    await _monitors(db, code)
    hearing = datetime(2027, 1, 12, 7, 30, tzinfo=UTC)  # 10:30 Moscow time on the 12th
    await _edit(db, code, "next_hearing", hearing.isoformat(), Tell.NOBODY)

    async def run(at: datetime) -> int:
        async with db.sessions() as session, session.begin():
            return await queue_hearing_reminders(session, db.cipher, now=at)

    assert await run(datetime(2027, 1, 11, 6, 59, tzinfo=UTC)) == 0  # 09:59 the day before
    assert await run(datetime(2027, 1, 11, 7, 0, tzinfo=UTC)) == 2  # family + monitor
    assert await run(datetime(2027, 1, 11, 7, 10, tzinfo=UTC)) == 0  # once
    assert await run(datetime(2027, 1, 12, 7, 0, tzinfo=UTC)) == 0  # once, the next morning too
    assert await run(hearing + timedelta(minutes=1)) == 0  # after it started: nothing
    rows = [(chat, template) for chat, template, _ in await _rows(db)]
    assert sorted(rows) == sorted(
        [(FAMILY, "record.hearing_reminder"), (MONITOR, "record.hearing_reminder_monitor")]
    )
    # Moved to another day: reminded again for the new date.
    await _edit(db, code, "next_hearing", (hearing + timedelta(days=7)).isoformat(), Tell.NOBODY)
    assert await run(datetime(2027, 1, 18, 8, 0, tzinfo=UTC)) == 2
