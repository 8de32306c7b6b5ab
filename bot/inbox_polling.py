"""Polling that confirms only what the inbox stored.

Telegram confirms a polled batch when the next getUpdates carries a higher offset. PTB's Updater
hands a batch to its queue one update at a time and moves the offset after the last; this one
hands the whole batch to `UpdateInbox.put_batch`, which stores it in one transaction (a flood of
updates costs one commit per batch, not one per update), and moves the offset only then. The
rest is PTB's: bootstrap (delete the webhook), retries with back-off on network errors and 429,
the webhook server, and the final getUpdates at stop that confirms what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
from collections.abc import Callable

from telegram import Bot
from telegram.error import Conflict, TelegramError
from telegram.ext import Updater
from telegram.ext._utils.networkloop import network_retry_loop

from bot.inbox import UpdateInbox

log = logging.getLogger(__name__)
TimePeriod = int | dtm.timedelta  # as PTB's Updater takes it


class InboxUpdater(Updater):
    def __init__(self, bot: Bot, inbox: UpdateInbox) -> None:
        super().__init__(bot, inbox)
        self.inbox = inbox
        self._polling: asyncio.Task[None] | None = None
        self._polling_stop = asyncio.Event()
        self._polling_timeout: TimePeriod = 0
        self._polling_allowed: list[str] | None = None

    async def _start_polling(  # type: ignore[override]
        self,
        poll_interval: float,
        timeout: TimePeriod,  # noqa: ASYNC109 - PTB's signature, passed on to getUpdates
        bootstrap_retries: int,
        drop_pending_updates: bool | None,
        allowed_updates: list[str] | None,
        ready: asyncio.Event,
        error_callback: Callable[[TelegramError], None] | None,
    ) -> None:
        await self._bootstrap(
            bootstrap_retries,
            drop_pending_updates=drop_pending_updates,
            webhook_url="",
            allowed_updates=None,
        )
        self._polling_timeout, self._polling_allowed = timeout, allowed_updates

        async def fetch_store_confirm() -> None:
            updates = await self.bot.get_updates(
                offset=self._last_update_id, timeout=timeout, allowed_updates=allowed_updates
            )
            if not updates:
                return
            if not self.running:
                log.warning(
                    "polling stopped: %d fetched updates left for the next start", len(updates)
                )
                return
            await self.inbox.put_batch(updates)
            self._last_update_id = updates[-1].update_id + 1  # the next getUpdates confirms

        def log_error(error: TelegramError) -> None:
            log.error("polling: %s", type(error).__name__)

        self._polling_stop.clear()
        self._polling = asyncio.create_task(
            network_retry_loop(
                is_running=lambda: self.running,
                action_cb=fetch_store_confirm,
                on_err_cb=error_callback or log_error,
                description="Polling Updates into the inbox",
                interval=poll_interval,
                stop_event=self._polling_stop,
                max_retries=-1,
                repeat_on_success=True,
            ),
            name="InboxUpdater:polling",
        )
        ready.set()

    async def _stop_polling(self) -> None:
        if self._polling is not None:
            self._polling_stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
            try:  # confirm what was stored, so the next start is not handed it again
                await self.bot.get_updates(
                    offset=self._last_update_id,
                    timeout=dtm.timedelta(seconds=0),
                    allowed_updates=self._polling_allowed,
                )
            except Conflict:
                pass  # another instance polls this token: said once (bot.polling), it confirms
            except TelegramError as error:
                log.warning(
                    "the last getUpdates failed (%s): stored updates come again, once",
                    type(error).__name__,
                )
        await super()._stop_polling()
