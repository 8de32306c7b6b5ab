"""The CLI's commands that need the database: run, migrate, staff and monitor roles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from bot.app import build_application, open_services, start_application, stop_application
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError
from storage.db import make_engine
from storage.enums import Role
from storage.identity import is_user_key, telegram_ids_of
from storage.migrate import upgrade_to_head
from storage.roles import grant_role, revoke_role
from storage.users import users_with_role

log = logging.getLogger(__name__)
CLI_ACTOR = 0


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    if args.command == "migrate":
        engine = make_engine(settings.database_url)
        await upgrade_to_head(engine)
        await engine.dispose()
        print("database is up to date")
        return 0
    if args.command in ("staff", "monitor"):
        return await _roles(args, settings, Role(args.command))
    if args.command == "run":
        await run_bot(settings, webhook=args.webhook)
        return 0
    if args.command == "rotate-key":
        return await rotate_key(settings)
    if args.command == "export":
        from bot.cli_export import run_export

        return await run_export(args, settings)
    raise AssertionError(args.command)


async def rotate_key(settings: Settings) -> int:
    """Re-seal everything with the first key of HOTLINE_DATA_KEY=new,old; prints counts only."""
    from storage.crypto import DataKeyError
    from storage.keys import ciphers_for_rotation, rotate_data_key

    if settings.data_key is None:
        raise DataKeyError("HOTLINE_DATA_KEY: not set (rotate-key needs new,old)")
    cipher, old_ciphers = ciphers_for_rotation(settings.data_key.get_secret_value())
    services = await open_services(settings, migrate=False)
    try:
        report = await rotate_data_key(
            services.sessions,
            cipher,
            old_ciphers,
            progress=lambda what, done: print(f"{what}: {done} re-sealed", flush=True),
        )
    finally:
        await services.engine.dispose()
    print(f"blind indexes recomputed: {report.indexes_recomputed}")
    for table, count in report.resealed.items():
        print(f"{table}: {count} fields re-sealed")
    if report.indexes_unmatched:
        print(f"warning: {report.indexes_unmatched} blind indexes not recognised, left as they are")
    if report.left_on_old_key:
        print(
            f"warning: {report.left_on_old_key} fields still on an old key (is the bot running "
            "with HOTLINE_DATA_KEY=new,old?); the key check was not replaced: run rotate-key again"
        )
        return 1
    print("done: the key check now needs the new key; set HOTLINE_DATA_KEY=new and restart")
    return 0


async def _roles(args: argparse.Namespace, settings: Settings, role: Role) -> int:
    if args.action != "list" and args.telegram_id is None:
        print(f"error: {args.command} {args.action} needs a Telegram id")
        return 2
    services = await open_services(settings)
    keys = services.keys
    try:
        async with services.sessions() as session, session.begin():
            if args.action == "list":
                members = await users_with_role(session, role)
                chats = await telegram_ids_of(session, services.cipher, members)
                for user_id in members:  # the Telegram id, opened; the key if none is known
                    print(chats.get(user_id, user_id))
                return 0
            if args.telegram_id <= 0:
                print(f"error: {args.command} {args.action} needs a Telegram id")
                return 2
            now = services.clock()
            # Telegram ids become user keys here, at the edge: storage never sees one.
            user_key = keys.key(args.telegram_id)
            if args.action == "add":
                sealed = None if is_user_key(args.telegram_id) else keys.seal(args.telegram_id)
                await grant_role(
                    session,
                    actor_id=CLI_ACTOR,
                    user_id=user_key,
                    role=role,
                    now=now,
                    sealed_telegram_id=sealed,
                )
                print(f"{args.telegram_id}: {role}")
            elif await revoke_role(session, actor_id=CLI_ACTOR, user_id=user_key, now=now):
                print(f"{args.telegram_id}: {Role.FAMILY}")
            else:
                print(f"{args.telegram_id}: had no granted role")
        return 0
    finally:
        await services.engine.dispose()


async def run_bot(settings: Settings, *, webhook: bool) -> None:
    """Run against Telegram (or any Bot API server) until SIGINT or SIGTERM."""
    if webhook and (settings.webhook_url is None or settings.webhook_secret is None):
        raise SettingsError(
            "HOTLINE_WEBHOOK_URL and HOTLINE_WEBHOOK_SECRET: both are needed for --webhook"
        )
    services = await open_services(settings, migrate=settings.sqlite_path is not None)
    application = build_application(services)
    await start_application(application)
    assert application.updater is not None
    if webhook:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        await application.updater.start_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path="telegram",
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
        )
    else:
        await application.updater.start_polling()
    log.info("bot is running (%s)", "webhook" if webhook else "polling")
    try:
        await wait_for_stop_signal()
    finally:
        await stop_application(application)
        await services.engine.dispose()


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
