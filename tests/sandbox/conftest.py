"""A fresh sandbox server per test, on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.server import SandboxServer


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as running:
        yield running
