"""The delivery job: drains the outbox to Telegram, politely and without losing a message.

Rows are written by storage operations in the same transaction as the change they announce; this
job only sends them. It runs on PTB's JobQueue: a sweep every `delivery_sweep_seconds`, and an
immediate run whenever a transaction that queued rows commits (`storage.outbox` calls the hook
installed by `setup`). Only one drain runs at a time; a wake-up during a drain makes it go round
once more.

A drain claims due rows (case alerts before broadcasts, one chat's rows strictly in order) in a
short transaction that leases them, renders each in the recipient's language, sends it, and marks
it sent with Telegram's message id. It sends with its own `telegram.Bot` (same token and
connection pool, but WITHOUT the Application's AIORateLimiter), so people talking to the bot never
wait behind outbox traffic; it paces itself at `send_rate_per_second` overall and one message per
second per chat, with several sends in flight at once.

Failures: RetryAfter reschedules the row and pauses all sending for that long; network errors
back off exponentially with jitter and, after MAX_ATTEMPTS, the row is dead and staff are told;
Forbidden (the user blocked the bot) marks the user blocked and gives up every row to them;
BadRequest gives up the row with the error's type (never its text, which can quote the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError
from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.i18n import Translator
from bot.texts.messages import UnknownTemplateError, discreet, render
from bot.texts.messages.base import RenderedMessage
from jobs.send import send_rendered
from storage import outbox
from storage.enums import OutboxKind
from storage.outbox import PRIORITY_STAFF, ClaimedMessage, Outgoing
from storage.reachability import CHAT_NOT_FOUND, record_unreachable
from storage.recipients import StaffContacts, staff_desk
from storage.users import mark_blocked

if TYPE_CHECKING:
    from bot.context import HotlineApplication
    from bot.services import Services

log = logging.getLogger(__name__)

DELIVERY_KEY = "delivery"
PACER_KEY = "pacer"
"""bot_data key of the Pacer shared with the Application's rate limiter (bot.pacing)."""
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 300.0
PER_CHAT_INTERVAL = 1.0
GROUP_INTERVAL = 3.0
"""Telegram lets a bot send about 20 messages a minute to one group."""
WINDOW_MARGIN = 0.03
"""Seconds added to each window: headroom for the replies people are waiting for, which go out
beside the outbox (the Pacer itself does not rely on timing)."""
DEAD_LETTER_TEMPLATE = "cases.dead_letter_staff"
SETTLE_ATTEMPTS = 6


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


class SendTicket:
    """One send's place in the pacer: `finish` it when the request returned (or failed)."""

    __slots__ = ("_done", "chat_id", "done_at")

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.done_at: float | None = None
        self._done: asyncio.Future[None] | None = None

    async def finished(self) -> None:
        if self.done_at is None:
            if self._done is None:
                self._done = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._done)  # a cancelled waiter must not cancel the others

    def _mark(self, now: float) -> None:
        self.done_at = now
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


