"""The delivery job: drains the outbox to Telegram, politely and without losing a message.

Rows are written by storage operations in the same transaction as the change they announce; this
job only sends them. It runs on PTB's JobQueue: a sweep every `delivery_sweep_seconds`, and an
immediate run whenever a transaction that queued rows commits (`storage.outbox` calls the hook
installed by `setup`). Only one drain runs at a time; a wake-up during a drain makes it go round
once more.

A drain claims due rows (case alerts before broadcasts, one chat's rows strictly in order) in a
short transaction, renders each in the recipient's language, sends it, and marks it sent with
Telegram's message id. It sends with its own `telegram.Bot` (same token and connection pool, but
WITHOUT the Application's rate limiter) and takes turns on the process's one `Pacer`
(jobs/pacer.py): `send_rate_per_second` overall, one message per second per chat.

Ownership. Each Delivery is an owner with a random id. A claim moves a row to `sending` for
exactly one owner (storage.outbox.claim); the owner renews the lease of every row it holds every
third of `delivery_lease_seconds` while it lives, however long a row waits for its turn (a 429
storm), and never sends a row whose lease it lost. A row whose lease ran out belongs to an owner
that is gone (a killed process): any claim makes it pending again. A clean stop gives its unsent
rows back at once. So a second process on the same database, started by mistake, shares the
outbox and sends nothing twice.

Failures: RetryAfter reschedules the row and pauses sending (pacer.refused). Network errors and
5xx are not failures of the message: the row backs off exponentially (capped at five minutes,
with jitter) and is retried for `delivery_horizon_hours` (24 h) from the first error of the run;
the first send that goes through after an outage makes every backing-off row due at once. Only a
definite refusal kills a row: Forbidden (the user blocked the bot: every row to them), BadRequest
(chat not found, bad markup), a group that moved. Staff hear of dead rows in ONE summary, once
the oldest has waited `dead_summary_seconds` (jobs/dead_letters.py), never one message each.
A send that timed out waiting for Telegram's answer may have been delivered (a slow API): it is
not repeated at once but once, a minute later, and taken as delivered if that times out too
(`_maybe_sent`); sends wait `bot.telegram_faults.SEND_READ_TIMEOUT` for the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
    TelegramError,
)
from telegram.ext import ExtBot

from bot import metrics
from bot.i18n import Translator
from bot.telegram_faults import Failure, failure_of
from bot.texts.messages import UnknownTemplateError, discreet, render
from bot.texts.messages.base import RenderedMessage
from jobs.dead_letters import DEAD_LETTER_TEMPLATE, HORIZON_SUFFIX, SUMMARY_TEMPLATE, report_dead
from jobs.pacer import (
    GROUP_INTERVAL,
    MAX_NAP,
    PER_CHAT_INTERVAL,
    WINDOW_MARGIN,
    Pacer,
    SendTicket,
)
from jobs.send import send_rendered
from storage import outbox
from storage.enums import OutboxKind
from storage.outbox import ClaimedMessage
from storage.reachability import CHAT_NOT_FOUND, record_unreachable
from storage.recipients import StaffContacts
from storage.send_budget import DatabaseBudget
from storage.users import mark_blocked

if TYPE_CHECKING:
    from bot.context import HotlineApplication
    from bot.services import Services

__all__ = [
    "DEAD_LETTER_TEMPLATE",
    "GROUP_INTERVAL",
    "PER_CHAT_INTERVAL",
    "SUMMARY_TEMPLATE",
    "WINDOW_MARGIN",
    "Delivery",
    "Pacer",
    "SendTicket",
    "backoff_seconds",
    "retry_after_seconds",
    "setup",
]

log = logging.getLogger(__name__)

DELIVERY_KEY = "delivery"
PACER_KEY = "pacer"
"""bot_data key of the Pacer shared with the Application's rate limiter (bot.pacing)."""
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 300.0
SETTLE_ATTEMPTS = 6
MAX_IN_FLIGHT = 32
"""Send requests in flight at once at most (PTB's httpx client): more only queue in the HTTP
connection pool, whose scan of its connections per request then costs more CPU than the request
itself."""
WORKER_IN_FLIGHT = 128
"""The same for a worker's aiohttp client, whose pool costs little: at a thousand a second and a
slow answer (a busy Bot API, a busy machine) 32 in flight would cap the rate."""
MAX_AT_PACER = 8
"""Claimed rows waiting at the pacer at once at most, the most pressing first (PriorityGate):
every waiter there re-checks at each turn, so a thousand of them cost a thousand wake-ups a send
(at 1,000/s one worker went from 73/s with all of them at the pacer to 292/s with 32 and 450/s
with 8, on the same loaded machine)."""
RECORD_BATCH = 500
RECORD_DELAY = 0.05
"""Sends are recorded in batches: at most this many seconds after a send, or RECORD_BATCH rows."""
OUTAGE_FAILURES = 3
"""Network errors in a row (no send went through between them) that make an outage: the first
send that goes through after one makes the backing-off rows due at once."""
WOKEN_CLAIM = 4
"""Rows claimed at once, beyond the pipeline's batch, when a commit queued rows during a drain:
the most pressing first, so a family's alert queued behind a second's worth of claimed
broadcast rows waits at the pacer's priority gate, not for those rows to be sent."""
MAYBE_SENT_ERROR = "TimedOut:maybe-sent"
MAYBE_SENT_DELAY = timedelta(minutes=1)
"""A send that timed out (Telegram may have delivered it) is tried once more, this much later."""


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, ... capped at five minutes."""
    ceiling: float = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random).random()
    return ceiling * (0.5 + 0.5 * jitter)


def retry_after_seconds(error: RetryAfter) -> float:
    value: object = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)  # type: ignore[arg-type]


class PriorityGate:
    """At most `size` holders at once; a waiter with a lower priority (the outbox's: case
    alerts before broadcasts) enters first, then the earlier one."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def enter(self, priority: int, give_up: Callable[[], bool]) -> bool:
        """True once in (then `leave` after); False, without entering, once `give_up()`."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return True
        entry = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), entry))
        try:
            while not entry.done():
                await asyncio.wait({entry}, timeout=MAX_NAP)
                if not entry.done() and give_up():
                    entry.cancel()
                    return False
        except BaseException:
            if entry.done() and not entry.cancelled():
                self.leave()  # let in while being cancelled: hand the place on
            else:
                entry.cancel()
            raise
        return True

    def leave(self) -> None:
        while self._waiting:
            _, _, entry = heapq.heappop(self._waiting)
            if not entry.done():
                entry.set_result(None)
                return
        self._free += 1


@dataclass(eq=False)
class Holding:
    """This owner's hold on one claimed row; `lost` once its lease was taken back."""

    row_id: int
    lost: bool = False


