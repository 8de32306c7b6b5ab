"""Who hears that a staff chat cannot be reached, and how often (storage/reachability.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage.enums import Role
from storage.identity import KEY_FLOOR
from storage.models import OutboxMessage
from storage.outbox import open_params
from storage.reachability import TEMPLATE, mark_reachable, record_unreachable, unreachable_chats
from storage.recipients import StaffContacts
from storage.users import set_role
from tests.support.databases import Db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADMIN_A, ADMIN_B, STAFFER = KEY_FLOOR + 1, KEY_FLOOR + 2, KEY_FLOOR + 3
GROUP = -100_500


async def _told(db: Db) -> list[tuple[int, dict[str, object]]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.payload)
            .where(OutboxMessage.template == TEMPLATE)
            .order_by(OutboxMessage.id)
        )
        return [(chat, open_params(db.cipher, payload)) for chat, payload in rows]


async def _record(db: Db, chat: int, staff: StaffContacts) -> bool:
    async with db.sessions() as session, session.begin():
        return await record_unreachable(session, db.cipher, chat, staff=staff, now=NOW)


async def test_the_other_staff_are_told_once(db: Db) -> None:
    admins = StaffContacts(frozenset({ADMIN_A, ADMIN_B}))
    async with db.sessions() as session, session.begin():
        await set_role(session, STAFFER, Role.STAFF)
    assert await _record(db, ADMIN_A, admins)
    assert not await _record(db, ADMIN_A, admins)  # the next refused notice: nothing new
    assert sorted(chat for chat, _ in await _told(db)) == [ADMIN_B, STAFFER]
    assert all(params == {"group": False} for _, params in await _told(db))

    # They wrote to the bot; a later refusal is a new episode, told again.
    async with db.sessions() as session, session.begin():
        await mark_reachable(session, ADMIN_A)
        assert await unreachable_chats(session) == set()
    assert await _record(db, ADMIN_A, admins)
    assert len(await _told(db)) == 4


async def test_with_a_staff_group_the_group_is_told_and_told_about(db: Db) -> None:
    staff = StaffContacts(frozenset({ADMIN_A, ADMIN_B}), GROUP)
    async with db.sessions() as session, session.begin():
        await set_role(session, STAFFER, Role.STAFF)
    assert await _record(db, ADMIN_A, staff)
    assert await _told(db) == [(GROUP, {"group": False})]

    # The group itself cannot be reached: each staff member and admin still reachable hears it.
    assert await _record(db, GROUP, staff)
    told = (await _told(db))[1:]
    assert sorted(chat for chat, _ in told) == [ADMIN_B, STAFFER]
    assert all(params == {"group": True} for _, params in told)
    async with db.sessions() as session:
        assert await unreachable_chats(session, [ADMIN_A, ADMIN_B]) == {ADMIN_A}
