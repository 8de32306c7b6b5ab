"""Benchmark: a family's alert for a status change, alone and while a 10,000-recipient broadcast
is being delivered, on SQLite and on PostgreSQL.

The real bot polls the in-process sandbox over HTTP with Telegram's flood limits on (`--rate`/s
overall, one message per second per chat). Cases wait under review, each with its family; before
the clock starts each staff member opens the cards of their share of them (`/case CODE`). Then,
one every `--interval` seconds, a staff member presses "verified" on a card: the bot moves the
case and queues the family's alert (outbox, top priority). The time measured is from injecting
the press to the alert's arrival in the family's chat (the sandbox's arrival time). `--staff`
members take turns, so no staff chat's one-message-a-second limit is what is measured.

Phase 1 (baseline) has nothing else queued; phase 2 runs once a broadcast to `--broadcast` users
is queued (as the Send button does: created, then queued a chunk per transaction) and under way.
Both phases run in the same process, on the same database and bot, one engine after the other;
PostgreSQL is skipped with one line when it is not reachable (`HOTLINE_TEST_POSTGRES_URL`).

    python -m benchmarks.alert_latency --trials 60 --broadcast 10000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from benchmarks.conversation_latency import (
    ANNOUNCEMENT,
    CountingFloodLimiter,
    ErrorLog,
    SendCounter,
    figures,
)
from bot.app import build_application, open_services, start_application, stop_application
from bot.callbacks import CASE
from bot.context import HotlineApplication
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from bot.services import Services
from bot.settings import Settings
from jobs.broadcast_progress import reporter_of
from storage import broadcasts
from storage.crypto import generate_key
from storage.enums import CaseStatus, Role
from storage.models import User
from storage.users import set_language, set_role
from tests.support.case_factory import make_case
from tests.support.databases import fresh_postgres_database, postgres_reachable

TOKEN = "1000001:BENCH"
STAFF = 7001
ADMIN = 9001


@dataclass
class Trial:
    family: int
    staff: int
    code: str = ""
    card: int = 0
    latency: float | None = None


@dataclass
class Phase:
    name: str
    trials: list[Trial]
    refused: int = 0
    refused_by: dict[str, int] = field(default_factory=dict)
    broadcast_total: int = 0
    queue_seconds: float = 0.0
    delivered_before: int = 0
    delivered_after: int = 0


@dataclass
class EngineRun:
    engine: str
    phases: list[Phase] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


async def _seed(
    server: SandboxServer, services: Services, options: argparse.Namespace, staff: list[int]
) -> list[Trial]:
    """The broadcast's audience, the staff, and a case under review per trial of each phase."""
    keys = services.keys
    audience = [server.add_user(language_code="en").id for _ in range(options.broadcast)]
    trials = [
        Trial(server.add_user(language_code="en").id, staff[n % len(staff)])
        for n in range(2 * options.trials)
    ]
    async with services.sessions() as session, session.begin():
        session.add_all(
            [
                User(id=keys.key(chat), telegram_id=keys.seal(chat), language="en")
                for chat in audience
            ]
        )
        for member in staff:
            await set_role(
                session, keys.key(member), Role.STAFF, sealed_telegram_id=keys.seal(member)
            )
            await session.flush()
            await set_language(session, keys.key(member), "en")
        for trial in trials:
            trial.code = await make_case(
                session,
                services.cipher,
                keys=keys,
                reporter_id=trial.family,
                status=CaseStatus.UNDER_REVIEW,
                language="en",
            )
    return trials


async def _open_cards(server: SandboxServer, trials: list[Trial]) -> None:
    """Each staff member opens the cards of their cases, one after the other."""

    async def card(staff: int, code: str) -> int:
        seen = len(server.messages(staff))
        await server.send_text(staff, f"/case {code}")
        await server.wait_for(
            lambda: any(code in m.plain for m in server.messages(staff)[seen:]), timeout=120
        )
        return next(m for m in server.messages(staff)[seen:] if code in m.plain).message_id

    async def member(staff: int) -> None:
        for trial in (t for t in trials if t.staff == staff):
            trial.card = await card(staff, trial.code)

    await asyncio.gather(*(member(staff) for staff in {t.staff for t in trials}))


async def _trial(server: SandboxServer, trial: Trial, deadline: float) -> None:
    before = len(server.messages(trial.family))
    pressed = time.monotonic()
    await server.press(trial.staff, trial.card, CASE.build("ok", trial.code, "verified"))
    try:
        await server.wait_for(
            lambda: len(server.messages(trial.family)) > before,
            max(0.01, deadline - time.monotonic()),
        )
    except AssertionError:
        return
    trial.latency = server.messages(trial.family)[before].sent_at - pressed


async def _phase(
    server: SandboxServer,
    limiter: CountingFloodLimiter,
    phase: Phase,
    options: argparse.Namespace,
) -> None:
    limiter.refused.clear()
    began = time.monotonic()
    deadline = began + (len(phase.trials) - 1) * options.interval + options.patience
    tasks = []
    for index, trial in enumerate(phase.trials):
        delay = began + index * options.interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the staff, not waiting for an arrival
        tasks.append(asyncio.create_task(_trial(server, trial, deadline)))
    await asyncio.gather(*tasks)
    phase.refused = sum(limiter.refused.values())
    phase.refused_by = {
        ("families" if kind == "families" else "staff and audience"): number
        for kind, number in limiter.refused.items()
    }


