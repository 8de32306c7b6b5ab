"""Filing a report: one transaction, duplicates hinted to staff by blind index (never joined), the
per-day limit, and who may read a case back; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.enums import Role, Visibility
from storage.migrate import upgrade_to_head
from storage.models import AuditEntry, Case, CaseContact, CaseEvent, OutboxMessage
from storage.outbox import open_params
from storage.reports import (
    Filed,
    ReportDraft,
    ReportLimitReached,
    StaffChats,
    cases_of,
    file_report,
    look_up,
)
from storage.users import set_role
from tests.support.case_factory import ensure_user
from tests.support.sealed import every_key

NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)
STAFF = StaffChats(admin_ids=frozenset({9001}))
DRAFT = ReportDraft.of(
    relation="parent",
    name="Ivan Petrenko",
    detention_date="2025-06-01",
    region="crimea",
    birth={"date": "1985-03-21"},
    visibility=Visibility.ANONYMOUS,
)
"""Answers as the form keeps them, by field key (`storage.fields`)."""


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    await upgrade_to_head(engine)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def cipher(data_key: str) -> FieldCipher:
    return FieldCipher([data_key])


async def _file(
    sessions: SessionFactory,
    cipher: FieldCipher,
    user: int,
    draft: ReportDraft = DRAFT,
    *,
    staff: StaffChats = STAFF,
    now: datetime = NOW,
    limit: int = 5,
) -> Filed | str:
    async with sessions() as session, session.begin():
        await ensure_user(session, user)
        filed = await file_report(
            session, cipher, user, draft, now=now, staff=staff, reports_per_day=limit
        )
    return filed.code or filed.outcome


async def test_report_writes_case_event_contact_outbox_audit(
    sessions: SessionFactory, cipher: FieldCipher
) -> None:
    async with sessions() as session, session.begin():
        await set_role(session, 3001, Role.STAFF)
    code = await _file(sessions, cipher, 100)
    async with sessions() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.code == code and case.person_index
        assert case.status == "new" and case.visibility == "anonymous"
        assert (await session.scalar(select(CaseEvent.kind))) == "created"
        assert (await session.scalar(select(CaseContact.is_reporter))) is True
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.chat_id)))
        assert [r.chat_id for r in rows] == [3001, 9001]  # every staff member and admin
        params = open_params(await every_key(sessions, cipher), rows[0].payload)
        assert params == {"code": code, "region": "crimea", "detention_date": "2025-06-01"}
        audit = await session.scalar(select(AuditEntry))
        assert audit is not None and audit.action == "report.file" and audit.case_code == code


async def test_staff_group_gets_the_notice_when_configured(
    sessions: SessionFactory, cipher: FieldCipher
) -> None:
    await _file(sessions, cipher, 100, staff=StaffChats(-100500, frozenset({9001})))
    async with sessions() as session:
        chats = list(await session.scalars(select(OutboxMessage.chat_id)))
    assert chats == [-100500]


async def _statements_while_filing(
    sessions: SessionFactory, cipher: FieldCipher, user: int, draft: ReportDraft
) -> list[str]:
    """The SQL (text, not values) that filing one report runs."""
    async with sessions() as session, session.begin():
        await ensure_user(session, user)
    engine = sessions.kw["bind"]
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessions() as session, session.begin():
            await file_report(session, cipher, user, draft, now=NOW, staff=STAFF, reports_per_day=5)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_a_report_about_a_person_on_file_is_a_new_case_done_the_same_way(
    sessions: SessionFactory, cipher: FieldCipher
) -> None:
    """Issue 12, point 1 (storage side): whether the person is on file or not, filing runs the
    very same statements and answers a fresh code; only staff get the hint."""
    code = await _file(sessions, cipher, 100)
    fresh = DRAFT.but(birth={"date": "1986-03-21"})
    again = DRAFT.but(name="IVAN  petrenko")
    new_person = await _statements_while_filing(sessions, cipher, 300, fresh)
    on_file = await _statements_while_filing(sessions, cipher, 200, again)
    assert on_file == new_person  # same work on both paths: the timing cannot tell them apart
    assert await _file(sessions, cipher, 100, again) == code  # the reporter: already reported
    async with sessions() as session:
        rows = list(await session.scalars(select(Case).order_by(Case.id)))
        assert [(c.code == code, c.status, c.duplicate_of) for c in rows] == [
            (True, "new", None),
            (False, "new", None),
            (False, "new", code),
        ]
        joined = rows[2]
        contacts = list(await session.scalars(select(CaseContact).order_by(CaseContact.id)))
        assert [(c.case_id, c.user_id, c.is_reporter) for c in contacts] == [
            (rows[0].id, 100, True),
            (rows[1].id, 300, True),
            (joined.id, 200, True),
        ]  # nothing was attached to the case on file
        notices = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == 9001))
        )
        params = [open_params(await every_key(sessions, cipher), row.payload) for row in notices]
        assert [row.template for row in notices] == ["reports.staff_new_report"] * 3
        assert params[2] == {
            "code": joined.code,
            "region": "crimea",
            "detention_date": "2025-06-01",
            "duplicate_of": code,
        }
        mine = await cases_of(session, cipher, 200)
    assert [c.code for c in mine.cases] == [joined.code]


async def test_reports_per_day(sessions: SessionFactory, cipher: FieldCipher) -> None:
    for n in range(2):
        await _file(
            sessions,
            cipher,
            100,
            DRAFT.but(birth={"age": n}),
            limit=2,
        )
    with pytest.raises(ReportLimitReached):
        await _file(sessions, cipher, 100, limit=2)
    await _file(sessions, cipher, 100, now=NOW + timedelta(days=1, minutes=1), limit=2)


async def test_who_may_look_up_a_case(sessions: SessionFactory, cipher: FieldCipher) -> None:
    code = await _file(sessions, cipher, 100)
    hidden = await _file(
        sessions,
        cipher,
        101,
        DRAFT.but(name="Other", visibility=Visibility.STAFF_ONLY),
    )
    assert isinstance(code, str) and isinstance(hidden, str)
    async with sessions() as session:
        family = await look_up(session, cipher, code, 100)
        stranger = await look_up(session, cipher, code, 555)
        staff = await look_up(session, cipher, hidden, 9001, sees_every_case=True)
        assert family is not None and family.full and family.detainee_name == "Ivan Petrenko"
        assert stranger is not None and not stranger.full and stranger.detainee_name is None
        assert staff is not None and staff.detainee_name == "Other"
        assert await look_up(session, cipher, hidden, 555) is None
        assert await look_up(session, cipher, "K7M4-9XQ2", 555) is None
        assert await look_up(session, cipher, None, 555) is None


async def test_status_reads_are_one_query(sessions: SessionFactory, cipher: FieldCipher) -> None:
    """/status reads a family's cases (name, data key, last public note) in one statement,
    however many cases; a look-up by code too (it took four per case)."""
    codes = [await _file(sessions, cipher, 100, DRAFT.but(birth={"age": n})) for n in range(3)]
    async with sessions() as session, session.begin():
        case = await session.scalar(select(Case).where(Case.code == codes[1]))
        assert case is not None
        keyed = await case_cipher(session, cipher, case.id)
        for number in range(2):
            session.add(
                CaseEvent(
                    case_id=case.id, kind="public_note", public=True,
                    body=keyed.seal(f"note {number}"), created_at=NOW,
                )
            )  # fmt: skip
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        async with sessions() as session:
            mine = await cases_of(session, cipher, 100)
            assert len(statements) == 1
            found = await look_up(session, cipher, codes[1], 100)
            assert len(statements) == 2
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert sorted(c.code for c in mine.cases) == sorted(codes)
    assert {c.code: c.last_note for c in mine.cases}[codes[1]] == "note 1"
    assert all(c.detainee_name == "Ivan Petrenko" for c in mine.cases)
    assert found is not None and found.full and found.last_note == "note 1"


def test_index_recomputed_from_stored_fields_matches_the_intake_index() -> None:
    """Key rotation recomputes indexes from the sealed fields: both forms must agree."""

    from storage.crypto import FieldCipher, generate_key
    from storage.reports import person_index, person_index_from_stored

    cipher = FieldCipher([generate_key()])
    assert person_index_from_stored(cipher, "Ali", "1985-03-14") == person_index(
        cipher, "Ali", date(1985, 3, 14), None
    )
    assert person_index_from_stored(cipher, "Ali", "age 40 on 2026-01-01") == person_index(
        cipher, "Ali", None, 40
    )
    assert person_index_from_stored(cipher, "Ali", None) is None
