"""Signs of life and the silence alarm on a fixed clock, on SQLite and PostgreSQL: a held person
not heard of for N days is flagged to staff (and the monitors of a public case) once per period,
and a new sign of life starts the count again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import record, subscriptions
from storage.enums import Custody, MonitorStatus, Role, SignOfLife, Visibility
from storage.models import Case, OutboxMessage, User
from storage.record import Tell
from storage.signs_of_life import NotYourCase, last_sign, log_sign, queue_silence_alarms
from tests.support.case_factory import ensure_user, make_case
from tests.support.databases import Db

CREATED = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
STAFF = 500
FAMILY = 100
STRANGER = 101
MONITOR = 700
DAYS = 30


async def _setup(db: Db, custody: Custody | None = Custody.PRE_TRIAL) -> str:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, STAFF)
        await ensure_user(session, STRANGER)
        session.add(User(id=MONITOR, monitor_status=MonitorStatus.APPROVED, role=Role.MONITOR))
        code = await make_case(
            session, db.cipher, reporter_id=FAMILY, visibility=Visibility.PUBLIC,
            created_at=CREATED,
        )  # fmt: skip
        await subscriptions.follow_case(session, MONITOR, code)
        if custody is not None:
            await record.edit_record(
                session, db.cipher, code, "custody", custody.value, tell=Tell.NOBODY,
                actor_id=STAFF, now=CREATED,
            )  # fmt: skip
        return code


async def _run(db: Db, day: int) -> int:
    async with db.sessions() as session, session.begin():
        return await queue_silence_alarms(
            session, db.cipher, now=CREATED + timedelta(days=day), days=DAYS, staff_chats=[STAFF]
        )


async def test_silence_is_flagged_once_per_period_and_a_sign_restarts_the_count(db: Db) -> None:
    code = await _setup(db)
    assert await _run(db, DAYS - 1) == 0
    assert await _run(db, DAYS) == 2  # staff and the monitor of the public case
    assert await _run(db, DAYS) == 0
    assert await _run(db, 2 * DAYS - 1) == 0  # once per period
    assert await _run(db, 2 * DAYS) == 2  # the next period
    async with db.sessions() as session, session.begin():
        await log_sign(
            session, code, SignOfLife.LETTER, date(2027, 3, 5), user_id=FAMILY, staff=False,
            now=CREATED + timedelta(days=63),
        )  # fmt: skip
    assert await _run(db, 63) == 0
    assert await _run(db, 63 + DAYS - 1) == 0
    assert await _run(db, 63 + DAYS) == 2  # silent again for a period after the letter
    async with db.sessions() as session:
        templates = list(await session.scalars(select(OutboxMessage.template)))
    assert sorted(set(templates)) == ["record.silence_monitor", "record.silence_staff"]


async def test_free_people_are_not_watched_and_strangers_cannot_log(db: Db) -> None:
    code = await _setup(db, Custody.RELEASED)
    assert await _run(db, 3 * DAYS) == 0
    with pytest.raises(NotYourCase):
        async with db.sessions() as session, session.begin():
            await log_sign(
                session, code, SignOfLife.CALL, CREATED.date(), user_id=STRANGER, staff=False,
                now=CREATED,
            )  # fmt: skip
    async with db.sessions() as session, session.begin():
        await log_sign(
            session, code, SignOfLife.VISIT, CREATED.date(), user_id=STAFF, staff=True, now=CREATED
        )
    async with db.sessions() as session:
        assert await session.scalar(select(OutboxMessage.id).limit(1)) is None  # no alarm
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        last = await last_sign(session, case.id)
    assert last is not None and last.kind == SignOfLife.VISIT
