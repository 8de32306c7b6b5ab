"""/healthz and /metrics for operators, on HOTLINE_METRICS_HOST:HOTLINE_METRICS_PORT.

An aiohttp app on the bot's own event loop (aiohttp already serves the sandbox), started and
stopped with the Application (`bot/app.py`), off unless HOTLINE_METRICS_PORT is set. It listens
on the loopback address by default: the figures carry no personal data, but how busy a hotline
is is nobody else's business; put a reverse proxy or a firewall rule in front to scrape it from
elsewhere.

- ``GET /healthz``: 200 and a JSON body (role, database reachable, inbox backlog, the outbox's
  longest wait) when the database answers a read of the bot's own table within
  `PING_TIMEOUT` seconds, else 503 with the same body. On SQLite the database file must also
  still be there: a bot whose file was deleted writes into a ghost that is gone at restart.
- ``GET /metrics``: `bot.metrics.REGISTRY` in Prometheus' text format (prometheus-client's
  aiohttp handler, which also speaks OpenMetrics when asked).

The database figures (`storage.health`) are read every `bot.metrics.REFRESH_SECONDS` by a task
of this server, never during a scrape (see `bot.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from bot import metrics
from bot.settings import SettingsError
from storage.db import SessionFactory
from storage.health import Figures, ping, read_figures

log = logging.getLogger(__name__)

HEALTH_KEY = "health"
"""bot_data key of the running `HealthServer`."""
PING_TIMEOUT = 3.0
"""Seconds the database has to answer /healthz before it counts as unreachable."""


class HealthServer:
    """The HTTP endpoints and the task that refreshes the database figures."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        host: str,
        port: int,
        clock: Callable[[], datetime],
        sqlite_path: Path | None = None,
        refresh_seconds: float = metrics.REFRESH_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._sqlite_path = sqlite_path
        self.host, self.port = host, port
        self.refresh_seconds = refresh_seconds
        self._runner: web.AppRunner | None = None
        self._refresher: asyncio.Task[None] | None = None
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", make_aiohttp_handler(metrics.REGISTRY))
        self._app = app

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None)  # probes every few seconds: no log
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            await runner.cleanup()
            raise SettingsError(
                f"HOTLINE_METRICS_PORT: cannot listen on {self.host}:{self.port} "
                f"({error.strerror or type(error).__name__})"
            ) from None
        self._runner = runner
        await self.refresh()  # figures from the first scrape on
        self._refresher = asyncio.create_task(self._refresh_forever(), name="health:refresh")
        log.info("health and metrics on http://%s:%d/ (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the database figures -------------------------------------------------------------------

    async def refresh(self) -> metrics.Snapshot:
        """Read the figures now and publish them (or mark the old ones stale)."""
        figures: Figures | None = None
        try:
            async with asyncio.timeout(self.refresh_seconds):
                async with self._sessions() as session:
                    figures = await read_figures(session, now=self._clock())
        except Exception as error:  # the database is away or busy: say so, keep serving
            log.warning("health: database figures not read (%s)", type(error).__name__)
        return metrics.publish(figures)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    async def database_reachable(self) -> bool:
        if self._sqlite_path is not None and not self._sqlite_path.exists():
            return False
        try:
            async with asyncio.timeout(PING_TIMEOUT), self._sessions() as session:
                await ping(session)
        except Exception as error:
            log.warning("health: database not reachable (%s)", type(error).__name__)
            return False
        return True

    # -- endpoints ------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        reachable = await self.database_reachable()
        shot = metrics.snapshot()
        age = shot.age()
        body: dict[str, Any] = {
            "status": "ok" if reachable else "database unreachable",
            "role": metrics.current_role(),
            "database_reachable": reachable,
            "inbox_waiting_updates": shot.figures.inbox_waiting,
            "inbox_oldest_waiting_seconds": round(shot.figures.inbox_oldest_seconds, 3),
            "outbox_oldest_due_seconds": round(shot.figures.outbox_oldest_due_seconds, 3),
            "outbox_dead_unreported_rows": shot.figures.dead_unreported,
            "figures_age_seconds": None if age is None else round(age, 3),
        }
        return web.json_response(body, status=200 if reachable else 503)


_PROCESS_SERVER: list[HealthServer] = []
"""The server `python -m bot run` started before it knew its role (a standby answers /healthz
too); the Application's post_init then starts none of its own."""


async def serve_health(services: Any) -> HealthServer | None:
    """Start the server if HOTLINE_METRICS_PORT is set; None if it is not."""
    settings = services.settings
    if settings.metrics_port is None:
        return None
    server = HealthServer(
        services.sessions,
        host=settings.metrics_host,
        port=settings.metrics_port,
        clock=lambda: services.clock(),
        sqlite_path=settings.sqlite_path,
    )
    await server.start()
    return server


@asynccontextmanager
async def health_for_the_process(services: Any) -> AsyncIterator[None]:
    """The health server for the whole life of `python -m bot run`, standby time included."""
    server = await serve_health(services)
    if server is None:
        yield
        return
    _PROCESS_SERVER.append(server)
    try:
        yield
    finally:
        _PROCESS_SERVER.remove(server)
        await server.stop()


async def start_health(application: Any) -> None:
    """Start the server if HOTLINE_METRICS_PORT is set (from the Application's post_init),
    unless the process already serves one."""
    from bot.services import SERVICES_KEY, Services

    services = application.bot_data.get(SERVICES_KEY)
    if not isinstance(services, Services) or _PROCESS_SERVER:
        return
    server = await serve_health(services)
    if server is not None:
        application.bot_data[HEALTH_KEY] = server


async def stop_health(application: Any) -> None:
    """Stop it (from the Application's post_shutdown)."""
    server = application.bot_data.pop(HEALTH_KEY, None)
    if isinstance(server, HealthServer):
        await server.stop()