@dataclass
class DeliveryStats:
    sent: int = 0
    rescheduled: int = 0
    dead: int = 0
    blocked: int = 0
    drains: int = 0
    in_flight: int = 0
    renewed_until: datetime | None = None
    """The lease the last renewal gave (its clock reading + the lease): what tests wait on."""
    lost: int = 0
    recovered: int = 0
    released: int = 0
    summaries: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Delivery:
    """The outbox drain of one Application (kept in `application.bot_data[DELIVERY_KEY]`)."""

    def __init__(self, application: HotlineApplication, services: Services) -> None:
        self.application = application
        self.services = services
        settings = services.settings
        self.owner = secrets.token_hex(8)
        self.lease = timedelta(seconds=settings.delivery_lease_seconds)
        self.horizon = timedelta(hours=settings.delivery_horizon_hours)
        self.concurrency = max(1, min(16, int(settings.send_rate_per_second)))
        self.batch = max(self.concurrency * 2, int(settings.send_rate_per_second))
        shared = application.bot_data.get(PACER_KEY)
        self.pacer = shared if isinstance(shared, Pacer) else Pacer(settings.send_rate_per_second)
        self.stats = DeliveryStats()
        self.reports_dead = True
        """False in a `deliver` worker: the bot process alone summarises dead rows for staff."""
        self._requests = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._gate = PriorityGate(MAX_AT_PACER)
        self._lock = asyncio.Lock()
        self._again = False
        self._woken = False
        """A commit queued rows during the drain (not a sweep): claim a few beyond the batch."""
        self._nudge: asyncio.Event | None = None
        """The running pipeline's wake-up: set by `wake` so new rows are claimed at once."""
        self._bot: Bot | None = None
        self._held: dict[int, Holding] = {}
        self._abandoned: set[int] = set()
        self._unrecorded: dict[int, tuple[int | None, datetime]] = {}
        """Rows sent and not yet recorded (Telegram's message id, when): still held (and
        renewed) until recorded, in batches."""
        self._recorder: asyncio.Task[None] | None = None
        self._crashed = False
        """Set by `abandon`: stopped as a killed process would be; nothing more is written."""
        self._failures_in_a_row = 0
        self.staff = StaffContacts(services.admin_keys, services.staff_chat_key)
        # Admins are named in settings by Telegram id and may not have written to the bot yet
        # (no sealed id stored): their chats are known from there.
        self._admin_chats = services.admin_chats

    # -- waking ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Called right after a commit that queued rows: drain now (or once more)."""
        if self._crashed:
            return
        if self._lock.locked():
            self._woken = True
            self._go_round_again()
            return
        job_queue = self.application.job_queue
        if job_queue is not None and job_queue.scheduler.running:
            job_queue.run_once(self._job, 0, name="delivery:wake")

    async def _job(self, context: object) -> None:
        await self.drain()

    async def _sweep(self, context: object) -> None:
        """The periodic round: rows of gone senders back in the queue, a drain, the summary."""
        if self._crashed:
            return
        await self._recover_orphans()
        await self.drain()
        if self.reports_dead:
            await self.report_dead()

    # -- draining -------------------------------------------------------------------------------

    def use_bot(self, bot: Any, *, in_flight: int = MAX_IN_FLIGHT) -> None:
        """Send with this client instead (a worker's `jobs.bot_api.LeanBot`): anything with the
        `send_*` methods `jobs.send.send_rendered` calls, answering with a `message_id`; at most
        `in_flight` requests at once (its connection pool)."""
        self._bot = bot
        self._requests = asyncio.Semaphore(in_flight)

    @property
    def bot(self) -> Bot:
        """A Bot on the Application's token and connection pool, without its rate limiter."""
        if self._bot is None:
            app_bot = self.application.bot
            self._bot = ExtBot(
                token=app_bot.token,
                base_url=self.services.settings.api_base_url,
                base_file_url=app_bot.base_file_url,
                request=app_bot.request,
                get_updates_request=app_bot.request,
                defaults=app_bot.defaults,  # HTML, as every message the Application sends
            )
        return self._bot

    @property
    def alive(self) -> bool:
        """False once the Application stopped: PTB shields running jobs from cancellation, so a
        drain must notice by itself, and gives back the rows it had not sent."""
        return self.application.running and not self._crashed

    @property
    def held(self) -> frozenset[int]:
        """The ids of the rows this owner holds now (claimed, not yet settled)."""
        return frozenset(self._held)

    def abandon(self) -> None:
        """Stop as a killed process would (`bot.leadership.stop_as_a_crash`): from now on
        nothing is claimed, sent, recorded or given back, so the rows held stay `sending`
        until their lease runs out, as after a kill -9. Without it the stopping drain settled
        them (PTB shields running jobs from cancellation): a send cut off by the closing
        connection pool was put back in the queue although Telegram may have had it, and the
        next leader sent it again at once. Transactions already under way finish: cancelling
        them can leave a connection, and SQLite's write lock, held in this still-running
        process."""
        self._crashed = True

    async def drain(self, *, wait: bool = False) -> None:
        """Send everything due; returns when nothing is due (rows in backoff wait for a sweep).
        A drain already running goes round once more instead, unless `wait` (then this one
        waits its turn and drains itself)."""
        if self._crashed:
            return
        if self._lock.locked() and not wait:
            self._go_round_again()
            return
        async with self._lock:
            self.stats.drains += 1
            await self._pipeline()
            self.pacer.forget_idle_chats()
        if self.alive:
            await self._schedule_next_due()

    def _go_round_again(self) -> None:
        """The running drain claims again at once (rows were queued or became due)."""
        self._again = True
        if self._nudge is not None:
            self._nudge.set()

    async def _pipeline(self) -> None:
        """Keep the pacer fed: claim the next rows while earlier ones still wait for their turn.

        Waiting for a whole batch to finish before claiming the next left the sender idle
        between batches (0.93 of the allowed rate). Claimed rows are leased, and a claim skips
        chats with a row in flight, so overlapping claims keep each chat's order.
        """
        tasks: set[asyncio.Task[None]] = set()
        low_water = max(1, self.batch // 2)
        finished = asyncio.Event()
        self._nudge = finished

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            finished.set()

        try:
            while self.alive:
                self._again = False
                woken, self._woken = self._woken, False
                if len(tasks) < low_water:
                    claimed = await self._claim(self.batch - len(tasks))
                elif woken and len(tasks) < self.batch + WOKEN_CLAIM:
                    claimed = await self._claim(WOKEN_CLAIM)  # an alert may be among them
                else:
                    claimed = []
                for row in claimed:
                    holding = Holding(row.id)
                    earlier = self._held.get(row.id)
                    if earlier is not None:  # its lease ran out during a stall: claimed anew
                        earlier.lost = True
                    self._held[row.id] = holding
                    task = asyncio.create_task(self._deliver(row, holding))
                    tasks.add(task)
                    task.add_done_callback(done)
                if tasks:
                    # One event for all of them: asyncio.wait on a thousand tasks costs a
                    # callback on each at every wake-up (most of the CPU at 1,000/s); a wake
                    # sets it too (`_go_round_again`).
                    if not self._again:
                        finished.clear()
                        await finished.wait()
                    continue
                if not claimed and not self._again:
                    break
        finally:
            self._nudge = None
            if not self._crashed:
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
                await self.flush_records()
                await self._release_abandoned()

    async def _recover_orphans(self) -> None:
        """Rows whose lease ran out (their owner died) are due again; a live owner's rows,
        renewed while they wait, are never touched. Run by each sweep (the first at start)."""
        services = self.services
        try:
            async with services.sessions() as session, session.begin():
                recovered = await outbox.requeue_expired_leases(session, now=services.clock())
        except SQLAlchemyError as error:
            log.warning("delivery: orphans not recovered (%s)", type(error).__name__)
            return
        if recovered:
            self.stats.recovered += recovered
            log.info("delivery: %d rows left in flight by a gone sender are due again", recovered)

    async def _claim(self, limit: int) -> list[ClaimedMessage]:
        services = self.services
        async with services.sessions() as session, session.begin():
            return await outbox.claim(
                session,
                services.cipher,
                now=services.clock(),
                lease=self.lease,
                limit=limit,
                owner=self.owner,
                recover=False,
            )

    async def _schedule_next_due(self) -> None:
        """Come back exactly when the next backed-off row is due, if before the next sweep."""
        services = self.services
        async with services.sessions() as session:
            due = await outbox.next_due_at(session)
        job_queue = self.application.job_queue
        if due is None or job_queue is None or not job_queue.scheduler.running:
            return
        delay = (due - services.clock()).total_seconds()
        if delay < services.settings.delivery_sweep_seconds:
            job_queue.run_once(self._job, max(0.05, delay), name="delivery:due")

    async def _release_abandoned(self) -> None:
        """Rows given up unsent because the Application stopped are pending again at once."""
        if not self._abandoned:
            return
        ids, self._abandoned = self._abandoned, set()
        try:
            async with self.services.sessions() as session, session.begin():
                released = await outbox.release(session, ids, owner=self.owner)
        except SQLAlchemyError as error:  # they go out again once their lease runs out
            log.warning("delivery: %d rows not given back (%s)", len(ids), type(error).__name__)
            return
        self.stats.released += released
        if released:
            log.info("delivery: stopping; %d unsent rows given back to the queue", released)

    # -- leases ---------------------------------------------------------------------------------

    async def renew_leases(self, context: object = None) -> None:
        """Extend the lease of every row this owner holds; a row it no longer holds (its lease
        ran out during a stall, and another sender took it) is marked lost: never sent here."""
        if self._crashed:
            return
        await self._record_unrecorded()
        holdings = dict(self._held)
        if not holdings:
            return
        services = self.services
        until = services.clock() + self.lease
        try:
            async with services.sessions() as session, session.begin():
                still = await outbox.renew_leases(
                    session, owner=self.owner, ids=list(holdings), until=until
                )
        except SQLAlchemyError as error:
            log.warning("delivery: leases not renewed (%s); next try soon", type(error).__name__)
            return
        self.stats.renewed_until = until
        lost = [
            holding
            for row_id, holding in holdings.items()
            if row_id not in still and self._held.get(row_id) is holding
        ]
        for holding in lost:
            holding.lost = True
        if lost:
            self.stats.lost += len(lost)
            log.warning(
                "delivery: %d rows were taken back after their lease ran out; not sending them",
                len(lost),
            )

    # -- one row --------------------------------------------------------------------------------

    def _render(self, row: ClaimedMessage) -> RenderedMessage:
        services = self.services
        tr = services.i18n.get(row.language or services.settings.default_language)
        return discreet_version(row, tr, render(row.template, tr, row.params))

    async def _send(self, row: ClaimedMessage, message: RenderedMessage) -> Message:
        assert row.telegram_chat_id is not None
        return await send_rendered(self.bot, row.telegram_chat_id, message)

    async def _deliver(self, row: ClaimedMessage, holding: Holding) -> None:
        try:
            await self._deliver_held(row, holding)
        except Exception as error:  # its outcome was not written: after its lease it is due again
            log.warning(
                "delivery: row %d not settled (%s); due again after its lease",
                row.id,
                type(getattr(error, "orig", None) or error).__name__,
            )
        finally:
            if row.id not in self._unrecorded and self._held.get(row.id) is holding:
                del self._held[row.id]

    async def _deliver_held(self, row: ClaimedMessage, holding: Holding) -> None:
        if self._crashed:
            return
        if row.frozen:
            await self._withhold(row)
            return
        if row.telegram_chat_id is None and row.chat_id in self._admin_chats:
            row = dataclasses.replace(row, telegram_chat_id=self._admin_chats[row.chat_id])
        if row.telegram_chat_id is None:
            await self._withhold(row, reason="recipient unknown")
            return
        try:
            message = self._render(row)
        except (UnknownTemplateError, KeyError, ValueError) as error:
            await self._give_up(row, f"render:{type(error).__name__}")
            return

        # The pacer (in memory) knows chats by their Telegram id, as the replies' rate limiter does.
        def give_up() -> bool:
            return holding.lost or not self.alive

        if not await self._gate.enter(row.priority, give_up):
            ticket = None
        else:
            try:
                ticket = await self.pacer.wait_turn(
                    row.telegram_chat_id, priority=row.priority, give_up=give_up
                )
            finally:
                self._gate.leave()
        if ticket is not None and (holding.lost or not self.alive):
            self.pacer.finish(ticket)
            ticket = None
        if ticket is None:
            if not holding.lost:
                self._abandoned.add(row.id)
            return
        self.stats.in_flight += 1
        try:
            try:
                async with self._requests:  # within the connection pool: no queue in httpcore
                    sent = await self._send(row, message)
            finally:
                self.pacer.finish(ticket)
        except TelegramError as error:
            if not self._crashed:  # a crashed process records no outcome
                await self._failed(row, error)
        else:
            if not self._crashed:
                await self._settle_sent(row, sent.message_id)
        finally:
            self.stats.in_flight -= 1

    async def _failed(self, row: ClaimedMessage, error: TelegramError) -> None:
        """Settle a send that Telegram refused or that did not go through."""
        if isinstance(error, RetryAfter):
            await self._rate_limited(row, retry_after_seconds(error))
        elif isinstance(error, Forbidden):
            await self._blocked(row)
        elif isinstance(error, BadRequest):
            code = _error_code(error)
            await self._give_up(row, f"BadRequest:{code}")
            if code == CHAT_NOT_FOUND and row.kind == OutboxKind.STAFF_ALERT:
                await self._unreachable(row)
        elif isinstance(error, ChatMigrated):
            await self._give_up(row, "ChatMigrated")
        # network errors, timeouts, 5xx: Telegram is away
        elif failure_of(error) is Failure.MAYBE_SENT:
            await self._maybe_sent(row)
        else:
            await self._retry_later(row, type(error).__name__)

    async def _settle_sent(self, row: ClaimedMessage, message_id: int) -> None:
        """The message is out: it is recorded with others in a batch (`_record_sends`), and
        stays held by this owner, its lease renewed, until it is."""
        metrics.outbox_send(row.kind, "sent")
        if self._failures_in_a_row >= OUTAGE_FAILURES:
            await self._outage_over()
        self._failures_in_a_row = 0
        self._unrecorded[row.id] = (message_id, self.services.clock())
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_sends())

    async def _record_sends(self) -> None:
        """Record sends in batches (one transaction for up to RECORD_BATCH rows, at most
        RECORD_DELAY after a send) until none is left; a batch that cannot be recorded (any
        error: a locked SQLite, a pool timeout, a lost connection) is retried with backoff and,
        after SETTLE_ATTEMPTS, by the lease renewal, its rows held by this owner meanwhile."""
        failures = 0
        while self._unrecorded and not self._crashed:
            if len(self._unrecorded) < RECORD_BATCH:
                await asyncio.sleep(RECORD_DELAY)
            if await self._record_batch():
                failures = 0
                continue
            failures += 1
            if failures >= SETTLE_ATTEMPTS:
                log.error(
                    "delivery: %d rows sent but not yet recorded; held until they are",
                    len(self._unrecorded),
                )
                return
            await asyncio.sleep(backoff_seconds(failures))

    async def _record_batch(self) -> bool:
        batch = list(itertools.islice(self._unrecorded.items(), RECORD_BATCH))
        if not batch:
            return True
        services = self.services
        try:
            async with services.sessions() as session, session.begin():
                await outbox.mark_sent_many(
                    session, [(row_id, message_id, at) for row_id, (message_id, at) in batch]
                )
        except Exception as error:  # whatever it is, the rows stay held and are tried again
            reason = getattr(error, "orig", None) or error
            log.warning(
                "delivery: %d rows sent, recording them failed (%s)",
                len(batch),
                type(reason).__name__,
            )
            return False
        for row_id, _ in batch:
            self._unrecorded.pop(row_id, None)
            self._held.pop(row_id, None)
        self.stats.sent += len(batch)
        return True

    async def _record_unrecorded(self) -> None:
        """The renewal's turn: record what the batches could not (the database is back)."""
        while self._unrecorded and (self._recorder is None or self._recorder.done()):
            if not await self._record_batch():
                return

    async def flush_records(self) -> None:
        """Until every send so far is recorded (or its batches gave up: the renewal goes on)."""
        recorder = self._recorder
        if recorder is not None and not recorder.done():
            await asyncio.gather(recorder, return_exceptions=True)

    async def _outage_over(self) -> None:
        """A send went through after several network errors in a row: Telegram is back, so
        the rows backing off from the outage are due now, not at the end of their backoff."""
        services = self.services
        try:
            async with services.sessions() as session, session.begin():
                due = await outbox.retry_failing_now(session, now=services.clock())
        except SQLAlchemyError as error:
            log.warning("delivery: backing-off rows not made due (%s)", type(error).__name__)
            return
        if due:
            log.info("delivery: Telegram answers again; %d backing-off rows are due now", due)
            self._go_round_again()

    async def _withhold(self, row: ClaimedMessage, reason: str = "frozen") -> None:
        """The recipient is frozen (a seized phone): checked when sent, not when queued, so
        rows queued before the freeze are cancelled too, never sent. Also a recipient whose
        Telegram id is not known (gone since, or never seen)."""
        async with self.services.sessions() as session, session.begin():
            await outbox.mark_withheld(session, row.id, reason=reason, owner=self.owner)

    async def _rate_limited(self, row: ClaimedMessage, seconds: float) -> None:
        self.pacer.refused(row.telegram_chat_id or row.chat_id, seconds)
        metrics.outbox_send(row.kind, "429")
        self._count("RetryAfter")
        services = self.services
        async with services.sessions() as session, session.begin():
            await outbox.reschedule(
                session,
                row.id,
                not_before=services.clock() + timedelta(seconds=seconds),
                error="RetryAfter",
                count_attempt=False,
                owner=self.owner,
            )
        self.stats.rescheduled += 1

    async def _retry_later(self, row: ClaimedMessage, reason: str) -> None:
        """Telegram could not be reached: back off and retry until the horizon, measured from
        the first error of this run; past it the row is dead."""
        self._count(reason)
        self._failures_in_a_row += 1
        services = self.services
        now = services.clock()
        deadline = (row.failing_since or now) + self.horizon
        if now >= deadline:
            chat = services.cipher.pseudonym(row.chat_id)
            log.warning("outbox %d to chat %s: %s past the horizon, dead", row.id, chat, reason)
            await self._give_up(row, f"{reason}{HORIZON_SUFFIX}")
            return
        metrics.outbox_send(row.kind, "retry")
        not_before = min(now + timedelta(seconds=backoff_seconds(row.attempts + 1)), deadline)
        async with services.sessions() as session, session.begin():
            await outbox.reschedule(
                session,
                row.id,
                not_before=not_before,
                error=reason,
                failing_since=now,
                owner=self.owner,
            )
        self.stats.rescheduled += 1

    async def _maybe_sent(self, row: ClaimedMessage) -> None:
        """The send timed out waiting for Telegram's answer (`SEND_READ_TIMEOUT`, 30 s): Telegram
        had the request and may have delivered it. Sending again at once is how a slow API
        turned one family's alert into three; so the row is sent once more, after
        MAYBE_SENT_DELAY (in case the first really was lost), and if that send times out too it
        is recorded as sent (Telegram had it twice): never a third copy."""
        self._count("TimedOut")
        services = self.services
        now = services.clock()
        async with services.sessions() as session, session.begin():
            before = await outbox.last_error(session, row.id)
            if before == MAYBE_SENT_ERROR:
                await outbox.mark_sent(session, row.id, telegram_message_id=None, now=now)
            else:
                await outbox.reschedule(
                    session,
                    row.id,
                    not_before=now + MAYBE_SENT_DELAY,
                    error=MAYBE_SENT_ERROR,
                    owner=self.owner,
                )
        if before == MAYBE_SENT_ERROR:
            log.warning("delivery: row %d timed out twice; taken as delivered", row.id)
            self.stats.sent += 1
        else:
            self.stats.rescheduled += 1

    async def _blocked(self, row: ClaimedMessage) -> None:
        """The user blocked the bot: remember it, and never try them again until they write."""
        metrics.outbox_send(row.kind, "dead")
        self._count("Forbidden")
        services = self.services
        async with services.sessions() as session, session.begin():
            if row.chat_id > 0:
                await mark_blocked(session, row.chat_id)
            given_up = await outbox.mark_chat_dead(
                session, row.chat_id, reason="Forbidden", now=services.clock()
            )
        chat = services.cipher.pseudonym(row.chat_id)
        log.info("chat %s blocked the bot; %d queued messages dropped", chat, given_up)
        self.stats.blocked += 1
        self.stats.dead += given_up

    async def _unreachable(self, row: ClaimedMessage) -> None:
        """A staff notice found no chat (never opened the bot, or the bot left the group):
        the log and the other staff hear it once, not once per notice."""
        services = self.services
        async with services.sessions() as session, session.begin():
            first = await record_unreachable(
                session, services.cipher, row.chat_id, staff=self.staff, now=services.clock()
            )
        if first:
            chat = services.cipher.pseudonym(row.chat_id)
            log.warning(
                "delivery: staff chat %s cannot be reached (chat not found); its notices are "
                "given up, the other staff are told once",
                chat,
            )

    async def _give_up(self, row: ClaimedMessage, reason: str) -> None:
        """The row is dead; staff hear of it in the next summary (`report_dead`)."""
        metrics.outbox_send(row.kind, "dead")
        services = self.services
        async with services.sessions() as session, session.begin():
            await outbox.mark_dead(
                session, row.id, reason=reason, now=services.clock(), owner=self.owner
            )
        self.stats.dead += 1

    def _count(self, reason: str) -> None:
        self.stats.errors[reason] = self.stats.errors.get(reason, 0) + 1

    # -- dead rows ------------------------------------------------------------------------------

    async def report_dead(self) -> int:
        """Queue one summary of the dead rows staff have not heard of (once the oldest waited
        `dead_summary_seconds`); returns how many rows it covers."""
        services = self.services
        delay = timedelta(seconds=services.settings.dead_summary_seconds)
        try:
            covered = await report_dead(
                services.sessions,
                services.cipher,
                self.staff,
                now=services.clock(),
                gather=delay,
                horizon_hours=services.settings.delivery_horizon_hours,
            )
        except SQLAlchemyError as error:
            log.warning("delivery: dead rows not summarised (%s)", type(error).__name__)
            return 0
        if covered:
            self.stats.summaries += 1
        return covered


