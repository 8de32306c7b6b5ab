"""`make run` with no token: the local Bot API sandbox, the bot pointed at it, and the web page.

The sandbox keeps its own database and data key under ./var/ so it never touches a real one, and
grants its personas their roles (the staff persona is an admin) so every feature can be tried.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pydantic import SecretStr

from bot.app import build_application, open_services, start_application, stop_application
from bot.cli_commands import wait_for_stop_signal
from bot.logs import configure_logging
from bot.sandbox.server import SandboxServer
from bot.settings import Settings
from storage.crypto import generate_key
from storage.enums import Role
from storage.users import set_role

log = logging.getLogger(__name__)
SANDBOX_TOKEN = "1000001:SANDBOX-TOKEN"  # noqa: S105 - a fake token for the local server
SANDBOX_DIR = Path("var")


def sandbox_key(directory: Path = SANDBOX_DIR) -> str:
    """The sandbox's own data key, made on first use and kept beside its database."""
    path = directory / "sandbox.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key())
    return path.read_text().strip()


def sandbox_settings(settings: Settings, server: SandboxServer) -> Settings:
    staff_id = server.personas["staff"]
    return settings.model_copy(
        update={
            "bot_token": SecretStr(SANDBOX_TOKEN),
            "api_base_url": server.base_url,
            "database_url": f"sqlite+aiosqlite:///{SANDBOX_DIR}/sandbox.db",
            "data_key": SecretStr(sandbox_key()),
            "admin_ids": frozenset(settings.admin_ids | {staff_id}),
        }
    )


async def run_sandbox(settings: Settings, port: int = 8088) -> int:
    configure_logging(settings.log_level)
    # Update ids go on growing across restarts, as Telegram's do (the inbox remembers handled ids).
    server = SandboxServer(port=port, first_update_id=int(time.time() * 10))
    await server.start()
    try:
        settings = sandbox_settings(settings, server)
        services = await open_services(settings)
        async with services.sessions() as session, session.begin():
            await set_role(session, server.personas["monitor"], Role.MONITOR)
        application = build_application(services)
        await start_application(application)
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        print(f"Sandbox is running. Open {server.web_url} in a browser. Stop with Ctrl+C.")
        try:
            await wait_for_stop_signal()
        finally:
            await stop_application(application)
            await services.engine.dispose()
    finally:
        await server.stop()
    return 0
