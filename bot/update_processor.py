"""Updates of different users run concurrently; updates of one user run in order.

PTB processes updates one after another by default, so one user flooding the bot would delay
everyone, while fully concurrent processing would race a user's conversation steps. Keying a lock
by user (or chat) gives both: isolation between users and order within one.

How many updates are handled at once is capped (`HOTLINE_CONCURRENT_UPDATES`), and the HTTP
connection pool is sized to match (`connection_pool_size`): 256 concurrent updates made
httpcore scan a 256-connection pool on every request, 1.8-2x the CPU per reply even for a bare
PTB bot, for no gain on a machine with a couple of cores. An update waiting behind the same
user's earlier one does not hold a place: a user with many queued updates cannot take every
place from the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

DEFAULT_CONCURRENT_UPDATES = 32
MAX_WAITING_UPDATES = 1024
"""PTB's own bound: updates taken from the queue at once, waiting or handled."""
DELIVERY_SENDS = 16
"""The most sends `jobs.delivery.Delivery` has in flight (its `concurrency`)."""
SPARE_CONNECTIONS = 4
"""Jobs and start-up calls (the command menus) besides updates and delivery."""


def connection_pool_size(concurrent_updates: int) -> int:
    """Connections for the bot's requests: one per update handled at once (a handler sends one
    request at a time), one per delivery send, and a few spare, so no request waits for one."""
    return concurrent_updates + DELIVERY_SENDS + SPARE_CONNECTIONS


class PerUserUpdateProcessor(BaseUpdateProcessor):
    def __init__(
        self,
        max_concurrent_updates: int = DEFAULT_CONCURRENT_UPDATES,
        max_waiting_updates: int = MAX_WAITING_UPDATES,
    ) -> None:
        super().__init__(max(max_waiting_updates, max_concurrent_updates))
        self.handling_limit = max_concurrent_updates
        self._handling = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    def busy(self, key: int) -> bool:
        """Whether an update of this user (or chat) is being handled or waits its turn."""
        return key in self._waiting

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _key_of(update)
        if key is None:
            async with self._handling:
                await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock, self._handling:  # the user's turn first, then a place
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _key_of(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None