def discreet_version(
    row: ClaimedMessage, tr: Translator, message: RenderedMessage
) -> RenderedMessage:
    """A family-facing row to a discreet recipient goes out as the notice with its Show button
    (bot/texts/messages/discreet.py); it is rendered in full first, so bad parameters still fail."""
    if discreet.is_discreet(row.template, row.discreet):
        return discreet.notice(tr, row.id)
    return message


def _error_code(error: TelegramError) -> str:
    """A short, data-free tag for a BadRequest (Telegram's text can quote the message)."""
    text = error.message.lower()
    for known in ("can't parse entities", "chat not found", "message is too long", "wrong file"):
        if known in text:
            return known.replace(" ", "_").replace("'", "")
    return "other"


def setup(application: HotlineApplication) -> Delivery:
    """Create the drain, schedule its sweep and lease renewal, and have every commit that queued
    rows wake it."""
    from bot.services import SERVICES_KEY

    services = application.bot_data[SERVICES_KEY]
    delivery = Delivery(application, services)
    application.bot_data[DELIVERY_KEY] = delivery
    if services.engine.dialect.name == "postgresql" and delivery.pacer.budget is None:
        # Other processes may send on this database (`python -m bot deliver` workers, a standby
        # taking over): every send of this process takes its turn from the shared budget too.
        delivery.pacer.share(DatabaseBudget(services.sessions), owner=delivery.owner)
    services.sessions.configure(info={outbox.ON_QUEUED_HOOK: delivery.wake})
    if application.job_queue is not None:
        once: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        application.job_queue.run_repeating(
            delivery._sweep,
            interval=services.settings.delivery_sweep_seconds,
            first=0.0,
            name="delivery:sweep",
            job_kwargs=once,
        )
        application.job_queue.run_repeating(
            delivery.renew_leases,
            interval=services.settings.delivery_lease_seconds / 3,
            first=services.settings.delivery_lease_seconds / 3,
            name="delivery:lease",
            job_kwargs=once,
        )
    return delivery
