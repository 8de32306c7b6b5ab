"""Benchmark: an urgent alert, from the family's last answer to the on-call staff member's chat,
alone and while a broadcast to thousands is being delivered.

The real bot polls the in-process sandbox over HTTP with Telegram's flood limits on (`--rate`/s
overall, one message per second per chat), on a fresh SQLite file. One staff member is on call.
Before the clock starts, `--trials` families each open the urgent path and answer three of its
four questions (where, what, by whom); then, one every `--interval` seconds, a family sends its
last answer (a phone number): the bot files the urgent case and queues the alert (outbox, top
priority), and the family gets its code and the advice. The time measured is from injecting
that last answer to the alert's arrival in the staff member's chat (the sandbox's arrival time).

Telegram allows a bot one message a second per chat, and the outbox sends one chat's rows one
after the other, so alerts one every 1.1 s to ONE on-call chat measure that chat's queue more
than the bot. `--staff K` staff members take turns being the one on call (trial i: member i mod
K, switched on just before the family's last answer, the others off), so each chat gets an
alert every K x interval, as in a hotline where alerts are minutes apart. `--staff 1` shows the
one-chat bound. Phase 1 (baseline): nothing else queued. Phase 2: the trials start once a
broadcast to `--broadcast` users is under way; the report says how much of it was still
undelivered when the last trial ended (if it finished first, the figures say so).

    python -m benchmarks.urgent_alert --trials 100 --broadcast 3000 --staff 4
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import update

from benchmarks.conversation_latency import (
    ANNOUNCEMENT,
    CountingFloodLimiter,
    ErrorLog,
    SendCounter,
    figures,
)
from bot.app import build_application, open_services, start_application, stop_application
from bot.callbacks import URGENT
from bot.context import HotlineApplication
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.services import Services
from bot.settings import Settings
from storage import broadcasts, oncall
from storage.codes import CODE_ALPHABET
from storage.crypto import generate_key
from storage.enums import Role
from storage.models import OnCall, User
from storage.users import set_role

TOKEN = "1000001:BENCH"
STAFF = 7001
"""The first staff member; the others follow it (7002, ...)."""
ADMIN = 9001
PHONE = "+380671234567"
CODE = re.compile(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}")


@dataclass
class Trial:
    family: int
    staff: int = STAFF
    sent: float = 0.0
    code: str | None = None
    latency: float | None = None


@dataclass
class Phase:
    name: str
    trials: list[Trial] = field(default_factory=list)
    broadcast_total: int = 0
    delivered_before: int = 0
    delivered_after: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def _prepare(server: SandboxServer, trial: Trial) -> None:
    """Open the urgent path and answer where, what and by whom; the contact question waits."""
    family = trial.family
    seen = len(server.messages(family))

    async def question(count: int) -> int:
        await server.wait_for(lambda: len(server.messages(family)) >= seen + count, timeout=120)
        return server.messages(family)[seen + count - 1].message_id

    await server.send_text(family, "/urgent")
    await question(2)  # the intro, then "where?"
    await server.send_text(family, "Simferopol, Kyivska 12")
    what = await question(3)
    await server.press(family, what, URGENT.build("a", "what", "search"))
    by = await question(4)
    await server.press(family, by, URGENT.build("a", "by", "fsb"))
    await question(5)  # the contact question


class Alerts:
    """Alerts arriving in the staff chats, by case code, indexed as they come."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.seen: dict[int, int] = {}
        self.arrived: dict[str, float] = {}

    def scan(self, chat: int) -> None:
        messages = self.server.messages(chat)
        for message in messages[self.seen.get(chat, 0) :]:
            if any(data.startswith("duty:take:") for data in message.callback_data):
                found = CODE.search(message.plain)
                if found is not None:
                    self.arrived.setdefault(found.group(0), message.sent_at)
        self.seen[chat] = len(messages)


async def _on_call_alone(services: Services, staff: int) -> None:
    """Only `staff` is on call (the roster as `/oncall on|off` leaves it)."""
    chosen = services.keys.key(staff)
    async with services.sessions() as session, session.begin():
        await session.execute(update(OnCall).values(on_now=OnCall.user_id == chosen))


async def _trial(
    server: SandboxServer, services: Services, alerts: Alerts, trial: Trial, deadline: float
) -> None:
    family = trial.family
    before = len(server.messages(family))
    await _on_call_alone(services, trial.staff)
    trial.sent = time.monotonic()
    await server.send_text(family, PHONE)

    def confirmation() -> str | None:
        for message in server.messages(family)[before:]:
            found = CODE.search(message.plain)
            if found is not None:
                return found.group(0)
        return None

    def arrived() -> bool:
        alerts.scan(trial.staff)
        trial.code = trial.code or confirmation()
        return trial.code is not None and trial.code in alerts.arrived

    try:
        await server.wait_for(arrived, max(0.01, deadline - time.monotonic()))
    except AssertionError:
        return
    assert trial.code is not None
    trial.latency = alerts.arrived[trial.code] - trial.sent


