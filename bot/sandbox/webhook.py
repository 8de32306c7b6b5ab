"""Webhook delivery, as Telegram does it: updates are posted one at a time, in order, with the
secret token header; an update leaves the queue only when the bot answers 200, else it is
posted again after a pause (a bot that was down gets it once it is back).

Telegram posts only to a public HTTPS address; the sandbox posts to `target` instead, a local
address standing for the reverse proxy that terminates TLS in front of the bot. With no target
(or no webhook set) nothing is posted and updates wait in the queue, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.sandbox.state import World

RETRY_FIRST = 0.05
RETRY_MAX = 1.0
POST_TIMEOUT = 60.0


class WebhookPusher:
    def __init__(
        self, world: World, pending: Callable[[list[str] | None], list[dict[str, Any]]]
    ) -> None:
        self.world = world
        self._pending = pending
        self.target: str | None = None
        self.failures = 0
        """Posts the bot did not answer with 200 (refused, dropped, timed out)."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="sandbox:webhook")

    async def stop(self) -> None:
        self._closing = True
        self.world.notifier.notify()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _next(self) -> dict[str, Any] | None:
        webhook = self.world.webhook
        if not webhook.get("url") or self.target is None:
            return None
        allowed = webhook.get("allowed_updates")
        waiting = self._pending(allowed if isinstance(allowed, list) else None)
        return waiting[0] if waiting else None

    async def _run(self) -> None:
        notifier = self.world.notifier
        delay = RETRY_FIRST
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT)) as http:
            while not self._closing:
                await notifier.wait_until(lambda: self._closing or self._next() is not None, 3600)
                update = self._next()
                if self._closing or update is None or self.target is None:
                    continue
                if await self._post(http, self.target, update):
                    if update in self.world.updates:
                        self.world.updates.remove(update)
                    delay = RETRY_FIRST
                    notifier.notify()  # delivered: confirmed, as getUpdates' offset would
                    continue
                self.failures += 1
                notifier.notify()
                await notifier.wait_until(lambda: self._closing, delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _post(self, http: aiohttp.ClientSession, target: str, update: dict[str, Any]) -> bool:
        secret = self.world.webhook.get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        self.world.hand_out(update)
        try:
            async with http.post(target, json=update, headers=headers) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
