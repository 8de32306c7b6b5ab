"""On SQLite one `python -m bot run` per database file (issue 16): a second instance would send
every message twice and fight the first for the write lock, so it refuses to start with one
line naming HOTLINE_DATABASE_URL and exit code 2, and the first goes on serving. The lock is a
file lock beside the database, so it goes with the process however it ends."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.app import open_services
from bot.leadership import AnotherInstance, current_role, lock_file, sqlite_single_instance
from bot.sandbox.server import SandboxServer
from storage import outbox
from storage.enums import OutboxStatus
from storage.outbox import Outgoing
from tests.support.harness import TEST_TOKEN, harness_settings
from tests.support.identity import known_user
from tests.support.processes import BotProcess, bot_env
from tests.support.waiting import eventually

RUNNING = "bot is running (polling)"
TEMPLATE = "cases.public_note"


def test_the_file_lock_refuses_a_second_holder_until_the_first_lets_go(tmp_path: Path) -> None:
    database = tmp_path / "var" / "hotline.db"
    with sqlite_single_instance(database):
        assert lock_file(database).stat().st_mode & 0o077 == 0  # private, as the database
        refused = pytest.raises(AnotherInstance, match=r"^HOTLINE_DATABASE_URL: another instance")
        with refused, sqlite_single_instance(database):
            pass
    with sqlite_single_instance(database):  # released with the first holder
        assert current_role() == "single"


async def test_a_second_instance_on_one_sqlite_file_is_refused_with_one_line(
    sandbox: SandboxServer, tmp_path: Path, data_key: str
) -> None:
    database = tmp_path / "hotline.db"
    env = bot_env(sandbox, f"sqlite+aiosqlite:///{database}", data_key)
    first = await BotProcess.start("first", env, tmp_path)
    try:
        await first.wait_for_line(RUNNING)
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(second.communicate(), timeout=120)

        assert second.returncode == 2, err.decode()
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1, err.decode()
        assert lines[0].startswith("error: HOTLINE_DATABASE_URL: another instance"), lines[0]
        assert str(database) in lines[0]
        assert not out and "Traceback" not in err.decode()
        assert TEST_TOKEN.split(":")[1] not in err.decode()

        family = sandbox.add_user(language_code="en").id  # the first one goes on serving
        await sandbox.send_text(family, "/help")
        assert "/privacy" in (await sandbox.next_message(family, timeout=60)).plain
    finally:
        assert await first.stop() == 0, first.output

    third = await BotProcess.start("third", env, tmp_path)  # the lock went with the first
    try:
        await third.wait_for_line(RUNNING)
    finally:
        assert await third.stop() == 0, third.output


async def test_after_a_kill_the_next_instance_sends_what_was_in_flight_at_once(
    sandbox: SandboxServer, tmp_path: Path, data_key: str
) -> None:
    """The file lock proves the killed process is gone, so a row it left `sending` (the send
    carried out, its answer never read) is due again as soon as the next instance starts, not
    when its lease runs out: here an hour, so only the take-over can send it within the test.
    Sent twice, as a row in flight at a kill may be (Telegram may or may not have it)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}"
    env = bot_env(sandbox, database_url, data_key, delivery_lease_seconds="3600")
    first = await BotProcess.start("first", env, tmp_path)
    await first.wait_for_line(RUNNING)
    family = sandbox.add_user(language_code="en").id
    release = sandbox.hold_next_send(family)
    services = await open_services(harness_settings(sandbox, database_url, data_key), migrate=False)
    try:
        async with services.sessions() as session, session.begin():
            await known_user(session, services.keys, family, "en", discreet=False)
            await outbox.enqueue(
                session,
                services.cipher,
                [
                    Outgoing(
                        services.keys.key(family), "crash:1", TEMPLATE, {"code": "N1", "note": "1"}
                    )
                ],
                now=services.clock(),
            )
        await sandbox.next_message(family, timeout=60)  # carried out by the first; answer held
        await first.kill()
        release.set()

        second = await BotProcess.start("second", env, tmp_path)
        try:
            await second.wait_for_line(RUNNING)
            await sandbox.wait_for(lambda: len(sandbox.messages(family)) == 2, timeout=60)

            async def recorded() -> bool:
                async with services.sessions() as session:
                    counts = await outbox.counts(session)
                return counts[OutboxStatus.SENT] == 1 and counts[OutboxStatus.SENDING] == 0

            await eventually(recorded, "the row recorded as sent", 60)
        finally:
            assert await second.stop() == 0, second.output
    finally:
        await first.kill()
        await services.engine.dispose()
