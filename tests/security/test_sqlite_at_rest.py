"""The SQLite file on a seized disk (issue 12, point 11): the real bot on a real SQLite file.

Checked after a run with a broadcast and a refused probe: the pragmas that keep erased data off
the disk are on, the database, WAL and shared-memory files are readable by their owner only, the
scheduled checkpoint empties the WAL, the log of the refused probe names neither the prober's
Telegram id nor the probed case code (only keyed pseudonyms), and no byte of the database or its
WAL holds the broadcast's text.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.callbacks import BROADCAST
from jobs import sqlite_maintenance
from storage.db import WAL_SIZE_LIMIT, sqlite_file
from storage.models import Broadcast
from tests.security.helpers import seed_case
from tests.support.harness import BotHarness

ADMIN = 9001
PROBER = 7315550923
BROADCAST_TEXT = "Legal aid for families in Dzhankoi on Friday, bring the summons"


OUR_LOGGERS = ("handlers", "jobs", "storage", "bot")


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="handlers")
    caplog.set_level(logging.DEBUG, logger="jobs")
    return caplog


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022: files would come out world-readable unless the bot says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def _broadcast(bot: BotHarness, family: int) -> None:
    """Staff send an announcement to everyone through the real conversation."""
    sandbox = bot.sandbox
    await sandbox.send_text(ADMIN, "/broadcast")
    ask = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask.message_id, BROADCAST.build("aud", "everyone"))
    await sandbox.wait_for_edit(ADMIN, ask.message_id)
    await sandbox.send_text(ADMIN, BROADCAST_TEXT)
    other_languages = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, other_languages.message_id, BROADCAST.build("done"))
    ask_photo = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, ask_photo.message_id, BROADCAST.build("nophoto"))
    await sandbox.next_message(ADMIN)  # the preview
    confirm = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, confirm.message_id, BROADCAST.build("send"))
    await sandbox.wait_for(
        lambda: any(m.plain == BROADCAST_TEXT for m in sandbox.messages(family)), timeout=15
    )


async def test_sqlite_file_is_private_scrubbed_and_logs_pseudonyms(
    harness: BotHarness, info_logs: pytest.LogCaptureFixture, usual_umask: None
) -> None:
    await harness.start()
    services = harness.services
    assert services is not None
    sandbox = harness.sandbox
    path = sqlite_file(services.settings.database_url)
    assert path is not None

    # -- pragmas, on a connection of the bot's own pool
    async with services.engine.connect() as connection:
        found = {
            name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "secure_delete", "journal_size_limit")
        }
    assert found == {
        "journal_mode": "wal",
        "secure_delete": 1,
        "journal_size_limit": WAL_SIZE_LIMIT,
    }

    # -- a refused probe: a stranger asks the staff console for a real case
    async with services.sessions() as session, session.begin():
        code = await seed_case(session, services.cipher, keys=services.keys, reporter_id=4242)
    prober = sandbox.add_user(user_id=PROBER, language_code="en")
    await sandbox.send_text(prober.id, f"/case {code}")
    refusal = await sandbox.next_message(prober.id)
    assert "only for the hotline's staff" in refusal.plain
    await sandbox.send_text(prober.id, f"/follow {code}")
    await sandbox.next_message(prober.id)

    # -- a broadcast to everyone (the prober included)
    sandbox.user(ADMIN)
    await sandbox.send_text(ADMIN, "/start")
    await sandbox.next_message(ADMIN)
    await _broadcast(harness, prober.id)

    # -- files: owner-only, the WAL and shared memory included
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    assert wal.exists() and shm.exists()
    assert {p.name: oct(_mode(p)) for p in (path, wal, shm)} == {
        p.name: "0o600" for p in (path, wal, shm)
    }

    # -- no broadcast text in any byte on disk; the dump is real: it holds the plain case code
    raw = _raw(path)
    assert code.encode() in raw
    assert BROADCAST_TEXT.encode() not in raw
    assert b"Dzhankoi" not in raw
    async with services.sessions() as session:
        sealed = await session.scalar(select(Broadcast.text))
    assert isinstance(sealed, bytes) and services.cipher.open(sealed) == BROADCAST_TEXT

    # -- the scheduled checkpoint empties the WAL
    assert harness.application is not None and harness.application.job_queue is not None
    (job,) = harness.application.job_queue.get_jobs_by_name(sqlite_maintenance.JOB_NAME)
    assert wal.stat().st_size > 0
    await job.run(harness.application)

    async def truncated() -> bool:
        return wal.stat().st_size == 0 or (
            await sqlite_maintenance.checkpoint(services) and wal.stat().st_size == 0
        )

    for _ in range(20):  # a sweep of the delivery job may hold a read snapshot for a moment
        if await truncated():
            break
    assert wal.stat().st_size == 0
    async with services.engine.connect() as connection:
        integrity = (await connection.execute(text("PRAGMA integrity_check"))).scalar()
    assert integrity == "ok"

    # -- logs: the refusals were logged, by pseudonym, without the id or the code
    await harness.stop()
    # Our own log lines: PTB's DEBUG lines quote whole updates (another test may have left its
    # logger at DEBUG; production logs at INFO)
    ours = [r for r in info_logs.records if r.name.split(".")[0] in OUR_LOGGERS]
    messages = [r.getMessage() for r in ours]
    texts = messages + [repr(r.args) for r in ours]
    denied = [m for m in messages if "denied case.view" in m]
    assert denied and services.cipher.pseudonym(services.keys.key(PROBER)) in denied[0]
    assert services.cipher.pseudonym(code) in denied[0]
    assert any(
        "not an approved monitor" in m and services.cipher.pseudonym(services.keys.key(PROBER)) in m
        for m in messages
    )
    assert [t for t in texts if str(PROBER) in t] == []
    assert [t for t in texts if code in t or code.replace("-", "") in t] == []
    assert [t for t in texts if str(ADMIN) in t] == []
