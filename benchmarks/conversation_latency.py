"""Benchmark: a family's message reaches the staff desk, and a staff answer reaches the family,
with and without a broadcast to thousands being delivered at the same time.

The real bot polls the in-process sandbox over HTTP with Telegram's flood limits on (overall
`--rate`/s, one message per second per chat, `--group-per-minute` per group chat), on a fresh
SQLite file. Families each have one case; the staff desk is a group. One conversation:

- the family writes in their private chat: the bot stores the message, queues a notice to the
  staff group (outbox, priority 10) and acknowledges. Family -> desk is the time until the notice
  arrives in the group; the acknowledgement's time is noted too;
- the staff member answers at once, by a Telegram reply to that notice in the group. Desk ->
  family is the time until the answer arrives in the family's chat (families are discreet by
  default, so what arrives is the "news" notice with its Show button).

Times are the sandbox's arrival times (`BotMessage.sent_at`) minus the moment the user's message
was injected. A conversation starts every `--interval` seconds, so several are in flight. Each
phase is its own sandbox, database and bot (nothing one phase left queued slows the other):
phase 1, the baseline, with nothing else queued; phase 2 while a broadcast to every user (the
`--broadcast` seeded users, the families and the staff member) is being delivered. A phase stops
waiting `--patience` seconds after its last conversation started; what has not arrived by then
counts as never arrived (infinitely late in the percentiles). One staff account answers every
family, so the per-user message limit is raised (as cpu_per_update does); nothing else differs
from production.

Each conversation puts two messages in the staff group (the notice, then the bot's "Sent to the
family."), and Telegram allows 20 a minute per group: about 10 conversations a minute. Faster
than that the desk falls behind whatever the bot does; `--interval 7` stays under it.

`--desk takers` is the busy hotline instead: `--staff` staff members have each taken a share of
the families' conversations (so a family's notice goes to the one who took it, in their private
chat, as the bot does for a taken thread), and each answers by a Telegram reply to the notice in
that chat. Telegram's one-message-a-second per chat then bounds each staff member, not the group.

    python -m benchmarks.conversation_latency --desk takers --staff 4 --messages 200 --interval 0.4
    python -m benchmarks.conversation_latency --messages 10 --interval 7
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from bot.app import build_application, open_services, start_application, stop_application
from bot.callbacks import SHOW
from bot.context import HotlineApplication
from bot.i18n import I18n
from bot.sandbox.flood import FloodLimiter
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage
from bot.services import Services
from bot.settings import Settings
from storage import broadcasts
from storage.codes import CODE_ALPHABET
from storage.crypto import generate_key
from storage.models import Case, OutboxMessage, Thread, ThreadMessage, User
from storage.threads import T_FAMILY_MESSAGE_STAFF, T_STAFF_REPLY
from tests.support.case_factory import make_case

TOKEN = "1000001:BENCH"
GROUP = -100500
STAFF = 9001
"""The first staff member (and the only one with the group desk); the others follow it."""
ANNOUNCEMENT = "Benchmark announcement"
ACK = "Received"
CODE = re.compile(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}")


@dataclass
class Conversation:
    family: int
    code: str
    token: str
    desk_chat: int = GROUP
    staff: int = STAFF
    sent: float = 0.0
    ack: float | None = None
    desk: float | None = None
    asked: bool = False
    answer: float | None = None
    failure: str | None = None


class CountingFloodLimiter(FloodLimiter):
    """The sandbox's flood limits, counting its 429s by who they were for."""

    families: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refused: Counter[str] = Counter()
        self.longest: dict[str, int] = {}

    def check(self, chat_id: int | None, now: float) -> int | None:
        retry = super().check(chat_id, now)
        if retry is not None:
            if chat_id is None:
                kind = "other"
            elif chat_id < 0:
                kind = "staff group"
            elif chat_id in self.families:
                kind = "families"
            else:
                kind = "broadcast-only users"
            self.refused[kind] += 1
            self.longest[kind] = max(self.longest.get(kind, 0), retry)
        return retry


