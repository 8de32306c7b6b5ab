"""User data is read when the user's update arrives, not at start, and leaves memory after
(issue 16: start-up and memory flat in the number of users).

Through the real bot: many users' persistence rows stored, a restart reads none of them, and a
family half-way through the urgent questions finds its answer there when its next press is
handled, after a restart and after its data was handed back from memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bot.callbacks import DUTY, URGENT
from storage.persistence import DatabasePersistence
from tests.handlers.test_urgent import (  # noqa: F401 (urgent_bot is a fixture)
    CODE,
    OLENA,
    PLACE,
    alert_in,
    go_on_call,
    urgent_bot,
)
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle

OTHERS = 300


@contextmanager
def _persistence_reads(bot: BotHarness) -> Iterator[list[tuple[str, Any]]]:
    """Every statement that reads the persistence table, with its parameters."""
    assert bot.services is not None
    engine = bot.services.engine.sync_engine
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM persistence" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _persistence(bot: BotHarness) -> DatabasePersistence:
    assert bot.application is not None
    persistence = bot.application.persistence
    assert isinstance(persistence, DatabasePersistence)
    return persistence


async def _place_reaches_the_taker(bot: BotHarness, code: str) -> None:
    """The answer given before the restart (or the release) is in the case staff take."""
    sandbox = bot.sandbox
    alert = await alert_in(sandbox, OLENA, code)
    await sandbox.press(OLENA, alert.message_id, DUTY.build("take", code))
    await sandbox.wait_for(lambda: any(PLACE in m.plain for m in sandbox.messages(OLENA)))


async def _store_others(bot: BotHarness) -> None:
    """Many users' data and chats, as a busy week leaves them (written the way the bot does)."""
    persistence = _persistence(bot)
    for user in range(7_000_000, 7_000_000 + OTHERS):
        await persistence.update_user_data(user, {"hide_code": "K7M4-9XQ2", "find": {"p": 1}})
        await persistence.update_chat_data(user, {"seen": True})


async def test_start_reads_no_users_data_and_a_returning_user_finds_theirs(
    urgent_bot: BotHarness,  # noqa: F811 (the fixture imported above)
) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    await _store_others(urgent_bot)
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/urgent")
    await sandbox.next_message(family)
    await sandbox.next_message(family)
    await sandbox.send_text(family, PLACE)  # kept in the family's user data
    what = await sandbox.next_message(family)
    await wait_until_idle(urgent_bot)
    await urgent_bot.stop()

    with _persistence_reads(urgent_bot) as reads:
        application = await urgent_bot.start()
    assert reads, "conversation states are still read at start"
    assert all(  # ... and nothing else: no user or chat data
        isinstance(params, tuple | list) and all(str(p).startswith("conv:") for p in params)
        for _, params in reads
    ), reads
    persistence = _persistence(urgent_bot)
    assert persistence.entries_read == 0
    assert len(application.user_data) == 0 and len(application.chat_data) == 0

    await sandbox.press(family, what.message_id, URGENT.build("a", "what", "search"))
    by = await sandbox.next_message(family)
    assert "Who is doing it?" in by.plain
    # Read for this update only: the family's user data and private chat, in one query.
    assert persistence.entries_read == 1  # the chat had no data: only the user entry exists
    assert len(application.user_data) == 1
    await sandbox.press(family, by.message_id, URGENT.build("now", "by"))
    confirmation = await sandbox.next_message(family)
    found = CODE.search(confirmation.plain)
    assert found is not None
    await _place_reaches_the_taker(urgent_bot, found.group(0))


async def test_idle_users_data_leaves_memory_and_comes_back(
    urgent_bot: BotHarness,  # noqa: F811 (the fixture imported above)
) -> None:
    sandbox = urgent_bot.sandbox
    await go_on_call(sandbox, OLENA)
    persistence = _persistence(urgent_bot)
    persistence.resident_users = 2
    family = sandbox.add_user(language_code="en").id
    await sandbox.send_text(family, "/urgent")
    await sandbox.next_message(family)
    await sandbox.next_message(family)
    await sandbox.send_text(family, PLACE)
    what = await sandbox.next_message(family)
    others = [sandbox.add_user(language_code="en").id for _ in range(4)]
    for other in others:
        await sandbox.send_text(other, "/help")
        await sandbox.next_message(other)
        await wait_until_idle(urgent_bot)
    application = urgent_bot.application
    assert application is not None
    assert family not in application.user_data  # handed back, written
    assert len(application.user_data) <= 3  # the resident ones, and the latest update's
    assert persistence.resident() <= 3
    read_before = persistence.entries_read

    await sandbox.press(family, what.message_id, URGENT.build("a", "what", "search"))
    by = await sandbox.next_message(family)
    assert "Who is doing it?" in by.plain
    assert persistence.entries_read == read_before + 1  # read again, by its key
    await sandbox.press(family, by.message_id, URGENT.build("now", "by"))
    confirmation = await sandbox.next_message(family)
    found = CODE.search(confirmation.plain)
    assert found is not None
    await _place_reaches_the_taker(urgent_bot, found.group(0))
