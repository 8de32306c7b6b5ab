"""`python -m bot deliver`: a process that only sends the outbox, beside the bot, on PostgreSQL.

Any number of them share the outbox with the bot process (each a delivery owner: claims are
atomic, `FOR UPDATE SKIP LOCKED`, leased and renewed, storage/outbox.py) and one send rate kept
in the database (storage/send_budget.py), so together they never send faster than
`send_rate_per_second`, and a worker that dies leaves its rows to the others once their lease
runs out. A worker polls nothing and runs no scheduled job but delivery: the bot process (the
leader) keeps those, and keeps sending too (woken at each commit, so a family's alert never waits
for a worker's sweep).

SQLite is refused with one line: one process writes to it at a time, so workers would only queue
for its lock behind the families' writes; there the bot process sends everything itself.
"""

from __future__ import annotations

import logging
from typing import cast

from sqlalchemy import make_url
from telegram.constants import ParseMode
from telegram.ext import ApplicationBuilder, Defaults

from bot.context import HotlineApplication
from bot.services import SERVICES_KEY, Services
from bot.settings import Settings, SettingsError
from jobs import delivery
from jobs.bot_api import LeanBot
from jobs.pacer import Pacer

log = logging.getLogger(__name__)

NEEDS_POSTGRES = (
    "HOTLINE_DATABASE_URL: `python -m bot deliver` needs PostgreSQL "
    "(postgresql+asyncpg://...); on SQLite the bot process sends the outbox itself"
)


def check_database(settings: Settings) -> None:
    """Workers only on PostgreSQL (see the module's note); else one line, exit 2."""
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise SettingsError(NEEDS_POSTGRES)


def build_worker(services: Services) -> HotlineApplication:
    """A PTB Application with no handlers, no updater and no job but delivery."""
    settings = services.settings
    if settings.bot_token is None:
        raise SettingsError("HOTLINE_BOT_TOKEN: not set (a worker sends as the bot)")
    application = cast(
        HotlineApplication,
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_base_url.removesuffix("/bot") + "/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML))  # every text sent is HTML, as the bot's
        .connection_pool_size(8)  # getMe at start only: the sends go through LeanBot
        .pool_timeout(10.0)
        .updater(None)
        .build(),
    )
    application.bot_data[SERVICES_KEY] = services
    application.bot_data[delivery.PACER_KEY] = Pacer(settings.send_rate_per_second)
    sender = delivery.setup(application)
    sender.reports_dead = False  # one summary for staff, from the bot process
    sender.use_bot(
        LeanBot(
            settings.api_base_url,
            settings.bot_token.get_secret_value(),
            connections=delivery.WORKER_IN_FLIGHT,
        ),
        in_flight=delivery.WORKER_IN_FLIGHT,
    )
    return application


async def start_worker(application: HotlineApplication) -> None:
    await application.initialize()
    await application.start()
    found = application.bot_data[delivery.DELIVERY_KEY]
    log.info("delivery worker %s is running", getattr(found, "owner", "?"))


async def stop_worker(application: HotlineApplication) -> None:
    """A clean stop: unsent rows go back to the queue at once, the slice of the rate too."""
    found = application.bot_data.get(delivery.DELIVERY_KEY)
    if application.running:
        await application.stop()  # a running drain sees it, gives its rows back and ends
    if isinstance(found, delivery.Delivery):
        await found.drain(wait=True)  # waits for that drain; nothing is sent once stopped
        if found.pacer.budget is not None:
            await found.pacer.budget.aclose()
        if isinstance(found.bot, LeanBot):
            await found.bot.close()
        stats = found.stats
        log.info(
            "delivery worker %s stopped: %d sent, %d rescheduled, %d given back",
            found.owner,
            stats.sent,
            stats.rescheduled,
            stats.released,
        )
    await application.shutdown()


async def run_worker(settings: Settings) -> int:
    """Until SIGINT or SIGTERM; returns the exit code. With HOTLINE_METRICS_PORT set, the
    worker serves /healthz and /metrics (its own sends) like the bot process."""
    from bot.app import open_services
    from bot.cli_commands import wait_for_stop_signal
    from bot.health import health_for_the_process

    check_database(settings)
    services = await open_services(settings, migrate=False)
    try:
        application = build_worker(services)
        async with health_for_the_process(services):  # /healthz and its send counters
            await start_worker(application)
            try:
                await wait_for_stop_signal()
            finally:
                await stop_worker(application)
    finally:
        await services.engine.dispose()
    return 0