class DeskNotices:
    """Bot messages in the desk chats (the staff group, or each staff member's chat) by the case
    code they name, indexed as they arrive, so the many waiters re-check cheaply on each of the
    sandbox's wake-ups."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.seen: dict[int, int] = {}
        self.by_code: dict[str, BotMessage] = {}

    def find(self, chat: int, code: str) -> BotMessage | None:
        messages = self.server.world.bot_messages.get(chat, [])
        for message in messages[self.seen.get(chat, 0) :]:
            if not any(d.startswith("desk:mopen:") for d in message.callback_data):
                continue
            for found in CODE.findall(message.plain):
                self.by_code.setdefault(found, message)
        self.seen[chat] = len(messages)
        return self.by_code.get(code)


class SendCounter:
    """Successful sends of the broadcast's text, counted incrementally."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.seen = 0
        self.count = 0

    def __call__(self) -> int:
        sends = self.server.stats.sends
        self.count += sum(1 for s in sends[self.seen :] if s.text == ANNOUNCEMENT)
        self.seen = len(sends)
        return self.count


class ErrorLog(logging.Handler):
    """Warnings and errors the bot logged (handler exceptions, delivery give-ups)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        what = kind or re.sub(r"\d+", "N", record.getMessage())[:100]
        self.seen[f"{record.name}: {what}"] += 1


def _family_message(
    server: SandboxServer, family: int, match: Callable[[BotMessage], bool]
) -> BotMessage | None:
    return next((m for m in server.world.bot_messages.get(family, []) if match(m)), None)


async def _arrival(
    server: SandboxServer, find: Callable[[], BotMessage | None], deadline: float
) -> BotMessage | None:
    """The message once `find` sees it (the sandbox wakes us on every change), or None."""
    try:
        await server.wait_for(lambda: find() is not None, max(0.01, deadline - time.monotonic()))
    except AssertionError:
        return None
    return find()


async def converse(
    server: SandboxServer, notices: DeskNotices, talk: Conversation, deadline: float
) -> None:
    """One conversation; staff answer the notice without waiting for the family's ack."""

    async def acknowledged() -> None:
        ack = await _arrival(
            server, lambda: _family_message(server, talk.family, lambda m: ACK in m.plain), deadline
        )
        if ack is not None:
            talk.ack = ack.sent_at - talk.sent

    async def desk_and_back() -> None:
        notice = await _arrival(server, lambda: notices.find(talk.desk_chat, talk.code), deadline)
        if notice is None:
            talk.failure = "desk notice not arrived"
            return
        talk.desk = notice.sent_at - talk.sent
        asked = time.monotonic()
        talk.asked = True
        group = talk.desk_chat if talk.desk_chat < 0 else None
        await server.send_text(
            talk.staff, f"Answer {talk.token}", chat_id=group, reply_to=notice.message_id
        )

        def answer(message: BotMessage) -> bool:
            shown = talk.token in message.plain
            discreet = any(d.startswith(SHOW.head()) for d in message.callback_data)
            return message.sent_at >= asked and (shown or discreet)

        got = await _arrival(server, lambda: _family_message(server, talk.family, answer), deadline)
        if got is None:
            talk.failure = "answer not arrived in the family's chat"
            return
        talk.answer = got.sent_at - asked

    talk.sent = time.monotonic()
    await server.send_text(talk.family, f"Question {talk.token}")
    await asyncio.gather(acknowledged(), desk_and_back())


@dataclass
class Phase:
    name: str
    talks: list[Conversation] = field(default_factory=list)
    wall: float = 0.0
    refused: Counter[str] = field(default_factory=Counter)
    longest_retry: dict[str, int] = field(default_factory=dict)
    broadcast_total: int = 0
    delivered_before: int = 0
    delivered_after: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    diagnosis: list[str] = field(default_factory=list)


async def seed(
    server: SandboxServer, services: Services, users: int, families: int, takers: list[int]
) -> list[Conversation]:
    """`users` plain users (broadcast recipients) and `families` families with one case each;
    with `takers`, each family's conversation is taken by one of them in turn."""
    chats = [server.add_user(language_code="en").id for _ in range(users)]
    talks = []
    async with services.sessions() as session, session.begin():
        keys = services.keys  # rows as first contact makes them: user key, sealed id
        session.add_all(
            [User(id=keys.key(chat), telegram_id=keys.seal(chat), language="en") for chat in chats]
        )
        for index in range(families):
            family = server.add_user(first_name="Family", language_code="en").id
            code = await make_case(
                session, services.cipher, reporter_id=family, language="en", keys=keys
            )
            talk = Conversation(family, code, f"T{index:05d}")
            if takers:
                talk.staff = talk.desk_chat = takers[index % len(takers)]
                case_id = await session.scalar(select(Case.id).where(Case.code == code))
                session.add(
                    Thread(
                        user_id=keys.key(family),
                        case_id=case_id,
                        assigned_to=keys.key(talk.staff),
                    )
                )
            talks.append(talk)
    return talks