class Pacer:
    """At most `rate` sends in any window of one second, one send per chat per second (one per
    GROUP_INTERVAL to a group), and pauses after a RetryAfter. Single-threaded asyncio: no lock.

    Telegram (and the sandbox) count a send when it ARRIVES, which no sender can see, and a
    busy machine can delay a request by any amount between the decision and the wire. So the
    pacer reasons about what it can see: a request arrived no later than its answer came back.
    The k-th send may start only once the (k - rate)-th has been answered and a second (plus
    WINDOW_MARGIN) has passed since: then it arrives at least a second after the other did,
    however late either was scheduled; likewise a chat's next send starts a second after its
    previous one was answered. A late sleeper re-checks everything when it wakes. Sends are also
    spaced 1/rate apart, so a window fills smoothly rather than in a burst.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.interval = 1.0 / rate
        self.capacity = max(1, int(rate))
        self.span = self.capacity / rate + WINDOW_MARGIN
        self._recent: deque[SendTicket] = deque(maxlen=self.capacity)
        self._last_start = -math.inf
        self._chat_next: dict[int, float] = {}
        self._chat_sending: dict[int, SendTicket] = {}
        self._ready: Counter[int] = Counter()  # sends whose chat is ready, by priority
        self.paused_until = 0.0

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def pause(self, seconds: float) -> None:
        """Everything waits (a RetryAfter for the bot as a whole)."""
        self.paused_until = max(self.paused_until, self._now() + seconds)

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Only this chat waits (a group's own limit), the others go on."""
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), self._now() + seconds)

    async def wait_turn(
        self, chat_id: int, *, urgent: bool = False, priority: int = 0
    ) -> SendTicket:
        """Sleep until this send may start; the caller sends, then calls `finish(ticket)`.

        Among sends whose chat is ready, a lower `priority` goes first (the outbox's row
        priority: case alerts before staff notices before broadcasts). An `urgent` send (a reply
        in the conversation a person is having) goes before all of them and keeps to the overall
        window and the pauses but not to its chat's spacing: Telegram allows short bursts in a
        chat, and a conversation must not feel slow. The outbox's next send to that chat still
        waits its second after it."""
        rank = -1 if urgent else priority
        counted = False
        try:
            while True:
                sending = None if urgent else self._chat_sending.get(chat_id)
                now = self._now()
                chat_ready = 0.0 if urgent else self._chat_next.get(chat_id, 0.0)
                if sending is not None or chat_ready > now:
                    if counted:
                        self._ready[rank] -= 1
                        counted = False
                    if sending is not None:
                        await sending.finished()
                    else:
                        await self._sleep(chat_ready - now)
                    continue
                if not counted:
                    self._ready[rank] += 1
                    counted = True
                oldest = self._recent[0] if len(self._recent) == self.capacity else None
                if oldest is not None and oldest.done_at is None:
                    await oldest.finished()
                    continue
                ready = max(
                    self.paused_until,
                    self._last_start + self.interval,
                    oldest.done_at + self.span if oldest and oldest.done_at is not None else 0.0,
                )
                if ready > now:
                    await self._sleep(ready - now)
                    continue
                if any(count and other < rank for other, count in self._ready.items()):
                    await self._sleep(self.interval)  # a more pressing send goes first
                    continue
                ticket = SendTicket(chat_id)
                self._recent.append(ticket)
                if not urgent:
                    self._chat_sending[chat_id] = ticket
                self._last_start = now
                return ticket
        finally:
            if counted:
                self._ready[rank] -= 1

    def refused(self, chat_id: int, seconds: float) -> None:
        """Telegram said RetryAfter for a send to `chat_id`. A group has its own limit; so does a
        private chat when the overall window was not full (then it was that chat's limit):
        only that chat waits. Otherwise everything waits."""
        now = self._now()
        started = sum(1 for ticket in self._recent if ticket.done_at is None or
                      ticket.done_at > now - self.span)  # fmt: skip
        if chat_id < 0 or started < self.capacity:
            self.pause_chat(chat_id, seconds)
        else:
            self.pause(seconds)

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int, *, urgent: bool = False) -> AsyncIterator[SendTicket]:
        """`async with pacer.turn(chat):` send inside; the ticket is finished however it ends."""
        ticket = await self.wait_turn(chat_id, urgent=urgent)
        try:
            yield ticket
        finally:
            self.finish(ticket)

    def finish(self, ticket: SendTicket) -> None:
        """The request came back (sent, refused or failed): its window and its chat move on."""
        now = self._now()
        interval = GROUP_INTERVAL if ticket.chat_id < 0 else PER_CHAT_INTERVAL
        self._chat_next[ticket.chat_id] = max(
            self._chat_next.get(ticket.chat_id, 0.0), now + interval + WINDOW_MARGIN
        )
        if self._chat_sending.get(ticket.chat_id) is ticket:
            del self._chat_sending[ticket.chat_id]
        ticket._mark(now)

    def forget_idle_chats(self) -> None:
        now = self._now()
        for chat_id in [c for c, ready in self._chat_next.items() if ready < now]:
            del self._chat_next[chat_id]


