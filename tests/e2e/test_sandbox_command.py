"""`python -m bot sandbox` (what `make run` starts with no token): a separate process with the
sandbox, the bot and the web page; a person's /start through the page's API gets the bot's reply."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.client import SandboxClient

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sandbox_command_serves_the_page_and_the_bot_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(REPO)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", str(port),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
            assert line, "the sandbox exited before it was ready"
            if "Open http" in line:
                break
        web_url = f"http://127.0.0.1:{port}/"
        assert web_url in line
        async with aiohttp.ClientSession() as http, http.get(web_url) as page:
            assert page.status == 200
            assert "<html" in (await page.text()).lower()
        async with SandboxClient(web_url) as client:
            family = (await client.personas())["family"]
            await client.send_text(family, "/start")
            replies: list[dict[str, object]] = []
            since = 0
            for _ in range(12):  # long polls of up to 5 s each, each after what was already seen
                answer = await client.messages(family, since=since, wait=5.0)
                since = int(answer["seq"])
                replies += [m for m in answer["messages"] if m.get("from_bot")]
                if replies:
                    break
        assert replies, "no reply to /start"
        assert "гаряч" in str(replies[0]["text"]).lower()  # the default language, Ukrainian
        assert (tmp_path / "var" / "sandbox.db").exists()
        assert (tmp_path / "var" / "sandbox.key").stat().st_mode & 0o077 == 0
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
