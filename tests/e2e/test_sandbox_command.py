"""`python -m bot sandbox` (what `make run` starts with no token): a separate process with the
sandbox, the bot and the web page; a person's /start through the page's API gets the bot's reply."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.sandbox.client import SandboxClient

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start_page_and_ask(tmp_path: Path) -> list[dict[str, object]]:
    """Start `python -m bot sandbox` in `tmp_path`, check the page, send /start as the page's
    family persona, return the bot's replies; the process is stopped again."""
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
        return replies
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)


async def test_sandbox_command_serves_the_page_and_the_bot_answers(tmp_path: Path) -> None:
    replies = await _start_page_and_ask(tmp_path)
    assert replies, "no reply to /start"
    assert "гаряч" in str(replies[0]["text"]).lower()  # the default language, Ukrainian
    assert (tmp_path / "var" / "sandbox.db").exists()
    assert (tmp_path / "var" / "sandbox.key").stat().st_mode & 0o077 == 0


async def test_make_run_twice_on_one_database_answers_both_times(tmp_path: Path) -> None:
    """A second start on the same database (`make run` again) goes on answering: the sandbox's
    update ids go on growing, so the durable inbox does not take them for ones it handled."""
    first = await _start_page_and_ask(tmp_path)
    second = await _start_page_and_ask(tmp_path)
    assert first and second, (first, second)
    assert "гаряч" in str(second[-1]["text"]).lower()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _bot(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_run_without_a_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _bot("run", cwd=tmp_path, env=_env())
    assert result.returncode == 2
    assert result.stderr.startswith("error: HOTLINE_BOT_TOKEN: not set;")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "python -m bot sandbox" in result.stderr
    assert not (tmp_path / "var").exists()  # no sandbox was started


def test_a_busy_sandbox_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _bot("sandbox", "--port", str(port), cwd=tmp_path, env=_env())
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the sandbox cannot listen on 127.0.0.1:{port}: "
        "the port is in use (is the sandbox already running?)"
    )
    assert "Traceback" not in result.stderr


def test_make_runs_choice_takes_the_token_from_dotenv(tmp_path: Path) -> None:
    """`run --or-sandbox` (the `make run` recipe) runs the bot when .env has a token."""
    from storage.crypto import generate_key

    port = _free_port()  # nobody listens there: `run` reports it, the sandbox would not
    (tmp_path / ".env").write_text(
        "HOTLINE_BOT_TOKEN=123456:SECRET-TOKEN\n"
        f"HOTLINE_API_BASE_URL=http://127.0.0.1:{port}/bot\n"
        f"HOTLINE_DATABASE_URL=sqlite+aiosqlite:///{tmp_path}/h.db\n"
        f"HOTLINE_DATA_KEY={generate_key()}\n"
    )
    result = _bot("run", "--or-sandbox", cwd=tmp_path, env=_env())
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: cannot reach the Bot API at HOTLINE_API_BASE_URL")
    assert "Open http" not in result.stdout
    assert "run --or-sandbox" in (REPO / "Makefile").read_text()


async def test_make_runs_choice_starts_the_sandbox_without_a_token(tmp_path: Path) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--or-sandbox", "--sandbox-port", str(port),
        cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
            assert line, "the sandbox exited before it was ready"
            if "Open http" in line:
                break
        assert f"http://127.0.0.1:{port}/" in line
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession() as http, http.get(url) as page:
            assert page.status == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
