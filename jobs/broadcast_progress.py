"""Keeps each broadcast's ONE progress message up to date, then turns it into the final summary.

Every few seconds (never more often: a staff chat is not a ticker) the job reads each unfinished
broadcast's counts from the outbox rows and edits its progress message:
`Sent 1,234 of 10,000 · 12% · about 5 min left` under a text bar. Everything it needs is in the
database (counts from rows, the message id on the Broadcast row), so after a restart it simply
carries on editing the same message. When no row is left it edits in the summary (delivered,
blocked, failed) and marks the broadcast summarised. A broadcast with texts in several languages
shows a line per text (`Українська: 1,200 of 2,000`): each recipient counts under the text they
read (`storage.broadcasts.counts_by_language`).

It also finishes queueing: a broadcast's recipients are queued a chunk per transaction
(`storage.broadcasts.queue_all`), by the Send button's handler through `ProgressReporter.queue`;
a broadcast that a dead process left half-queued (`queue_open`) is continued at the next tick, from
the last recipient queued, each recipient once.

Edits share Telegram's overall limit with the delivery job's sends, so each edit first takes a
turn from the delivery job's pacer: the two together never exceed `send_rate_per_second`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from telegram import Bot
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application

from bot.i18n import Translator
from bot.texts.vocabulary import LANGUAGE_NAMES
from storage import broadcasts
from storage.broadcasts import BroadcastView, Counts
from storage.enums import BroadcastStatus
from storage.identity import telegram_id_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.context import HotlineApplication
    from bot.services import Services

log = logging.getLogger(__name__)

EVERY_SECONDS = 3.0
BAR_WIDTH = 20
RATE_WINDOW = timedelta(seconds=30)
PROGRESS_KEY = "broadcast_progress"


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "▓" * filled + "░" * (width - filled)


def minutes_left(remaining: int, rate: float) -> int:
    """Whole minutes, rounded up, at `rate` messages a second (at least 1 while any remain)."""
    if remaining <= 0:
        return 0
    return max(1, math.ceil(remaining / max(rate, 0.1) / 60))


def language_lines(tr: Translator, by_language: dict[str, Counts], *, final: bool) -> list[str]:
    """A line per text of a broadcast in several languages (none for a single text)."""
    if len(by_language) < 2:
        return []
    if final:
        line = tr.gettext("{language}: delivered {delivered} of {total}")
    else:
        line = tr.gettext("{language}: sent {done} of {total}")
    return [
        line.format(
            language=LANGUAGE_NAMES.get(code, code),
            delivered=tr.format_number(numbers.delivered),
            done=tr.format_number(numbers.done),
            total=tr.format_number(numbers.total),
        )
        for code, numbers in by_language.items()
    ]


def progress_text(
    tr: Translator,
    numbers: Counts,
    rate: float,
    *,
    paused: bool = False,
    by_language: dict[str, Counts] | None = None,
) -> str:
    done, total = numbers.done, numbers.total
    ratio = done / total if total else 1.0
    line = tr.gettext("Sent {done} of {total} · {percent} · about {minutes} min left").format(
        done=tr.format_number(done),
        total=tr.format_number(total),
        percent=tr.format_percent(math.floor(ratio * 100) / 100),
        minutes=tr.format_number(minutes_left(numbers.pending, rate)),
    )
    text = "\n".join([bar(done, total), line, *language_lines(tr, by_language or {}, final=False)])
    if paused:
        text += "\n" + tr.gettext("Paused. Resume it from /broadcasts.")
    return text


def summary_text(tr: Translator, item: BroadcastView) -> str:
    numbers = item.counts
    if item.status == BroadcastStatus.CANCELLED:
        head = tr.gettext("Broadcast #{id} was cancelled.").format(id=item.id)
    else:
        head = tr.gettext("Broadcast #{id} is finished.").format(id=item.id)
    body = tr.gettext(
        "Delivered: {delivered}\nBlocked the bot: {blocked}\nFailed: {failed}"
    ).format(
        delivered=tr.format_number(numbers.delivered),
        blocked=tr.format_number(numbers.blocked),
        failed=tr.format_number(numbers.failed),
    )
    if numbers.cancelled:
        body += "\n" + tr.gettext("Not sent (cancelled): {count}").format(
            count=tr.format_number(numbers.cancelled)
        )
    lines = language_lines(tr, item.by_language, final=True)
    return "\n".join([bar(numbers.done, numbers.total), head, body, *lines])


class ProgressReporter:
    """One per Application; remembers the last text shown so it edits only on change."""

    def __init__(self, application: HotlineApplication, services: Services) -> None:
        self.application = application
        self.services = services
        self.shown: dict[int, str] = {}
        self.edits = 0
        self.queuing: dict[int, asyncio.Event] = {}  # set when that call ends
        self.after_chunk: Callable[[broadcasts.Chunk], Awaitable[None]] | None = None
        """Told of each chunk committed (tests and benchmarks count them)."""

    async def queue(self, broadcast_id: int) -> None:
        """Queue what remains of the broadcast's recipients, a chunk per transaction; for a
        broadcast this process is queueing already, wait for that call to end."""
        if (running := self.queuing.get(broadcast_id)) is not None:
            await running.wait()
            return
        ended = self.queuing[broadcast_id] = asyncio.Event()
        services = self.services
        try:
            await broadcasts.queue_all(
                services.sessions,
                services.cipher,
                broadcast_id,
                admin_ids=services.admin_keys,
                default_language=services.settings.default_language,
                clock=services.clock,
                after_chunk=self.after_chunk,
            )
        finally:
            del self.queuing[broadcast_id]
            ended.set()

    async def tick(self, context: object = None) -> None:
        services = self.services
        async with services.sessions() as session:
            half_queued = await broadcasts.open_queues(session)
        for broadcast_id in half_queued:  # a process died between chunks: carry on
            if broadcast_id not in self.queuing and self.application.running:
                await self.queue(broadcast_id)
        async with services.sessions() as session, session.begin():
            items = await broadcasts.unfinished(session)
            for item in items:
                if item.status == BroadcastStatus.SENDING:
                    await broadcasts.mark_done_if_drained(session, item.id)
            items = [
                await self._with_languages(session, item)
                for item in await broadcasts.unfinished(session)
            ]
            rates = {
                item.id: await broadcasts.recent_rate(
                    session, item.id, since=services.clock() - RATE_WINDOW
                )
                for item in items
            }
        for item in items:
            if not self.application.running:
                return
            await self._show(item, rates.get(item.id, 0.0))

    async def _with_languages(self, session: AsyncSession, item: BroadcastView) -> BroadcastView:
        if len(item.languages) < 2:
            return item
        by_language = await broadcasts.counts_by_language(
            session,
            item.id,
            item.languages,
            default_language=self.services.settings.default_language,
        )
        return dataclasses.replace(item, by_language=by_language)

    async def _show(self, item: BroadcastView, measured_rate: float) -> None:
        services = self.services
        if item.progress_chat_id is None or item.progress_message_id is None:
            return
        tr = self.services.i18n.get(item.author_language)
        final = item.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED)
        if final:
            text = summary_text(tr, item)
        else:
            rate = measured_rate or services.settings.send_rate_per_second
            text = progress_text(
                tr,
                item.counts,
                rate,
                paused=item.status == BroadcastStatus.PAUSED,
                by_language=item.by_language,
            )
        if self.shown.get(item.id) != text:
            async with services.sessions() as session:
                # Stored as the author's user key (a private chat): open where to edit.
                chat = services.admin_chats.get(item.progress_chat_id) or await telegram_id_of(
                    session, services.cipher, item.progress_chat_id
                )
            if chat is None or not await self._edit(
                chat, item.progress_message_id, text, pace_as=item.progress_chat_id
            ):
                return
            self.shown[item.id] = text
        if final:
            async with services.sessions() as session, session.begin():
                await broadcasts.mark_summarised(session, item.id, now=services.clock())
            self.shown.pop(item.id, None)

    async def _edit(self, chat_id: int, message_id: int, text: str, *, pace_as: int) -> bool:
        """Edit on the delivery job's pacer and Bot (no second rate limiter in the way); logs
        name the chat by the pseudonym of its stored id (`pace_as`: a private chat's user key)."""
        from jobs.delivery import DELIVERY_KEY, Delivery

        delivery = self.application.bot_data.get(DELIVERY_KEY)
        bot: Bot = self.application.bot
        turn: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if isinstance(delivery, Delivery):
            turn = delivery.pacer.turn(chat_id)  # the pacer knows chats by their Telegram id
            bot = delivery.bot
        try:
            async with turn:
                await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return True
            chat = self.services.cipher.pseudonym(pace_as)
            log.warning("broadcast progress in chat %s: BadRequest", chat)
            return "not found" in error.message.lower()  # deleted: stop trying
        except TelegramError as error:
            chat = self.services.cipher.pseudonym(pace_as)
            log.info("broadcast progress in chat %s: %s, retrying", chat, type(error).__name__)
            return False
        self.edits += 1
        return True


def setup(application: HotlineApplication) -> ProgressReporter:
    from bot.services import SERVICES_KEY

    reporter = ProgressReporter(application, application.bot_data[SERVICES_KEY])
    application.bot_data[PROGRESS_KEY] = reporter
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            reporter.tick,
            interval=EVERY_SECONDS,
            first=EVERY_SECONDS,
            name="broadcast:progress",
            job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
    return reporter


def reporter_of(application: Application[Any, Any, Any, Any, Any, Any]) -> ProgressReporter:
    """The Application's reporter (one without the repeating job where jobs are not set up)."""
    from bot.services import SERVICES_KEY

    reporter = application.bot_data.get(PROGRESS_KEY)
    if not isinstance(reporter, ProgressReporter):
        hotline = cast("HotlineApplication", application)
        reporter = ProgressReporter(hotline, application.bot_data[SERVICES_KEY])
        application.bot_data[PROGRESS_KEY] = reporter
    return reporter
