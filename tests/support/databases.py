"""Test databases: a fresh SQLite file, or a fresh database on the local PostgreSQL server."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.crypto import FieldCipher
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.migrate import upgrade_to_head

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("HOTLINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def postgres_reachable() -> str | None:
    """None when the server answers, else the reason it does not (for the skip message)."""
    try:
        connection = await asyncpg.connect(_plain(postgres_url()), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create a throw-away database next to `test`, yield its URL, drop it afterwards."""
    reason = await postgres_reachable()
    if reason is not None:
        message = f"no PostgreSQL at {postgres_url()} ({reason}); set HOTLINE_TEST_POSTGRES_URL"
        if os.environ.get("HOTLINE_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    name = f"hotline_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_plain(postgres_url()))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_url().rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(_plain(postgres_url()))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'hotline.db'}"


@dataclass
class Db:
    """A migrated database with its session factory and cipher, for storage tests."""

    engine: AsyncEngine
    sessions: SessionFactory
    cipher: FieldCipher


@asynccontextmanager
async def migrated_database(url: str, data_key: str) -> AsyncIterator[Db]:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    try:
        yield Db(engine, make_session_factory(engine), FieldCipher.from_setting(data_key))
    finally:
        await engine.dispose()
