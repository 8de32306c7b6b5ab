"""`python -m bot run` on a database it cannot write: one line naming HOTLINE_DATABASE_URL on
stderr, exit code 2, no traceback; never a bot that runs and fails every write.

The bot runs as another user than the files' owner when the tests run as root (root may write
anything), through util-linux's `setpriv`: as a hotline server runs it, under its own account.
The Bot API address is a port nobody listens on, so a bot that got past the database would end
with exit code 1 instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.crypto import generate_key
from storage.db import make_engine
from storage.migrate import upgrade_to_head
from tests.support.databases import fresh_postgres_database

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the bot's user can enter (pytest's own tmp_path is private to its owner)."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        path.chmod(0o755)
        yield path
        for inner in path.rglob("*"):
            if inner.is_dir():
                inner.chmod(0o755)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _migrated(path: Path) -> None:
    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())


def _give_to_bot_user(*paths: Path) -> None:
    if AS_ROOT:
        for path in paths:
            os.chown(path, NOBODY, NOBODY)


def _run_bot(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        HOTLINE_DATABASE_URL=url,
        HOTLINE_DATA_KEY=generate_key(),
        HOTLINE_BOT_TOKEN="123456:SECRET-TOKEN",
        HOTLINE_API_BASE_URL=f"http://127.0.0.1:{_free_port()}/bot",
        PYTHONPATH=str(REPO),
        HOME=str(cwd),
    )
    command = [sys.executable, "-m", "bot", "run"]
    if AS_ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: root may write a read-only file")
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: HOTLINE_DATABASE_URL: "), lines[0]
    assert "SECRET-TOKEN" not in result.stderr
    return lines[0]


def test_a_read_only_database_file(folder: Path) -> None:
    path = folder / "hotline.db"
    _migrated(path)
    path.chmod(0o444)  # the bot's user may read it, not write it
    _give_to_bot_user(folder)
    line = _one_line_exit_2(_run_bot(f"sqlite+aiosqlite:///{path}", folder))
    assert str(path) in line


def test_a_database_sqlite_opens_read_only(folder: Path) -> None:
    """The file itself is writable, but SQLite was asked to open it read-only: only a write
    at start finds out (this bot used to run, logging an error every few seconds)."""
    path = folder / "hotline.db"
    _migrated(path)
    _give_to_bot_user(folder, path, *folder.glob("hotline.db-*"))
    _one_line_exit_2(_run_bot(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true", folder))


def test_a_new_database_in_a_folder_that_cannot_be_written(folder: Path) -> None:
    locked = folder / "var"
    locked.mkdir()
    locked.chmod(0o555)
    _give_to_bot_user(folder)
    line = _one_line_exit_2(_run_bot(f"sqlite+aiosqlite:///{locked}/hotline.db", folder))
    assert "Permission denied" in line


def test_an_existing_database_in_a_folder_that_cannot_be_written(folder: Path) -> None:
    """SQLite needs the folder for its write-ahead log: the file alone being writable is not
    enough."""
    locked = folder / "var"
    locked.mkdir()
    path = locked / "hotline.db"
    _migrated(path)
    for companion in locked.glob("hotline.db-*"):
        companion.unlink()  # a clean shutdown leaves none
    _give_to_bot_user(folder, locked, path)
    locked.chmod(0o555)
    _one_line_exit_2(_run_bot(f"sqlite+aiosqlite:///{path}", folder))


async def test_a_postgres_database_not_migrated_yet(folder: Path) -> None:
    """On PostgreSQL `run` does not migrate (two processes must never migrate at once): a schema
    behind the code is one line saying what to run, not a traceback."""
    async with fresh_postgres_database() as url:
        result = await asyncio.to_thread(_run_bot, url, folder)
    line = _one_line_exit_2(result)
    assert line.endswith("run python -m bot migrate"), line