async def diagnose(services: Services, talks: Sequence[Conversation]) -> list[str]:
    """Where the failed conversations stopped, from the database (counts, never contents)."""
    failed = [t for t in talks if t.failure]
    if not failed:
        return []
    lines = [f"  stopped at: {dict(Counter(t.failure for t in failed))}"]
    async with services.sessions() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(ThreadMessage)
            .join(Thread, Thread.id == ThreadMessage.thread_id)
            .where(Thread.user_id.in_([services.keys.key(t.family) for t in failed]))
        )
        lines.append(f"  thread messages stored for those {len(failed)} families: {stored}")
        for template in (T_FAMILY_MESSAGE_STAFF, T_STAFF_REPLY):
            rows = await session.execute(
                select(OutboxMessage.status, OutboxMessage.last_error, func.count())
                .where(OutboxMessage.template == template)
                .group_by(OutboxMessage.status, OutboxMessage.last_error)
            )
            states = {f"{status}{':' + error if error else ''}": n for status, error, n in rows}
            lines.append(f"  outbox rows {template} at the end: {states or 'none'}")
    return lines


async def run_phase(options: argparse.Namespace, *, with_broadcast: bool) -> Phase:
    """A fresh sandbox, database and bot; `--messages` conversations, maybe during a broadcast."""
    phase = Phase("during broadcast" if with_broadcast else "baseline")
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    server = SandboxServer()
    await server.start()
    limiter = CountingFloodLimiter(options.rate, 1, options.group_per_minute or None)
    server.flood = limiter  # as set_flood_limits(rate, 1, group) does, counting its 429s
    takers = [STAFF + n for n in range(options.staff)] if options.desk == "takers" else []
    server.add_group(GROUP, "Staff")
    for staff in takers or [STAFF]:
        server.add_user(staff, first_name="Staff", language_code="en")
    application: HotlineApplication | None = None
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot_token=SecretStr(TOKEN),
            api_base_url=server.base_url,
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            data_key=SecretStr(generate_key()),
            send_rate_per_second=options.rate,
            staff_chat_id=None if takers else GROUP,
            admin_ids=frozenset(takers or [STAFF]),
            messages_per_minute=10_000,
        )
        services = await open_services(settings, i18n=I18n())
        try:
            phase.talks = await seed(server, services, options.broadcast, options.messages, takers)
            limiter.families = frozenset(t.family for t in phase.talks)
            application = build_application(services)
            await start_application(application)
            assert application.updater is not None
            await application.updater.start_polling(poll_interval=0.0, timeout=1)
            broadcast_id = None
            if with_broadcast:
                async with services.sessions() as session, session.begin():
                    queued = await broadcasts.queue_broadcast(
                        session,
                        services.cipher,
                        author_id=STAFF,
                        audience="everyone",
                        audience_arg=None,
                        text=ANNOUNCEMENT,
                    )
                broadcast_id, phase.broadcast_total = queued.id, queued.counts.total
                sent = SendCounter(server)
                await server.wait_for(lambda: sent() >= options.rate, timeout=60)
                phase.delivered_before = await _delivered(services, broadcast_id)
            limiter.refused.clear()
            limiter.longest.clear()
            phase.wall = await _conversations(server, phase.talks, options)
            phase.refused, phase.longest_retry = limiter.refused, limiter.longest
            if broadcast_id is not None:
                phase.delivered_after = await _delivered(services, broadcast_id)
            phase.diagnosis = await diagnose(services, phase.talks)
        finally:
            if application is not None:
                await stop_application(application)
            await services.engine.dispose()
            await server.stop()
            logging.getLogger().removeHandler(errors)
    phase.errors = errors.seen
    return phase


async def _delivered(services: Services, broadcast_id: int) -> int:
    async with services.sessions() as session:
        return (await broadcasts.counts(session, broadcast_id)).delivered


async def _conversations(
    server: SandboxServer, talks: Sequence[Conversation], options: argparse.Namespace
) -> float:
    """Start one every `interval` seconds; wait for all, up to `patience` after the last start."""
    notices = DeskNotices(server)
    began = time.monotonic()
    deadline = began + (len(talks) - 1) * options.interval + options.patience
    tasks = []
    for index, talk in enumerate(talks):
        delay = began + index * options.interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the families, not polling for an arrival
        tasks.append(asyncio.create_task(converse(server, notices, talk, deadline)))
    await asyncio.gather(*tasks)
    return time.monotonic() - began


# -- the report --------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Figures:
    median: float
    p99: float
    arrived: int
    total: int