async def run_phase(options: argparse.Namespace, *, with_broadcast: bool) -> Phase:
    phase = Phase("during broadcast" if with_broadcast else "baseline")
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    server = SandboxServer()
    await server.start()
    limiter = CountingFloodLimiter(options.rate, 1, None)
    server.flood = limiter
    members = [STAFF + n for n in range(options.staff)]
    for member in members:
        server.add_user(member, first_name="Staff", language_code="en")
    server.add_user(ADMIN, first_name="Admin", language_code="en")
    application: HotlineApplication | None = None
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot_token=SecretStr(TOKEN),
            api_base_url=server.base_url,
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            data_key=SecretStr(generate_key()),
            send_rate_per_second=options.rate,
            admin_ids=frozenset({ADMIN}),
            messages_per_minute=10_000,
            reports_per_day=10,
        )
        services = await open_services(settings, i18n=I18n())
        try:
            recipients = [server.add_user(language_code="en").id for _ in range(options.broadcast)]
            phase.trials = [
                Trial(server.add_user(language_code="en").id, members[n % len(members)])
                for n in range(options.trials)
            ]
            async with services.sessions() as session, session.begin():
                keys = services.keys
                session.add_all(
                    [
                        User(id=keys.key(chat), telegram_id=keys.seal(chat), language="en")
                        for chat in recipients
                    ]
                )
                duty = oncall.Duty.of(services.admin_keys, settings.timezone)
                for member in members:
                    key = keys.key(member)
                    await set_role(session, key, Role.STAFF, sealed_telegram_id=keys.seal(member))
                    await session.flush()
                    await oncall.switch(session, duty, key, False, now=services.clock())
            application = build_application(services)
            await start_application(application)
            assert application.updater is not None
            await application.updater.start_polling(poll_interval=0.0, timeout=1)
            await asyncio.gather(*(_prepare(server, trial) for trial in phase.trials))
            broadcast_id = None
            if with_broadcast:
                async with services.sessions() as session, session.begin():
                    queued = await broadcasts.queue_broadcast(
                        session,
                        services.cipher,
                        author_id=keys.key(ADMIN),
                        audience="everyone",
                        audience_arg=None,
                        text=ANNOUNCEMENT,
                    )
                broadcast_id, phase.broadcast_total = queued.id, queued.counts.total
                sent = SendCounter(server)
                await server.wait_for(lambda: sent() >= options.rate, timeout=60)
                phase.delivered_before = await _delivered(services, broadcast_id)
            limiter.refused.clear()
            alerts = Alerts(server)
            began = time.monotonic()
            deadline = began + (len(phase.trials) - 1) * options.interval + options.patience
            tasks = []
            for index, trial in enumerate(phase.trials):
                delay = began + index * options.interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the families, not waiting for an arrival
                tasks.append(asyncio.create_task(_trial(server, services, alerts, trial, deadline)))
            await asyncio.gather(*tasks)
            phase.refused = sum(limiter.refused.values())
            if broadcast_id is not None:
                phase.delivered_after = await _delivered(services, broadcast_id)
        finally:
            if application is not None:
                await stop_application(application)
            await services.engine.dispose()
            await server.stop()
            logging.getLogger().removeHandler(errors)
    phase.errors = dict(errors.seen)
    return phase


async def _delivered(services: Services, broadcast_id: int) -> int:
    async with services.sessions() as session:
        return (await broadcasts.counts(session, broadcast_id)).delivered


def _ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    return "never" if math.isinf(value) else f"{value * 1000:.0f} ms"


def report(options: argparse.Namespace, quiet: Phase, busy: Phase) -> None:
    print(
        f"{options.trials} urgent alerts per phase, one every {options.interval:g}s, each to the "
        f"one on call of {options.staff} staff members taking turns; sandbox limits "
        f"{options.rate:g}/s overall, 1/s per chat"
    )
    print(
        f"broadcast to {busy.broadcast_total} users: {busy.delivered_before} delivered when the "
        f"trials began, {busy.delivered_after} when they ended"
        + (
            " (it FINISHED during the trials)"
            if busy.delivered_after >= busy.broadcast_total
            else ""
        )
    )
    print(f"{'':18} {'p50':>9} {'p99':>9} {'max':>9} {'arrived':>9} {'429s':>6}")
    for phase in (quiet, busy):
        values = [t.latency for t in phase.trials]
        found = figures(values)
        worst = max((math.inf if v is None else v for v in values), default=math.nan)
        print(
            f"{phase.name:18} {_ms(found.median):>9} {_ms(found.p99):>9} {_ms(worst):>9} "
            f"{found.arrived:>5}/{found.total:<3} {phase.refused:>6}"
        )
        for what, count in sorted(phase.errors.items(), key=lambda item: -item[1])[:5]:
            print(f"  {phase.name}: bot logged {count}x {what}")


async def run(options: argparse.Namespace) -> None:
    began = time.monotonic()
    quiet = await run_phase(options, with_broadcast=False)
    busy = await run_phase(options, with_broadcast=True)
    report(options, quiet, busy)
    print(f"\nwhole run: {time.monotonic() - began:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="urgent alerts per phase")
    parser.add_argument("--broadcast", type=int, default=3000, help="users seeded to receive it")
    parser.add_argument("--rate", type=float, default=30.0, help="messages per second, overall")
    parser.add_argument("--interval", type=float, default=1.1, help="seconds between alerts")
    parser.add_argument("--staff", type=int, default=4, help="staff members taking turns on call")
    parser.add_argument("--patience", type=float, default=30.0, help="seconds after the last")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
