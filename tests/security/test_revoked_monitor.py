"""A revoked monitor stops receiving at once, even what was queued before (issue 12, point 13).

Alerts are queued when a case changes, so a monitor whose access is revoked a moment later still
has rows waiting in the outbox. The claim that takes rows for sending checks the recipient again
and cancels those rows with a data-free reason.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from jobs.digests import T_DIGEST_PART
from storage import cases, subscriptions
from storage.enums import CaseStatus, MonitorStatus, OutboxKind, OutboxStatus, Role, Visibility
from storage.identity import UserKeys
from storage.models import OutboxMessage, User, utcnow
from storage.outbox import (
    FOR_MONITORS_ONLY,
    NOT_A_MONITOR,
    PRIORITY_DIGEST,
    Outgoing,
    claim,
    enqueue,
)
from storage.roles import revoke_role
from tests.support.case_factory import make_case
from tests.support.databases import Db
from tests.support.harness import BotHarness
from tests.support.identity import known_user
from tests.support.waiting import settled

ADMIN = 9001
NAME = "Server Mustafayev"
LEASE = timedelta(seconds=60)


def test_every_monitor_template_is_rechecked() -> None:
    assert {subscriptions.T_MONITOR_ALERT, T_DIGEST_PART} <= FOR_MONITORS_ONLY


async def _queue_alerts(
    db: Db, family: int, monitors: list[int], keys: UserKeys | None = None
) -> str:
    """A public case followed by `monitors`, moved once: one alert per monitor, and a digest
    part for the first monitor, all queued and not yet sent. With `keys` (a running bot's), the
    ids are Telegram ids and are stored as the bot stores them."""
    cipher = db.cipher
    now = utcnow()
    if keys is not None:
        monitors = [await _known(db, keys, monitor) for monitor in monitors]
    async with db.sessions() as session, session.begin():
        session.add(User(id=ADMIN, language="en"))
        for monitor in monitors:
            await session.merge(
                User(
                    id=monitor,
                    language="en",
                    role=Role.MONITOR,
                    monitor_status=MonitorStatus.APPROVED,
                )
            )
        await session.flush()
        code = await make_case(
            session,
            cipher,
            keys=keys,
            reporter_id=family,
            status=CaseStatus.UNDER_REVIEW,
            visibility=Visibility.PUBLIC,
            name=NAME,
            language="en",
        )
        for monitor in monitors:
            await subscriptions.follow_case(session, monitor, code)
    async with db.sessions() as session, session.begin():
        await cases.change_status(
            session, cipher, code, CaseStatus.VERIFIED, actor_id=ADMIN, now=now
        )
        await enqueue(
            session,
            cipher,
            [
                Outgoing(
                    monitors[0],
                    f"digest:test:{monitors[0]}",
                    T_DIGEST_PART,
                    {"date": now.date().isoformat(), "part": 1, "parts": 1, "items": []},
                    kind=OutboxKind.DIGEST,
                    priority=PRIORITY_DIGEST,
                )
            ],
            now=now,
        )
    return code


async def _known(db: Db, keys: UserKeys, telegram_id: int) -> int:
    async with db.sessions() as session, session.begin():
        return await known_user(session, keys, telegram_id, "en")


async def _rows_to(db: Db, chat_id: int) -> list[OutboxMessage]:
    async with db.sessions() as session:
        found = await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        return list(found)


async def test_claim_cancels_rows_of_a_revoked_monitor(db: Db) -> None:
    revoked, kept, family = 801, 802, 803
    await _queue_alerts(db, family, [revoked, kept])
    assert {row.template for row in await _rows_to(db, revoked)} == FOR_MONITORS_ONLY
    async with db.sessions() as session, session.begin():
        assert await revoke_role(session, actor_id=ADMIN, user_id=revoked, now=utcnow())
    claimed = []
    for _ in range(2):  # one chat's rows go one at a time: the digest part after the alert
        async with db.sessions() as session, session.begin():
            claimed += await claim(session, db.cipher, now=utcnow(), lease=LEASE, limit=50)
    assert revoked not in {row.chat_id for row in claimed}
    assert {kept, family} <= {row.chat_id for row in claimed}
    rows = await _rows_to(db, revoked)
    assert [(r.status, r.last_error) for r in rows] == [(OutboxStatus.CANCELLED, NOT_A_MONITOR)] * 2


async def test_revoked_monitor_gets_nothing_queued_before_the_revocation(
    harness: BotHarness,
) -> None:
    await harness.start()
    await harness.stop()  # the database exists; nothing is sent while the scene is set
    services = harness.services
    assert services is not None
    sandbox = harness.sandbox
    revoked, kept, family = (sandbox.add_user(language_code="en").id for _ in range(3))
    db = Db(engine=services.engine, sessions=services.sessions, cipher=services.cipher)
    code = await _queue_alerts(db, family, [revoked, kept], services.keys)
    assert len(await _rows_to(db, harness.key(revoked))) == 2
    async with services.sessions() as session, session.begin():
        assert await revoke_role(
            session, actor_id=ADMIN, user_id=harness.key(revoked), now=utcnow()
        )

    await harness.start()
    alert = await sandbox.next_message(kept)  # a monitor still approved is told
    assert code in alert.plain and NAME in alert.plain
    await sandbox.next_message(family)
    counts = await settled(harness)
    assert counts[OutboxStatus.CANCELLED] == 2
    assert sandbox.messages(revoked) == []
    assert [len(sandbox.stats.sends_to(chat)) for chat in (revoked, kept)] == [0, 1]
    rows = await _rows_to(db, harness.key(revoked))
    assert {(r.status, r.last_error) for r in rows} == {(OutboxStatus.CANCELLED, NOT_A_MONITOR)}
