"""The durable inbox: Telegram is told an update arrived only once it is stored, and the update is
handled from the store, so a crash replays it instead of losing it.

PTB's Updater confirms a polled batch when it fetches the next one, and its webhook answers 200
once the update sits in the Application's in-memory queue, whatever becomes of the handlers: a
crash (or a database lock held by another process) in between lost the update. Here the
Application's `update_queue` is an `UpdateInbox`, and its Updater an `InboxUpdater`
(`bot.inbox_polling`): a polled batch goes to `put_batch`, a webhook's update to `put`, and both
return only once the updates are sealed in the `inbox` table (`storage.inbox`), one transaction
per batch, retrying while the database refuses. Only then does polling move its offset (the
next getUpdates confirms the batch) or the webhook answer 200.

Each stored update then runs as a task: `application.process_update` through the update
processor (one user's updates in order, different users side by side). Its row is marked
handled (payload and key destroyed) in the transaction of its first write (`bot.inbox_mark`).
An update that wrote nothing (/start of a known user, /status, /help) is marked after its
handlers, and not in a transaction of its own: the mark rides in the next store's transaction
(in a conversation, the person's next message comes moments later) or, when none comes within
`MARK_LINGER`, in one for every update that finished meanwhile. A mark in a transaction of
its own cost 1.1-1.2 ms of CPU, half of it the transaction itself (`benchmarks.inbox_cost`),
about as much as storing the update. At start, `replay` hands over what an earlier process left
unhandled, before any new update is fetched.

Once: Telegram delivers again what was not confirmed, and the stored `update_id` makes the copy
a no-op; a crash before an update's first write replays it, a crash after does not. An update
that writes nothing and is cut after its reply (or in its mark's linger) is answered again:
the same reply, twice, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import Application

from bot import inbox_mark, metrics
from bot.logs import describe_error
from storage import inbox as stored_updates
from storage.crypto import FieldCipher
from storage.db import SessionFactory
from storage.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
AnyApplication = Application[Any, Any, Any, Any, Any, Any]

RETRY_FIRST = 0.05
"""Seconds before the first retry of a write the database refused (locked, full, gone)."""
RETRY_MAX = 5.0
MARK_LINGER = 0.25
"""Seconds the mark of an update that wrote nothing waits for a store to ride in."""
FORGET_EVERY = timedelta(hours=1)
"""How often handled updates older than `storage.inbox.KEEP_HANDLED` are dropped."""


class InboxAbandoned(RuntimeError):
    """The inbox was abandoned (`abandon`): nothing more is written."""


class UpdateInbox(asyncio.Queue[object]):
    """The Application's update queue: an `Update` put here is stored first, then handled."""

    def __init__(
        self,
        sessions: SessionFactory,
        cipher: FieldCipher,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        self._sessions = sessions
        self._cipher = cipher
        self._clock = clock
        self._application: AnyApplication | None = None
        self._handling: dict[int, asyncio.Task[None]] = {}
        self._storing: set[asyncio.Task[Any]] = set()
        self._unmarked: list[int] = []
        self._marker: asyncio.Task[None] | None = None
        self._mark_now = asyncio.Event()
        """Set when the marks must not linger (a store took them, or the bot stops)."""
        self._abandoned = False
        self._forgotten_at: datetime | None = None
        self.refused_writes = 0
        """Writes the database refused and that were retried (for tests and metrics)."""

    def bind(self, application: AnyApplication) -> None:
        self._application = application

    # -- intake ---------------------------------------------------------------------------------

    async def put(self, item: object) -> None:
        """Store an update (waiting as long as the database refuses), then handle it; anything
        else (PTB's stop signal) goes on the in-memory queue as usual."""
        if isinstance(item, Update):
            await self.put_batch([item])
        else:
            await super().put(item)

    def put_nowait(self, item: object) -> None:
        if isinstance(item, Update):
            raise TypeError("an update is stored before it is accepted: await put(update)")
        super().put_nowait(item)

    async def put_batch(self, updates: Sequence[Update]) -> None:
        """Store updates in one transaction (waiting as long as the database refuses), then
        handle those not handled before, in order."""
        if not updates:
            return
        data = [(u.update_id, json.dumps(u.to_dict(), ensure_ascii=False)) for u in updates]
        task = asyncio.current_task()
        if task is not None:
            self._storing.add(task)
        try:
            waiting = set(
                await self._retrying(
                    f"{len(updates)} updates not stored, so not confirmed",
                    partial(self._store_once, data),
                )
            )
        finally:
            if task is not None:
                self._storing.discard(task)
        for update in updates:
            if update.update_id in waiting:
                self._schedule(update)

    async def _store_once(self, data: list[tuple[int, str]]) -> list[int]:
        """One transaction: the marks waiting to be written (`_mark_soon`), then the updates.
        Marks first: a copy of a handled update, delivered again, is then known as handled."""
        riding, self._unmarked = self._unmarked, []
        try:
            async with self._sessions() as session, session.begin():
                destroyed = await stored_updates.mark_handled(session, self._cipher, riding)
                waiting = await stored_updates.store(session, self._cipher, data, now=self._clock())
        except BaseException:
            self._unmarked[:0] = riding  # not written: they wait for the next chance
            raise
        if riding:
            log.debug("%d marks rode in a store (%d keys destroyed)", len(riding), destroyed)
            self._mark_now.set()  # the marker has nothing left to wait for
        return waiting

    # -- handling -------------------------------------------------------------------------------

    async def replay(self) -> int:
        """Hand over the updates an earlier process stored but did not finish; call after the
        Application started and before updates are fetched. Returns how many."""
        async with self._sessions() as session, session.begin():
            now = self._clock()
            await stored_updates.forget_handled(session, now=now)
            self._forgotten_at = now
            waiting = await stored_updates.pending(session, self._cipher)
        lost: list[int] = []
        count = 0
        for stored in waiting:
            update = self._decode(stored.data)
            if update is None:
                lost.append(stored.update_id)
                continue
            self._schedule(update)
            count += 1
        if lost:
            log.error("%d stored updates could not be read back (key gone?); dropped", len(lost))
            await self._mark_once(lost)
        if count:
            log.info("replaying %d updates stored before the last stop", count)
        return count

    def _decode(self, data: str | None) -> Update | None:
        if data is None:
            return None
        try:
            return Update.de_json(json.loads(data), self._app().bot)
        except Exception as error:
            log.error("a stored update could not be decoded: %s", describe_error(error))
            return None

    def _app(self) -> AnyApplication:
        if self._application is None:
            raise RuntimeError("UpdateInbox.bind(application) was not called")
        return self._application

    def _schedule(self, update: Update) -> None:
        if self._abandoned or update.update_id in self._handling:
            return
        task = asyncio.create_task(self._handle(update), name=f"inbox:{update.update_id}")
        self._handling[update.update_id] = task
        task.add_done_callback(partial(self._task_done_callback, update.update_id))

    def _task_done_callback(self, update_id: int, task: asyncio.Task[None]) -> None:
        if self._handling.get(update_id) is task:
            del self._handling[update_id]
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("update %s: %s", update_id, describe_error(error))

    async def _handle(self, update: Update) -> None:
        processing = self._process(update)
        started = time.perf_counter()
        try:
            await self._app().update_processor.process_update(update, processing)
        finally:
            processing.close()  # cancelled while waiting its turn: it never started
        metrics.update_handled(time.perf_counter() - started)

    async def _process(self, update: Update) -> None:
        """Inside the update processor: the user's earlier updates are done, later ones wait.
        The first write of a handler carries the mark (`bot.inbox_mark`); else it comes after."""
        with inbox_mark.handling(update.update_id, self._forget_keys) as current:
            try:
                await self._app().process_update(update)
            except Exception as error:  # handled, even if badly: it is not handled again
                log.error("update %s failed: %s", update.update_id, describe_error(error))
        if not current.marked:
            self._mark_soon(update.update_id)

    def _forget_keys(self, sealed_keys: list[bytes]) -> None:
        for token in sealed_keys:
            self._cipher.forget_data_key(token)

    def _mark_soon(self, update_id: int) -> None:
        """Updates that wrote nothing are marked together: in the next store's transaction, or
        after `MARK_LINGER` in one of their own."""
        self._unmarked.append(update_id)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_unmarked(), name="inbox:mark")

    async def _mark_unmarked(self) -> None:
        while self._unmarked:
            if not self._mark_now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._mark_now.wait(), MARK_LINGER)
            self._mark_now.clear()
            batch, self._unmarked = self._unmarked, []
            if not batch:  # a store took them
                continue
            try:
                await self._retrying(
                    f"{len(batch)} updates handled but not yet marked",
                    partial(self._mark_once, batch),
                )
            except BaseException:
                self._unmarked[:0] = batch  # cancelled (a crash-like stop): never lost here
                raise

    async def _mark_once(self, update_ids: list[int]) -> None:
        async with self._sessions() as session, session.begin():
            await stored_updates.mark_handled(session, self._cipher, update_ids)
            now = self._clock()
            if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
                await stored_updates.forget_handled(session, now=now)
                self._forgotten_at = now

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` until the database takes it; a refusal is logged (its type only)."""
        delay = RETRY_FIRST
        while True:
            if self._abandoned:
                raise InboxAbandoned("the bot is stopping as a crash would")
            try:
                return await attempt()
            except Exception as error:  # locked, full or gone: wait and retry
                self.refused_writes += 1
                log.warning("%s: %s; retrying in %.2fs", what, type(error).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    # -- stopping -------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing being stored, handled or marked."""
        marking = self._marker is not None and not self._marker.done()
        return not self._handling and not self._storing and not marking

    async def drain(self) -> None:
        """Wait for every update handed over to be handled and marked (a clean stop): marks
        linger no longer."""
        while self._handling or (self._marker is not None and not self._marker.done()):
            await asyncio.gather(*self._handling.values(), return_exceptions=True)
            self._mark_now.set()
            if self._marker is not None:
                await asyncio.gather(self._marker, return_exceptions=True)

    def abandon(self) -> None:
        """Stop as a crash would: stores and handlers in flight are cancelled, nothing more is
        written, what was stored stays for the next start."""
        self._abandoned = True
        marker = [self._marker] if self._marker is not None else []
        for task in (*self._handling.values(), *self._storing, *marker):
            task.cancel()


def inbox_of(application: AnyApplication) -> UpdateInbox | None:
    queue = application.update_queue
    return queue if isinstance(queue, UpdateInbox) else None
