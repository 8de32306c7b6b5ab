"""Shared fixtures: databases (SQLite always, PostgreSQL where reachable), services, the sandbox,
and the real bot polling it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from storage.crypto import generate_key
from tests.support.databases import Db, fresh_postgres_database, migrated_database, sqlite_url
from tests.support.harness import BotHarness, harness_settings

os.environ.pop("HOTLINE_BOT_TOKEN", None)


@pytest.fixture(scope="session")
def i18n() -> I18n:
    return I18n()


@pytest.fixture
def data_key() -> str:
    return generate_key()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each storage test runs on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def db(database_url: str, data_key: str) -> AsyncIterator[Db]:
    """A migrated database (SQLite, then PostgreSQL), its sessions and cipher."""
    async with migrated_database(database_url, data_key) as database:
        yield database


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def harness(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    """The real bot, polling the sandbox over HTTP, on a fresh SQLite file; not yet started."""
    bot = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, sqlite_database_url, data_key),
        i18n=i18n,
    )
    try:
        yield bot
    finally:
        await bot.close()


@pytest.fixture
async def running_bot(harness: BotHarness) -> BotHarness:
    await harness.start()
    return harness
