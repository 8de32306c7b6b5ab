"""An admin who never opened the bot: Telegram answers `chat not found` to every new-report
notice. It is said once (one log line, one notice to the other staff), not per notice;
`python -m bot staff list` shows who it is; once they write to the bot, it is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.texts.messages.reachability import staff_unreachable
from storage.enums import OutboxStatus
from storage.models import OutboxMessage, UnreachableChat
from tests.handlers.report_flow import FULL, file
from tests.support.harness import BotHarness, harness_settings
from tests.support.waiting import settled

REPO = Path(__file__).resolve().parents[2]
NEVER_STARTED = 9001
ADMIN = 9002


async def _staff_list(url: str, data_key: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        HOTLINE_DATABASE_URL=url,
        HOTLINE_DATA_KEY=data_key,
        HOTLINE_ADMIN_IDS=f"{NEVER_STARTED},{ADMIN}",
        PYTHONPATH=str(REPO),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "staff", "list", env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_an_admin_who_never_started_the_bot_is_reported_once(
    sandbox: SandboxServer,
    sqlite_database_url: str,
    data_key: str,
    i18n: I18n,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = harness_settings(
        sandbox, sqlite_database_url, data_key, admin_ids=frozenset({NEVER_STARTED, ADMIN})
    )
    bot = BotHarness(sandbox=sandbox, settings=settings, i18n=i18n)
    try:
        await bot.start()
        sandbox.add_user(ADMIN, language_code="en")
        await sandbox.send_text(ADMIN, "/start")  # the other admin uses the bot, in English
        await sandbox.next_message(ADMIN)
        families = [sandbox.add_user(language_code="en").id for _ in range(2)]
        with caplog.at_level(logging.INFO, logger="jobs.delivery"):
            await file(sandbox, families[0])
            await file(
                sandbox, families[1], {**FULL, "name": "Umerov Server", "birth": "01.02.1990"}
            )
            counts = await settled(bot)
        assert bot.services is not None
        async with bot.services.sessions() as session:
            recorded = list(await session.scalars(select(UnreachableChat.chat_id)))
            dead = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.chat_id == bot.key(NEVER_STARTED),
                    OutboxMessage.status == OutboxStatus.DEAD,
                )
            )
        assert recorded == [bot.key(NEVER_STARTED)]
        assert dead == 2  # both notices given up...
        assert counts[OutboxStatus.DEAD] == 2  # ...and no dead-letter notice about them
        told = staff_unreachable(i18n.get("en"), {"group": False}).text
        to_admin = [m.text for m in sandbox.messages(ADMIN)]
        assert to_admin.count(told) == 1, to_admin  # once, not per notice
        assert sum("New report" in (text or "") for text in to_admin) == 2
        lines = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
        assert len(lines) == 1, lines
        assert str(NEVER_STARTED) not in lines[0]  # a pseudonym, not the Telegram id
        await bot.stop()

        listed = await _staff_list(sqlite_database_url, data_key)
        assert listed[0].startswith(f"{NEVER_STARTED} admin, cannot be reached"), listed
        assert listed[1] == f"{ADMIN} admin", listed

        # They open the bot: reachable again, and a later refusal would be told again.
        await bot.start()
        sandbox.add_user(NEVER_STARTED, language_code="en")
        await sandbox.send_text(NEVER_STARTED, "/start")
        await sandbox.next_message(NEVER_STARTED)
        async with bot.services.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(UnreachableChat)) == 0
    finally:
        await bot.close()
