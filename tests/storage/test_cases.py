"""Staff operations on cases: each writes the case, an event, the outbox rows and an audit row
together, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import case_reminders, case_views, cases, recipients, statuses, threads
from storage.enums import (
    AlertFilter,
    AuditOutcome,
    CaseStatus,
    EventKind,
    MonitorStatus,
    Role,
    SubscriptionScope,
    Visibility,
)
from storage.lifecycle import TransitionRefused
from storage.models import (
    AuditEntry,
    Case,
    CaseContact,
    CaseEvent,
    OutboxMessage,
    Subscription,
    User,
)
from storage.outbox import open_params
from storage.subscriptions import T_MONITOR_ALERT
from tests.support.case_factory import ensure_user, make_case
from tests.support.databases import Db
from tests.support.sealed import every_key

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAFF = 500
FAMILY = 100
RELATIVE = 101


async def new_case(db: Db, status: CaseStatus = CaseStatus.NEW, **options: object) -> str:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, STAFF)
        return await make_case(
            session,
            db.cipher,
            reporter_id=FAMILY,
            status=status,
            **options,  # type: ignore[arg-type]
        )


async def outbox_rows(db: Db) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_status_change_writes_case_event_outbox_and_audit_together(db: Db) -> None:
    code = await new_case(db, contacts=[RELATIVE])
    async with db.sessions() as session, session.begin():
        change = await cases.change_status(
            session,
            db.cipher,
            code,
            CaseStatus.UNDER_REVIEW,
            actor_id=STAFF,
            now=NOW,
            public_note="We are looking into it.",
        )
    assert (change.old_status, change.new_status, change.queued) == ("new", "under_review", 2)
    rows = await outbox_rows(db)
    assert [row.chat_id for row in rows] == [FAMILY, RELATIVE]
    assert {row.dedupe_key for row in rows} == {
        f"event:{change.event_id}:{FAMILY}",
        f"event:{change.event_id}:{RELATIVE}",
    }
    params = open_params(await every_key(db.sessions, db.cipher), rows[0].payload)
    assert params == {
        "code": code,
        "old": "new",
        "new": "under_review",
        "note": "We are looking into it.",
        "name": "Ivan Petrenko",
    }
    assert rows[0].template == statuses.T_STATUS_CHANGED
    async with db.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None and case.status == CaseStatus.UNDER_REVIEW
        event = await session.get(CaseEvent, change.event_id)
        assert event is not None and event.public and event.kind == EventKind.STATUS_CHANGED
        assert (await every_key(db.sessions, db.cipher)).open(
            event.body
        ) == "We are looking into it."
        entries = list(await session.scalars(select(AuditEntry)))
    assert [(e.actor_id, e.action, e.case_code, e.outcome) for e in entries] == [
        (STAFF, "case.status", code, AuditOutcome.OK)
    ]
    assert "looking" not in (entries[0].detail or "")


@pytest.mark.parametrize(
    ("start", "target"),
    [(CaseStatus.RETURNED, CaseStatus.CHARGED), (CaseStatus.CLOSED, CaseStatus.VERIFIED)],
)
async def test_transition_outside_the_graph_changes_nothing(
    db: Db, start: CaseStatus, target: CaseStatus
) -> None:
    code = await new_case(db, status=start)
    with pytest.raises(TransitionRefused):
        async with db.sessions() as session, session.begin():
            await cases.change_status(session, db.cipher, code, target, actor_id=STAFF, now=NOW)
    assert await outbox_rows(db) == []
    async with db.sessions() as session:
        case = await session.scalar(select(Case).where(Case.code == code))
        assert case is not None and case.status == start
        assert list(await session.scalars(select(AuditEntry))) == []


async def test_returned_reaches_family_and_every_staff_member(db: Db) -> None:
    code = await new_case(db, status=CaseStatus.VERIFIED)
    async with db.sessions() as session, session.begin():
        await ensure_user(session, 501)
        await ensure_user(session, 502)
        session.add(User(id=600, role=Role.STAFF))
        (await session.get(User, 501)).role = Role.STAFF  # type: ignore[union-attr]
        change = await cases.change_status(
            session,
            db.cipher,
            code,
            CaseStatus.RETURNED,
            actor_id=STAFF,
            now=NOW,
            staff=recipients.StaffContacts(frozenset({9001}), -100123),
        )
    rows = await outbox_rows(db)
    assert [(r.chat_id, r.template) for r in rows] == [
        (FAMILY, statuses.T_RETURNED),
        (501, statuses.T_RETURNED_STAFF),
        (600, statuses.T_RETURNED_STAFF),
        (9001, statuses.T_RETURNED_STAFF),
        (-100123, statuses.T_RETURNED_STAFF),
    ]
    assert "name" not in open_params(await every_key(db.sessions, db.cipher), rows[1].payload)
    assert change.new_status == CaseStatus.RETURNED


async def test_same_event_cannot_be_queued_twice(db: Db) -> None:
    code = await new_case(db)
    async with db.sessions() as session, session.begin():
        change = await cases.send_note(
            session, db.cipher, code, "note", monitors=True, actor_id=STAFF, now=NOW
        )
    async with db.sessions() as session, session.begin():
        case = await session.scalar(select(Case).where(Case.code == code))
        event = await session.get(CaseEvent, change.event_id)
        assert case is not None and event is not None
        again = await recipients.notify(
            session, db.cipher, case, event, cases.T_NOTE, {"code": code}, now=NOW
        )
    assert again == 0
    assert len(await outbox_rows(db)) == 1


async def test_monitors_hear_public_things_of_cases_they_may_see(db: Db) -> None:
    anonymous = await new_case(db, visibility=Visibility.ANONYMOUS)
    private = await new_case(db, visibility=Visibility.STAFF_ONLY)
    async with db.sessions() as session, session.begin():
        session.add_all(
            [
                User(id=700, monitor_status=MonitorStatus.APPROVED, role=Role.MONITOR),
                User(
                    id=701, monitor_status=MonitorStatus.APPROVED, role=Role.MONITOR, blocked=True
                ),
                User(id=702, monitor_status=MonitorStatus.PENDING),
                User(id=703, monitor_status=MonitorStatus.APPROVED, role=Role.MONITOR),
            ]
        )
        await session.flush()
        for user_id in (700, 701, 702):
            session.add(Subscription(user_id=user_id, scope=SubscriptionScope.ALL, target="all"))
        session.add(
            Subscription(
                user_id=703,
                scope=SubscriptionScope.REGION,
                target="region:crimea",
                region="crimea",
                alert_filter=AlertFilter.VERDICTS_AND_RETURNS,
            )
        )
    async with db.sessions() as session, session.begin():
        for code in (anonymous, private):
            await cases.change_status(
                session, db.cipher, code, CaseStatus.UNDER_REVIEW, actor_id=STAFF, now=NOW
            )
            await cases.add_internal_note(
                session, db.cipher, code, "secret", actor_id=STAFF, now=NOW
            )
        await cases.change_status(
            session, db.cipher, anonymous, CaseStatus.RELEASED, actor_id=STAFF, now=NOW
        )
    rows = [(r.chat_id, r.template) for r in await outbox_rows(db) if r.chat_id != FAMILY]
    alert = T_MONITOR_ALERT
    assert rows == [(700, alert), (700, alert), (703, alert)]
    monitor_row = next(r for r in await outbox_rows(db) if r.chat_id == 700)
    assert open_params(await every_key(db.sessions, db.cipher), monitor_row.payload)["name"] is None


async def test_question_to_family_and_their_answer(db: Db) -> None:
    code = await new_case(db, status=CaseStatus.UNDER_REVIEW)
    async with db.sessions() as session, session.begin():
        await ensure_user(session, 999)
        asked = await cases.request_info(
            session, db.cipher, code, "Which court?", actor_id=STAFF, now=NOW
        )
    assert asked.new_status == CaseStatus.NEED_INFO
    (row,) = await outbox_rows(db)
    assert (row.chat_id, row.template) == (FAMILY, cases.T_INFO)
    assert (
        open_params(await every_key(db.sessions, db.cipher), row.payload)["question"]
        == "Which court?"
    )
    async with db.sessions() as session, session.begin():
        stranger = await threads.record_family_message(
            session, db.cipher, 999, threads.Incoming("text", "x"), code=None, now=NOW,
            staff=recipients.StaffContacts(frozenset(), -100123),
        )  # fmt: skip
        reply = await threads.record_family_message(
            session,
            db.cipher,
            FAMILY,
            threads.Incoming("text", "The district court"),
            code=code,
            now=NOW,
            staff=recipients.StaffContacts(frozenset(), -100123),
        )
    assert not stranger.answered_question and stranger.code is None
    assert reply.answered_question and reply.code == code
    async with db.sessions() as session:
        view = await case_views.case_for_staff(session, db.cipher, code)
        messages = await threads.family_messages_of(session, db.cipher, FAMILY)
    assert view is not None and view.status == CaseStatus.UNDER_REVIEW
    assert view.events[-1].kind == EventKind.INFO_RECEIVED
    assert view.events[-1].body is None  # the words live, sealed, in the family's thread only
    assert [m.text for m in messages] == ["The district court"]
    assert [(r.chat_id, r.template) for r in await outbox_rows(db)][-1] == (
        -100123,
        threads.T_FAMILY_MESSAGE_STAFF,
    )


async def test_merge_leaves_the_family_waiting_for_approval_and_tells_nobody(db: Db) -> None:
    survivor = await new_case(db, status=CaseStatus.VERIFIED)
    async with db.sessions() as session, session.begin():
        duplicate = await make_case(session, db.cipher, reporter_id=RELATIVE)
    async with db.sessions() as session, session.begin():
        with pytest.raises(cases.CaseRefused):
            await cases.merge_cases(
                session, db.cipher, duplicate, duplicate, actor_id=STAFF, now=NOW
            )
        await cases.merge_cases(session, db.cipher, duplicate, survivor, actor_id=STAFF, now=NOW)
    async with db.sessions() as session:
        view = await case_views.case_for_staff(session, db.cipher, duplicate)
        target = await case_views.case_for_staff(session, db.cipher, survivor)
    assert view is not None and target is not None
    assert (view.status, view.closed_reason, view.merged_into) == ("closed", "duplicate", survivor)
    assert {c.user_id for c in target.contacts if c.approved} == {FAMILY}
    assert [(c.user_id, c.approved, c.via) for c in target.contacts if not c.is_reporter] == [
        (RELATIVE, False, duplicate)
    ]
    assert await outbox_rows(db) == []  # the merged family learns nothing of the kept case
    async with db.sessions() as session, session.begin():
        await cases.link_contact(
            session, db.cipher, survivor, RELATIVE, actor_id=STAFF, now=NOW, verified_by="call"
        )
    (row,) = await outbox_rows(db)
    assert (row.chat_id, row.template) == (RELATIVE, cases.T_LINKED)


async def test_close_reopen_and_link_contact(db: Db) -> None:
    code = await new_case(db)
    async with db.sessions() as session, session.begin():
        with pytest.raises(cases.CaseRefused):
            await cases.close_case(session, db.cipher, code, "bored", actor_id=STAFF, now=NOW)
        await cases.close_case(session, db.cipher, code, "withdrawn", actor_id=STAFF, now=NOW)
        await cases.change_status(  # reopening: the only way back from closed
            session, db.cipher, code, CaseStatus.UNDER_REVIEW, actor_id=STAFF, now=NOW
        )
        await ensure_user(session, 300)
        session.add(
            CaseContact(
                case_id=(await session.scalar(select(Case.id).where(Case.code == code))) or 0,
                user_id=300,
            )
        )
        await session.flush()
        await cases.send_note(
            session, db.cipher, code, "before", monitors=True, actor_id=STAFF, now=NOW
        )
        await cases.link_contact(
            session, db.cipher, code, 300, actor_id=STAFF, now=NOW, verified_by="known"
        )
        await cases.send_note(
            session, db.cipher, code, "after", monitors=True, actor_id=STAFF, now=NOW
        )
    rows = [(r.chat_id, r.template) for r in await outbox_rows(db)]
    assert rows == [
        (FAMILY, statuses.T_STATUS_CHANGED),
        (FAMILY, statuses.T_STATUS_CHANGED),
        (FAMILY, cases.T_NOTE),
        (300, cases.T_LINKED),
        (FAMILY, cases.T_NOTE),
        (300, cases.T_NOTE),
    ]
    async with db.sessions() as session:
        view = await case_views.case_for_staff(session, db.cipher, code)
    assert view is not None and view.status == "under_review" and view.closed_reason is None
    assert view.personal["detainee_name"] == "Ivan Petrenko"


async def test_blocked_family_member_is_not_queued(db: Db) -> None:
    code = await new_case(db, contacts=[RELATIVE])
    async with db.sessions() as session, session.begin():
        (await session.get(User, RELATIVE)).blocked = True  # type: ignore[union-attr]
        await cases.send_note(session, db.cipher, code, "n", monitors=True, actor_id=STAFF, now=NOW)
    assert [r.chat_id for r in await outbox_rows(db)] == [FAMILY]


async def test_inbox_lists_new_and_need_info_oldest_first_in_pages(db: Db) -> None:
    codes = []
    for index, status in enumerate(
        [CaseStatus.NEW, CaseStatus.VERIFIED, CaseStatus.NEED_INFO, CaseStatus.NEW]
    ):
        codes.append(await new_case(db, status=status, created_at=NOW - timedelta(days=10 - index)))
    async with db.sessions() as session:
        first = await case_views.inbox(session, page_size=2)
        assert first.last is not None
        second = await case_views.inbox(session, after=first.last, page=1, page_size=2)
        assert second.first is not None
        back = await case_views.inbox(session, before=second.first, page=0, page_size=2)
    assert (first.total, first.pages, first.has_previous, first.has_next) == (3, 2, False, True)
    assert [item.code for item in first.items] == [codes[0], codes[2]]
    assert [item.code for item in second.items] == [codes[3]]
    assert (second.page, second.has_previous, second.has_next) == (1, True, False)
    assert back == first


async def test_inbox_pages_are_ranges_of_their_index_without_a_sort(db: Db) -> None:
    """The plan of a page after a key: the inbox index, read in order, on either engine."""
    for index in range(3):
        await new_case(db, created_at=NOW + timedelta(minutes=index))
    async with db.sessions() as session:
        page = await case_views.inbox(session, page_size=1)
        assert page.last is not None
    async with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET enable_seqscan = off")  # a tiny table
            query = (
                "EXPLAIN SELECT id FROM cases WHERE status = 'new' AND (created_at, id) > "
                "('2026-01-01', 1) ORDER BY created_at, id LIMIT 9"
            )
        else:
            query = (
                "EXPLAIN QUERY PLAN SELECT id FROM cases WHERE status = 'new' AND "
                "(created_at, id) > ('2026-01-01', 1) ORDER BY created_at, id LIMIT 9"
            )
        plan = " ".join(str(row[-1]) for row in await connection.exec_driver_sql(query))
    assert "ix_cases_inbox" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


async def test_unknown_code_is_not_found(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        assert await case_views.case_for_staff(session, db.cipher, "AAAA-AAAA") is None
        with pytest.raises(case_views.CaseNotFound):
            await cases.send_note(
                session, db.cipher, "AAAA-AAAA", "x", monitors=True, actor_id=1, now=NOW
            )


async def test_reminders_are_queued_once(db: Db) -> None:
    asked = await new_case(db, status=CaseStatus.UNDER_REVIEW)
    await new_case(db, status=CaseStatus.VERIFIED, created_at=NOW - timedelta(days=40))
    await new_case(db, status=CaseStatus.RETURNED, created_at=NOW - timedelta(days=40))
    async with db.sessions() as session, session.begin():
        await cases.request_info(session, db.cipher, asked, "Which court?", actor_id=STAFF, now=NOW)
    staff = recipients.StaffContacts(frozenset({9001}), None)
    for day in (1, 4, 5):
        async with db.sessions() as session, session.begin():
            when = NOW + timedelta(days=day)
            await case_reminders.queue_need_info_reminders(session, db.cipher, now=when, days=3)
            await case_reminders.queue_stale_case_list(
                session, db.cipher, now=when, days=30, staff=staff
            )
    rows = [(r.chat_id, r.template) for r in await outbox_rows(db)]
    assert rows == [
        (FAMILY, cases.T_INFO),
        (9001, case_reminders.T_STALE_STAFF),
        (FAMILY, case_reminders.T_NEED_INFO_REMINDER),
    ]
    params = open_params(
        await every_key(db.sessions, db.cipher), (await outbox_rows(db))[1].payload
    )
    assert params["total"] == 1 and len(params["codes"]) == 1