async def _delivered(services: Services, broadcast_id: int) -> int:
    async with services.sessions() as session:
        return (await broadcasts.counts(session, broadcast_id)).delivered


async def run_engine(name: str, url: str, options: argparse.Namespace) -> EngineRun:
    result = EngineRun(name)
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    server = SandboxServer()
    await server.start()
    limiter = CountingFloodLimiter(options.rate, 1, None)
    server.flood = limiter
    staff = [STAFF + n for n in range(options.staff)]
    for member in staff:
        server.add_user(member, first_name="Staff", language_code="en")
    server.add_user(ADMIN, first_name="Admin", language_code="en")
    settings = Settings(
        bot_token=SecretStr(TOKEN),
        api_base_url=server.base_url,
        database_url=url,
        data_key=SecretStr(generate_key()),
        send_rate_per_second=options.rate,
        admin_ids=frozenset({ADMIN}),
        messages_per_minute=10_000,
        reports_per_day=10,
    )
    services = await open_services(settings, i18n=I18n())
    application: HotlineApplication | None = None
    try:
        trials = await _seed(server, services, options, staff)
        limiter.families = frozenset(t.family for t in trials)  # 429s told apart by chat
        application = build_application(services)
        await start_application(application)
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        await _open_cards(server, trials)
        quiet = Phase("baseline", trials[: options.trials])
        busy = Phase("during broadcast", trials[options.trials :])
        await _phase(server, limiter, quiet, options)

        began = time.monotonic()
        async with services.sessions() as session, session.begin():
            broadcast_id = await broadcasts.create_broadcast(
                session,
                services.cipher,
                author_id=services.keys.key(ADMIN),
                audience="everyone",
                audience_arg=None,
                text=ANNOUNCEMENT,
            )
        await reporter_of(application).queue(broadcast_id)
        busy.queue_seconds = time.monotonic() - began
        sent = SendCounter(server)
        await server.wait_for(lambda: sent() >= options.rate, timeout=60)
        busy.delivered_before = await _delivered(services, broadcast_id)
        async with services.sessions() as session:
            busy.broadcast_total = (await broadcasts.counts(session, broadcast_id)).total
        await _phase(server, limiter, busy, options)
        busy.delivered_after = await _delivered(services, broadcast_id)
        result.phases = [quiet, busy]
    finally:
        if application is not None:
            await stop_application(application)
        await services.engine.dispose()
        await server.stop()
        logging.getLogger().removeHandler(errors)
    result.errors = dict(errors.seen)
    return result


def _ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    return "never" if math.isinf(value) else f"{value * 1000:.0f} ms"


def report(options: argparse.Namespace, runs: list[EngineRun]) -> None:
    print(
        f"{options.trials} status changes per phase, one every {options.interval:g}s by "
        f"{options.staff} staff members in turn; sandbox limits {options.rate:g}/s overall, "
        "1/s per chat; time from the staff press to the family's alert"
    )
    print(f"{'':11} {'':17} {'p50':>8} {'p99':>8} {'max':>8} {'arrived':>9} {'429s':>5}")
    for run in runs:
        for phase in run.phases:
            values = [t.latency for t in phase.trials]
            found = figures(values)
            worst = max((math.inf if v is None else v for v in values), default=math.nan)
            print(
                f"{run.engine:11} {phase.name:17} {_ms(found.median):>8} {_ms(found.p99):>8} "
                f"{_ms(worst):>8} {found.arrived:>5}/{found.total:<3} {phase.refused:>5}"
            )
        for phase in run.phases:
            print(f"{run.engine:11} {phase.name}: 429s for {phase.refused_by or 'nobody'}")
        busy = run.phases[-1]
        print(
            f"{run.engine:11} broadcast to {busy.broadcast_total}: queued in "
            f"{busy.queue_seconds:.1f}s, {busy.delivered_before} delivered when the trials "
            f"began, {busy.delivered_after} when they ended"
            + (" (it FINISHED first)" if busy.delivered_after >= busy.broadcast_total else "")
        )
        for what, count in sorted(run.errors.items(), key=lambda item: -item[1])[:5]:
            print(f"{run.engine:11} bot logged {count}x {what}")


async def run(options: argparse.Namespace) -> None:
    began = time.monotonic()
    runs = []
    if "sqlite" in options.engines:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            runs.append(await run_engine("sqlite", url, options))
    if "postgres" in options.engines:
        reason = await postgres_reachable()
        if reason is not None:
            print(f"postgresql: skipped, not reachable ({reason})")
        else:
            async with fresh_postgres_database() as url:
                runs.append(await run_engine("postgresql", url, options))
    report(options, runs)
    print(f"\nwhole run: {time.monotonic() - began:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=60, help="status changes per phase")
    parser.add_argument("--broadcast", type=int, default=10_000, help="users seeded to receive it")
    parser.add_argument("--rate", type=float, default=30.0, help="messages per second, overall")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--staff", type=int, default=4, help="staff members taking turns")
    parser.add_argument("--patience", type=float, default=30.0, help="seconds after the last")
    parser.add_argument(
        "--engines", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
