"""A second instance of the bot started by mistake on the same token: Telegram (here the sandbox)
answers its getUpdates with 409 Conflict while the first instance's long poll is open. The second
`python -m bot run` stops with ONE clear line, no traceback, no token, and exit code 3; the first
instance keeps its updates."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from telegram import Bot
from telegram.request import HTTPXRequest

from bot.polling import CONFLICT_LINE, EXIT_CONFLICT
from bot.sandbox.server import SandboxServer
from tests.support.harness import TEST_TOKEN

REPO = Path(__file__).resolve().parents[2]
FAMILY = 1001


async def test_a_second_instance_stops_with_one_line_and_a_nonzero_exit(
    sandbox: SandboxServer, tmp_path: Path, data_key: str
) -> None:
    first = Bot(
        TEST_TOKEN,
        base_url=sandbox.base_url,
        get_updates_request=HTTPXRequest(read_timeout=90, connect_timeout=5),
    )
    async with first:
        # The running instance: one long poll held open for the whole test (no gap between polls
        # for the second instance to slip into).
        poll = asyncio.create_task(first.get_updates(timeout=50))
        await sandbox.wait_for(lambda: sandbox.polling)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(
            PYTHONPATH=str(REPO),
            HOTLINE_BOT_TOKEN=TEST_TOKEN,
            HOTLINE_API_BASE_URL=sandbox.base_url,
            HOTLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'second.db'}",
            HOTLINE_DATA_KEY=data_key,
        )
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(second.communicate(), timeout=90)
        text = out.decode() + err.decode()

        assert second.returncode == EXIT_CONFLICT, text
        about_it = [line for line in text.splitlines() if "409" in line or "Conflict" in line]
        assert len(about_it) == 1 and CONFLICT_LINE in about_it[0], text
        assert "Traceback" not in text
        assert TEST_TOKEN.split(":")[1] not in text
        assert sandbox.stats.conflicts >= 1

        assert sandbox.polling  # the first instance still polls, and gets what comes
        await sandbox.send_text(FAMILY, "still answered")
        updates = await asyncio.wait_for(poll, timeout=60)
    assert [u.message.text for u in updates if u.message] == ["still answered"]