def figures(values: Sequence[float | None]) -> Figures:
    """Median and p99, a message that never arrived counting as infinitely late."""
    times = [math.inf if v is None else v for v in values]
    if not times:
        return Figures(math.nan, math.nan, 0, 0)
    arrived = sum(1 for v in values if v is not None)
    return Figures(statistics.median(times), percentile(times, 0.99), arrived, len(times))


def _ms(value: float, patience: float) -> str:
    if math.isnan(value):
        return "—"
    return f"> {patience:g} s" if math.isinf(value) else f"{value * 1000:.0f} ms"


def _ratio(busy: float, quiet: float) -> str:
    if not (math.isfinite(busy) and math.isfinite(quiet)) or quiet == 0:
        return "—"
    return f"{busy / quiet:.2f}"


def _legs(phase: Phase) -> dict[str, Figures]:
    talks = phase.talks
    return {
        "family -> desk": figures([t.desk for t in talks]),
        "desk -> family": figures([t.answer for t in talks if t.asked]),
        "family's ack": figures([t.ack for t in talks]),
    }


def report(options: argparse.Namespace, quiet: Phase, busy: Phase) -> None:
    group = options.group_per_minute
    desk = (
        f"{options.staff} staff members, each with their share of conversations taken"
        if options.desk == "takers"
        else "the staff group"
    )
    print(f"desk: {desk}")
    print(
        f"{options.messages} conversations per phase, one every {options.interval:g}s, "
        f"patience {options.patience:g}s; sandbox limits {options.rate:g}/s overall, 1/s per "
        f"chat, " + (f"{group:g}/min per group" if group else "no group limit")
    )
    print(
        f"broadcast to {busy.broadcast_total} users: {busy.delivered_before} delivered when the "
        f"conversations began, {busy.delivered_after} when they ended"
        + (
            " (it FINISHED during the measurement)"
            if busy.delivered_after >= busy.broadcast_total
            else ""
        )
    )
    print(f"phase wall time: baseline {quiet.wall:.1f}s, during broadcast {busy.wall:.1f}s")
    for phase in (quiet, busy):
        by_kind = ", ".join(
            f"{kind} {n} (retry_after up to {phase.longest_retry[kind]}s)"
            for kind, n in phase.refused.most_common()
        )
        print(f"429 answers, {phase.name}: {sum(phase.refused.values())}: {by_kind or 'none'}")
    print()
    wait = options.patience
    print(f"{'':15} {'baseline':^28} | {'during broadcast':^28} | {'ratio':^11}")
    heading = f"{'median':>9} {'p99':>9} {'arrived':>8}"
    print(f"{'':15} {heading} | {heading} | {'med':>5} {'p99':>5}")
    quiet_legs, busy_legs = _legs(quiet), _legs(busy)
    for name, q in quiet_legs.items():
        b = busy_legs[name]
        cells = [
            f"{_ms(f.median, wait):>9} {_ms(f.p99, wait):>9} {f.arrived:>4}/{f.total:<3}"
            for f in (q, b)
        ]
        ratios = f"{_ratio(b.median, q.median):>5} {_ratio(b.p99, q.p99):>5}"
        print(f"{name:15} {cells[0]} | {cells[1]} | {ratios}")
    print("(desk -> family counts only the conversations whose notice arrived and was answered)")
    for phase in (quiet, busy):
        if phase.diagnosis:
            failed = sum(1 for t in phase.talks if t.failure)
            print(f"\n{phase.name}: {failed} conversations incomplete")
            print("\n".join(phase.diagnosis))
        for what, count in phase.errors.most_common(6):
            print(f"{phase.name}: bot logged {count}x {what}")


async def run(options: argparse.Namespace) -> None:
    began = time.monotonic()
    quiet = await run_phase(options, with_broadcast=False)
    busy = await run_phase(options, with_broadcast=True)
    report(options, quiet, busy)
    print(f"\nwhole run: {time.monotonic() - began:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="conversations per phase")
    parser.add_argument("--broadcast", type=int, default=3000, help="users seeded to receive it")
    parser.add_argument("--rate", type=float, default=30.0, help="messages per second, overall")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between families")
    parser.add_argument(
        "--patience", type=float, default=30.0, help="seconds to wait after the last start"
    )
    parser.add_argument(
        "--group-per-minute", type=float, default=20, help="the sandbox's group limit (0: off)"
    )
    parser.add_argument(
        "--desk",
        choices=("group", "takers"),
        default="group",
        help="notices to the staff group, or to the staff member who took the conversation",
    )
    parser.add_argument("--staff", type=int, default=4, help="staff members with --desk takers")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
