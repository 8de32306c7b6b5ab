"""The real bot against the sandbox: start, stop, restart, on one database.

`BotHarness` builds the production Application (`bot.app.build_application`) with its base URL
pointed at the in-process sandbox server, and receives updates over HTTP exactly as in
production: it polls the sandbox, or (`mode="webhook"`) the sandbox posts them to its webhook.
Either way each update goes through the durable inbox (`bot/inbox.py`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

from bot.app import build_application, open_services, start_application, stop_application
from bot.context import HotlineApplication
from bot.i18n import I18n
from bot.leadership import stop_as_a_crash
from bot.sandbox.server import SandboxServer
from bot.services import Services
from bot.settings import Settings

TEST_TOKEN = "1000001:TEST-TOKEN"
WEBHOOK_URL = "https://hotline.example/telegram"  # what the bot tells Telegram (the sandbox)
WEBHOOK_SECRET = "harness-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotHarness:
    sandbox: SandboxServer
    settings: Settings
    i18n: I18n
    services: Services | None = None
    application: HotlineApplication | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_port: int | None = None
    builder_options: dict[str, object] = field(default_factory=dict)
    """Passed to `build_application` (e.g. `read_timeout=0.5` for a slow-API test)."""
    _stopped: list[HotlineApplication] = field(default_factory=list)

    async def start(self) -> HotlineApplication:
        """Open services and start receiving; a second call after `stop`/`kill` is a restart."""
        if self.services is None:
            self.services = await open_services(self.settings, i18n=self.i18n)
        self.application = build_application(self.services, **self.builder_options)
        await start_application(self.application)
        updater = self.application.updater
        assert updater is not None
        if self.mode == "polling":
            await updater.start_polling(poll_interval=0.0, timeout=1)
            return self.application
        if self.webhook_port is None:  # kept across restarts: Telegram keeps the address
            self.webhook_port = free_port()
        self.sandbox.webhook_target = f"http://127.0.0.1:{self.webhook_port}/telegram"
        await updater.start_webhook(
            listen="127.0.0.1",
            port=self.webhook_port,
            url_path="telegram",
            webhook_url=WEBHOOK_URL,
            secret_token=WEBHOOK_SECRET,
        )
        return self.application

    async def stop(self) -> None:
        """A clean stop: PTB flushes persistence and finishes its jobs."""
        if self.application is not None:
            await stop_application(self.application)
            self.application = None

    async def kill(self) -> None:
        """Stop as a crash would: no persistence flush, no job completion, new services after.

        The old Application's tasks are cancelled, updates being stored or handled included;
        what it had not committed is lost, which is what a killed process loses too (a stored
        update is handled at the next start). A test that means "after this update" waits for
        `tests.support.waiting.wait_until_idle` first.
        """
        application = self.application
        if application is None:
            return
        await stop_as_a_crash(application)  # what a leader that lost its lock does too
        self.application = None
        if self.services is not None:
            await self.services.engine.dispose()
            self.services = None

    async def freeze(self) -> Frozen:
        """Leave the running bot as a process killed at this instant: it takes no more updates,
        writes nothing on its way out, its handlers stay where they are (a send the sandbox
        holds never returns); `start` then opens new services and a new Application on the same
        database. `Frozen.bury` ends the old one once the test is done with it."""
        application, services = self.application, self.services
        assert application is not None and services is not None, "start the bot first"
        application.persistence = None
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.job_queue is not None and application.job_queue.scheduler.running:
            application.job_queue.scheduler.shutdown(wait=False)
        self.application = None
        self.services = None
        return Frozen(application, services)

    def key(self, telegram_id: int) -> int:
        """The user key the database holds for a Telegram (sandbox) user id."""
        assert self.services is not None, "start the bot first"
        return self.services.keys.key(telegram_id)

    async def close(self) -> None:
        await self.stop()
        if self.services is not None:
            await self.services.engine.dispose()
            self.services = None


@dataclass
class Frozen:
    """A bot left standing by `BotHarness.freeze`."""

    application: HotlineApplication
    services: Services

    async def bury(self) -> None:
        """Stop it for good (release what the sandbox holds first) and close its database."""
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.services.engine.dispose()


def harness_settings(
    sandbox: SandboxServer, database_url: str, data_key: str, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "bot_token": SecretStr(TEST_TOKEN),
        "api_base_url": sandbox.base_url,
        "database_url": database_url,
        "data_key": SecretStr(data_key),
        "admin_ids": frozenset({9001}),
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]
