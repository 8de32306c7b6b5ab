"""Subscriptions on SQLite and PostgreSQL: who gets a monitor alert, once per event, and what a
narrowed consent does to the alerts still waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage import cases, subscriptions
from storage.enums import (
    AlertFilter,
    CaseStatus,
    EventKind,
    MonitorStatus,
    OutboxStatus,
    Region,
    Role,
    Visibility,
)
from storage.models import AuditEntry, CaseEvent, OutboxMessage, User
from storage.outbox import open_params
from tests.support.case_factory import ensure_user, make_case
from tests.support.databases import Db
from tests.support.sealed import every_key

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
STAFF, FAMILY = 500, 100
MONITOR, PENDING, BLOCKED, ADMIN_LIKE = 700, 701, 702, 703


async def seed(db: Db, visibility: Visibility = Visibility.PUBLIC, **options: object) -> str:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, STAFF)
        for user_id, status, blocked in (
            (MONITOR, MonitorStatus.APPROVED, False),
            (PENDING, MonitorStatus.PENDING, False),
            (BLOCKED, MonitorStatus.APPROVED, True),
        ):
            if await session.get(User, user_id) is None:
                role = Role.MONITOR if status == MonitorStatus.APPROVED else Role.FAMILY
                session.add(User(id=user_id, role=role, monitor_status=status, blocked=blocked))
        await session.flush()
        return await make_case(
            session,
            db.cipher,
            reporter_id=FAMILY,
            status=CaseStatus.UNDER_REVIEW,
            visibility=visibility,
            **options,  # type: ignore[arg-type]
        )


async def monitor_rows(db: Db, chat_id: int = MONITOR) -> list[OutboxMessage]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == chat_id).order_by(OutboxMessage.id)
        )
        return list(rows)


async def change(db: Db, code: str, status: CaseStatus, note: str | None = None) -> int:
    async with db.sessions() as session, session.begin():
        done = await cases.change_status(
            session, db.cipher, code, status, actor_id=STAFF, now=NOW, public_note=note
        )
    return done.event_id


async def test_case_and_region_follower_gets_one_alert_per_event(db: Db) -> None:
    code = await seed(db)
    async with db.sessions() as session, session.begin():
        for user_id in (MONITOR, PENDING, BLOCKED):
            await subscriptions.follow_case(session, user_id, code)
            await subscriptions.follow_region(session, user_id, Region.CRIMEA)
        assert await subscriptions.follow_all(session, MONITOR)
    event_id = await change(db, code, CaseStatus.VERIFIED, note="Seen by a lawyer.")
    (row,) = await monitor_rows(db)
    assert row.dedupe_key == f"event:{event_id}:{MONITOR}"
    assert row.template == subscriptions.T_MONITOR_ALERT
    params = open_params(await every_key(db.sessions, db.cipher), row.payload)
    assert params == {
        "code": code,
        "region": "crimea",
        "kind": EventKind.STATUS_CHANGED,
        "status": "verified",
        "date": "2026-06-01",
        "name": "Ivan Petrenko",
        "note": "Seen by a lawyer.",
    }
    assert await monitor_rows(db, PENDING) == [] and await monitor_rows(db, BLOCKED) == []


async def test_verdicts_filter_hears_only_sentenced_released_returned_deceased(db: Db) -> None:
    code = await seed(db)
    async with db.sessions() as session, session.begin():
        await subscriptions.follow_case(session, MONITOR, code, AlertFilter.VERDICTS_AND_RETURNS)
    await change(db, code, CaseStatus.VERIFIED)
    await change(db, code, CaseStatus.CHARGED)
    async with db.sessions() as session, session.begin():
        await cases.send_note(
            session, db.cipher, code, "hearing", monitors=True, actor_id=STAFF, now=NOW
        )
    assert await monitor_rows(db) == []
    await change(db, code, CaseStatus.SENTENCED)
    await change(db, code, CaseStatus.RELEASED)
    await change(db, code, CaseStatus.RETURNED)
    statuses = [
        open_params(await every_key(db.sessions, db.cipher), r.payload)["status"]
        for r in await monitor_rows(db)
    ]
    assert statuses == ["sentenced", "released", "returned"]


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        (Visibility.PUBLIC, {"name": "Ivan Petrenko", "note": "n"}),
        (Visibility.ANONYMOUS, {"name": None, "note": None}),
        (Visibility.STAFF_ONLY, None),
    ],
)
async def test_each_visibility_level(
    db: Db, visibility: Visibility, expected: dict[str, object] | None
) -> None:
    code = await seed(db, visibility)
    async with db.sessions() as session, session.begin():
        await subscriptions.follow_all(session, MONITOR)
    await change(db, code, CaseStatus.VERIFIED, note="n")
    rows = await monitor_rows(db)
    if expected is None:
        assert rows == []
        return
    (row,) = rows
    params = open_params(await every_key(db.sessions, db.cipher), row.payload)
    assert {key: params[key] for key in expected} == expected
    assert (params["code"], params["region"], params["status"]) == (code, "crimea", "verified")


async def test_staff_only_case_cannot_be_followed_by_code(db: Db) -> None:
    hidden = await seed(db, Visibility.STAFF_ONLY)
    async with db.sessions() as session, session.begin():
        for code in (hidden, "ZZZZ-ZZZZ", None):
            with pytest.raises(subscriptions.NotFollowable):
                await subscriptions.follow_case(session, MONITOR, code)


async def test_follow_list_change_filter_unfollow(db: Db) -> None:
    code = await seed(db)
    async with db.sessions() as session, session.begin():
        assert await subscriptions.follow_case(session, MONITOR, code)
        assert not await subscriptions.follow_case(
            session, MONITOR, code, AlertFilter.VERDICTS_AND_RETURNS
        )
        await subscriptions.follow_region(session, MONITOR, Region.KHERSON)
    async with db.sessions() as session, session.begin():
        views = await subscriptions.subscriptions_of(session, MONITOR)
        assert [(v.target, v.code, v.region, v.alert_filter) for v in views] == [
            (f"case:{code}", code, None, "verdicts"),
            ("region:kherson", None, "kherson", "all"),
        ]
        assert await subscriptions.unfollow(session, MONITOR, f"case:{code}")
        assert not await subscriptions.unfollow(session, MONITOR, f"case:{code}")
    async with db.sessions() as session:
        assert len(await subscriptions.subscriptions_of(session, MONITOR)) == 1


async def test_narrowed_consent_rewrites_and_cancels_pending_alerts(db: Db) -> None:
    code = await seed(db)
    async with db.sessions() as session, session.begin():
        await subscriptions.follow_all(session, MONITOR)
    await change(db, code, CaseStatus.VERIFIED, note="Named in court.")
    async with db.sessions() as session, session.begin():
        await cases.send_note(
            session, db.cipher, code, "Ivan's hearing", monitors=True, actor_id=STAFF, now=NOW
        )
    family_before = [
        open_params(await every_key(db.sessions, db.cipher), r.payload)
        for r in await monitor_rows(db, FAMILY)
    ]

    async with db.sessions() as session, session.begin():
        done = await cases.change_visibility(
            session, db.cipher, code, Visibility.ANONYMOUS, actor_id=STAFF, now=NOW
        )
    assert (done.rewritten, done.cancelled) == (1, 1)
    status_row, note_row = await monitor_rows(db)
    params = open_params(await every_key(db.sessions, db.cipher), status_row.payload)
    assert params["name"] is None and params["note"] is None and params["code"] == code
    assert status_row.status == OutboxStatus.PENDING
    assert note_row.status == OutboxStatus.CANCELLED
    # the family's own messages are theirs to read: untouched
    assert [
        open_params(await every_key(db.sessions, db.cipher), r.payload)
        for r in await monitor_rows(db, FAMILY)
    ] == (family_before)
    await change(db, code, CaseStatus.CHARGED)
    assert (
        open_params(await every_key(db.sessions, db.cipher), (await monitor_rows(db))[-1].payload)[
            "name"
        ]
        is None
    )

    async with db.sessions() as session, session.begin():
        done = await cases.change_visibility(
            session, db.cipher, code, Visibility.STAFF_ONLY, actor_id=STAFF, now=NOW
        )
    assert done.cancelled == 2
    assert {r.status for r in await monitor_rows(db)} == {OutboxStatus.CANCELLED}
    async with db.sessions() as session:
        kinds = list(await session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
        audits = list(await session.scalars(select(AuditEntry.action)))
    assert kinds.count(EventKind.VISIBILITY_CHANGED) == 2
    assert audits.count("case.visibility") == 2
    async with db.sessions() as session, session.begin():
        with pytest.raises(LookupError):
            await cases.change_visibility(
                session, db.cipher, "ZZZZ-ZZZZ", Visibility.PUBLIC, actor_id=STAFF, now=NOW
            )