@dataclass
class DeliveryStats:
    sent: int = 0
    rescheduled: int = 0
    dead: int = 0
    blocked: int = 0
    drains: int = 0
    in_flight: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Delivery:
    """The outbox drain of one Application (kept in `application.bot_data[DELIVERY_KEY]`)."""

    def __init__(self, application: HotlineApplication, services: Services) -> None:
        self.application = application
        self.services = services
        settings = services.settings
        self.concurrency = max(1, min(16, int(settings.send_rate_per_second)))
        self.batch = max(self.concurrency * 2, int(settings.send_rate_per_second))
        shared = application.bot_data.get(PACER_KEY)
        self.pacer = shared if isinstance(shared, Pacer) else Pacer(settings.send_rate_per_second)
        self.stats = DeliveryStats()
        self._lock = asyncio.Lock()
        self._again = False
        self._started = False
        self._bot: Bot | None = None
        self._staff = StaffContacts(services.admin_keys, services.staff_chat_key)
        # Admins are named in settings by Telegram id and may not have written to the bot yet
        # (no sealed id stored): their chats are known from there.
        self._admin_chats = services.admin_chats

    # -- waking ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Called right after a commit that queued rows: drain now (or once more)."""
        if self._lock.locked():
            self._again = True
            return
        job_queue = self.application.job_queue
        if job_queue is not None and job_queue.scheduler.running:
            job_queue.run_once(self._job, 0, name="delivery:wake")

    async def _job(self, context: object) -> None:
        await self.drain()

    # -- draining -------------------------------------------------------------------------------

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
        drain must notice by itself and leave its leased rows to the next start."""
        return self.application.running

    async def drain(self) -> None:
        """Send everything due; returns when nothing is due (rows in backoff wait for a sweep)."""
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            self.stats.drains += 1
            if not self._started:
                await self._recover_orphans()
                self._started = True
            await self._pipeline()
            self.pacer.forget_idle_chats()
        if self.alive:
            await self._schedule_next_due()

    async def _pipeline(self) -> None:
        """Keep the pacer fed: claim the next rows while earlier ones still wait for their turn.

        Waiting for a whole batch to finish before claiming the next left the sender idle
        between batches (0.93 of the allowed rate). Claimed rows are leased, and a claim skips
        chats with a row in flight, so overlapping claims keep each chat's order.
        """
        tasks: set[asyncio.Task[None]] = set()
        low_water = max(1, self.batch // 2)
        try:
            while self.alive:
                self._again = False
                claimed = (
                    await self._claim(self.batch - len(tasks)) if len(tasks) < low_water else []
                )
                for row in claimed:
                    task = asyncio.create_task(self._deliver(row))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if tasks:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not claimed and not self._again:
                    break
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _recover_orphans(self) -> None:
        """One bot process owns the outbox: rows a previous (crashed) process left `sending`
        are due again now, without waiting for their lease to run out."""
        services = self.services
        async with services.sessions() as session, session.begin():
            far = services.clock() + LEASE * 2
            recovered = await outbox.requeue_expired_leases(session, now=far)
        if recovered:
            log.info(
                "delivery: %d rows left in flight by a previous process are due again", recovered
            )

    async def _claim(self, limit: int) -> list[ClaimedMessage]:
        services = self.services
        async with services.sessions() as session, session.begin():
            return await outbox.claim(
                session, services.cipher, now=services.clock(), lease=LEASE, limit=limit
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

    # -- one row --------------------------------------------------------------------------------

    def _render(self, row: ClaimedMessage) -> RenderedMessage:
        services = self.services
        tr = services.i18n.get(row.language or services.settings.default_language)
        return discreet_version(row, tr, render(row.template, tr, row.params))

    async def _send(self, row: ClaimedMessage, message: RenderedMessage) -> Message:
        assert row.telegram_chat_id is not None
        return await send_rendered(self.bot, row.telegram_chat_id, message)

    async def _deliver(self, row: ClaimedMessage) -> None:
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
            await self._give_up(row, f"render:{type(error).__name__}", notify=False)
            return
        # The pacer (in memory) knows chats by their Telegram id, as the replies' rate limiter does.
        ticket = await self.pacer.wait_turn(row.telegram_chat_id, priority=row.priority)
        if not self.alive:
            self.pacer.finish(ticket)
            return
        self.stats.in_flight += 1
        try:
            try:
                sent = await self._send(row, message)
            finally:
                self.pacer.finish(ticket)
        except RetryAfter as error:
            await self._rate_limited(row, retry_after_seconds(error))
        except Forbidden:
            await self._blocked(row)
        except BadRequest as error:
            code = _error_code(error)
            await self._give_up(row, f"BadRequest:{code}", notify=False)
            if code == CHAT_NOT_FOUND and row.kind == OutboxKind.STAFF_ALERT:
                await self._unreachable(row)
        except NetworkError as error:  # includes TimedOut
            await self._retry_later(row, type(error).__name__)
        except TelegramError as error:
            await self._retry_later(row, type(error).__name__)
        else:
            await self._settle_sent(row, sent.message_id)
        finally:
            self.stats.in_flight -= 1

    async def _settle_sent(self, row: ClaimedMessage, message_id: int) -> None:
        """Record the send. The message is already out, so a busy database (SQLite's lock held
        past its timeout) is retried: a row left `sending` would be sent again after its lease."""
        services = self.services
        for attempt in range(SETTLE_ATTEMPTS):
            try:
                async with services.sessions() as session, session.begin():
                    await outbox.mark_sent(
                        session, row.id, telegram_message_id=message_id, now=services.clock()
                    )
            except DBAPIError as error:
                log.warning(
                    "delivery: row %d sent, marking it failed (%s), attempt %d",
                    row.id,
                    type(error.orig).__name__,
                    attempt + 1,
                )
                await asyncio.sleep(backoff_seconds(attempt + 1))
            else:
                self.stats.sent += 1
                return
        log.error("delivery: row %d sent but could not be marked; it may be sent again", row.id)

    async def _withhold(self, row: ClaimedMessage, reason: str = "frozen") -> None:
        """The recipient is frozen (a seized phone): checked when sent, not when queued, so
        rows queued before the freeze are cancelled too, never sent. Also a recipient whose
        Telegram id is not known (gone since, or never seen)."""
        async with self.services.sessions() as session, session.begin():
            await outbox.mark_withheld(session, row.id, reason=reason)

    async def _rate_limited(self, row: ClaimedMessage, seconds: float) -> None:
        self.pacer.refused(row.telegram_chat_id or row.chat_id, seconds)
        self._count("RetryAfter")
        services = self.services
        async with services.sessions() as session, session.begin():
            await outbox.reschedule(
                session,
                row.id,
                not_before=services.clock() + timedelta(seconds=seconds),
                error="RetryAfter",
                count_attempt=False,
            )
        self.stats.rescheduled += 1

    async def _retry_later(self, row: ClaimedMessage, reason: str) -> None:
        self._count(reason)
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            chat = self.services.cipher.pseudonym(row.chat_id)
            log.warning("outbox %d to chat %s: %s, giving up", row.id, chat, reason)
            await self._give_up(row, f"{reason} x{attempts}", notify=True)
            return
        services = self.services
        async with services.sessions() as session, session.begin():
            await outbox.reschedule(
                session,
                row.id,
                not_before=services.clock() + timedelta(seconds=backoff_seconds(attempts)),
                error=reason,
            )
        self.stats.rescheduled += 1

    async def _blocked(self, row: ClaimedMessage) -> None:
        """The user blocked the bot: remember it, and never try them again until they write."""
        self._count("Forbidden")
        async with self.services.sessions() as session, session.begin():
            if row.chat_id > 0:
                await mark_blocked(session, row.chat_id)
            given_up = await outbox.mark_chat_dead(session, row.chat_id, reason="Forbidden")
        chat = self.services.cipher.pseudonym(row.chat_id)
        log.info("chat %s blocked the bot; %d queued messages dropped", chat, given_up)
        self.stats.blocked += 1
        self.stats.dead += given_up

    async def _unreachable(self, row: ClaimedMessage) -> None:
        """A staff notice found no chat (never opened the bot, or the bot left the group):
        the log and the other staff hear it once, not once per notice."""
        services = self.services
        async with services.sessions() as session, session.begin():
            first = await record_unreachable(
                session, services.cipher, row.chat_id, staff=self._staff, now=services.clock()
            )
        if first:
            chat = services.cipher.pseudonym(row.chat_id)
            log.warning(
                "delivery: staff chat %s cannot be reached (chat not found); its notices are "
                "given up, the other staff are told once",
                chat,
            )

    async def _give_up(self, row: ClaimedMessage, reason: str, *, notify: bool) -> None:
        services = self.services
        async with services.sessions() as session, session.begin():
            await outbox.mark_dead(session, row.id, reason=reason)
            if notify and row.template != DEAD_LETTER_TEMPLATE:
                params = {"id": row.id, "error": reason, "code": row.params.get("code")}
                await outbox.enqueue(
                    session,
                    services.cipher,
                    [
                        Outgoing(
                            chat,
                            f"dead:{row.id}:{chat}",
                            DEAD_LETTER_TEMPLATE,
                            params,
                            kind=OutboxKind.STAFF_ALERT,
                            priority=PRIORITY_STAFF,
                        )
                        for chat in staff_desk(self._staff)
                        if chat != row.chat_id
                    ],
                    now=services.clock(),
                )
        self.stats.dead += 1

    def _count(self, reason: str) -> None:
        self.stats.errors[reason] = self.stats.errors.get(reason, 0) + 1


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
    """Create the drain, schedule its sweep, and have every commit that queued rows wake it."""
    from bot.services import SERVICES_KEY

    services = application.bot_data[SERVICES_KEY]
    delivery = Delivery(application, services)
    application.bot_data[DELIVERY_KEY] = delivery
    services.sessions.configure(info={outbox.ON_QUEUED_HOOK: delivery.wake})
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            delivery._job,
            interval=services.settings.delivery_sweep_seconds,
            first=0.0,
            name="delivery:sweep",
            job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
    return delivery
