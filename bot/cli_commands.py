"""The CLI's commands that need the database: run, migrate, staff and monitor roles, the guide."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot import leadership
from bot.app import build_application, open_services, start_application, stop_application
from bot.health import health_for_the_process
from bot.logs import configure_logging
from bot.polling import PollingGuard
from bot.services import Services
from bot.settings import Settings, SettingsError
from storage.db import make_engine, refused_writes_as_unwritable
from storage.enums import Role
from storage.identity import UserKeys, is_user_key, telegram_ids_of
from storage.migrate import upgrade_to_head
from storage.reachability import unreachable_chats
from storage.roles import grant_role, revoke_role
from storage.users import users_with_role

log = logging.getLogger(__name__)
CLI_ACTOR = 0


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    if args.command == "migrate":
        engine = make_engine(settings.database_url)
        try:
            with refused_writes_as_unwritable():
                await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        print("database is up to date")
        return 0
    if args.command in ("staff", "monitor"):
        return await _roles(args, settings, Role(args.command))
    if args.command == "run":
        return await run_bot(settings, webhook=args.webhook)
    if args.command == "deliver":
        from jobs.workers import run_worker

        return await run_worker(settings)
    if args.command == "rotate-key":
        return await rotate_key(settings)
    if args.command == "guide" and args.action == "import":
        return await guide_import(args.files, settings)
    if args.command == "guide":
        return await guide_export(args.directory, settings)
    if args.command == "export":
        from bot.cli_export import run_export

        return await run_export(args, settings)
    raise AssertionError(args.command)


def _read_guide_files(files: list[Path]) -> tuple[dict[str, str], dict[str, str]] | None:
    """Each file's source by the language it declares, and its name; None (said why) if not."""
    from bot.guide import GuideError, language_of

    sources: dict[str, str] = {}
    names: dict[str, str] = {}
    for path in files:
        try:
            source = path.read_text(encoding="utf-8")
            language = language_of(source, str(path))
        except (OSError, UnicodeDecodeError) as error:
            print(f"error: {path}: cannot be read ({type(error).__name__})")
            return None
        except GuideError as error:
            for problem in error.problems:
                print(f"error: {problem}")
            return None
        if language in sources:
            print(f"error: {path}: a second file for {language} ({names[language]})")
            return None
        sources[language] = source
        names[language] = str(path)
    return sources, names


async def _current_guide(session: AsyncSession) -> tuple[int | None, dict[str, str]]:
    """The guide the bot shows: the newest imported version, else the files in locales/guide."""
    from bot.guide import bundled_sources
    from storage.guide import latest_version_id, version_sources

    latest = await latest_version_id(session)
    stored = await version_sources(session, latest) if latest is not None else None
    return latest, stored or bundled_sources()


async def guide_import(files: list[Path], settings: Settings) -> int:
    """Check the files with the rest of the guide (the four languages must stay in step), then
    store the whole guide as a new version, audited; the bot shows it at the next press."""
    from bot.guide import check_sources
    from bot.i18n import LANGUAGES
    from storage.guide import store_version

    read = _read_guide_files(files)
    if read is None:
        return 1
    new, names = read
    services = await open_services(settings)
    try:
        async with services.sessions() as session, session.begin():
            _, current = await _current_guide(session)
            merged = {**current, **new}
            problems = check_sources(merged, names)
            if problems:
                for problem in problems:
                    print(f"error: {problem}")
                print("nothing was stored: the guide shown is unchanged")
                return 1
            changed = [code for code in LANGUAGES if merged.get(code) != current.get(code)]
            if not changed:
                print("these files are the guide already shown: nothing was stored")
                return 0
            version = await store_version(
                session, merged, actor_id=CLI_ACTOR, changed=changed, now=services.clock()
            )
        print(
            f"guide version {version} stored ({', '.join(changed)} changed): the bot shows it "
            "from the next press, no restart needed"
        )
        return 0
    finally:
        await services.engine.dispose()


def _write_guide(directory: Path, sources: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for language, source in sources.items():
        (directory / f"{language}.toml").write_text(source, encoding="utf-8")


async def guide_export(directory: Path, settings: Settings) -> int:
    """Write the guide now shown, one <language>.toml each, to edit and import again."""
    services = await open_services(settings)
    try:
        async with services.sessions() as session:
            version, sources = await _current_guide(session)
    finally:
        await services.engine.dispose()
    _write_guide(directory, sources)
    origin = f"imported version {version}" if version is not None else "the files in locales/guide"
    print(f"{len(sources)} files written to {directory} ({origin})")
    return 0


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
                lines = [  # the Telegram id, opened; the key if none is known
                    (chats.get(user_id, user_id), user_id, "") for user_id in members
                ]
                if role == Role.STAFF:
                    lines = await _staff_lines(session, settings, keys, lines)
                for shown, _key, tags in lines:
                    print(f"{shown} {tags}" if tags else shown)
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


UNREACHABLE = "cannot be reached: Telegram says the chat does not exist (never opened the bot?)"


async def _staff_lines(
    session: AsyncSession, settings: Settings, keys: UserKeys, members: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """Staff members, then the admins named in settings and the staff group: (shown id, key,
    what it is, and whether notices can reach them: storage/reachability.py)."""
    lines = list(members)
    lines += [(admin, keys.key(admin), "admin") for admin in sorted(settings.admin_ids)]
    if settings.staff_chat_id is not None:
        group = settings.staff_chat_id
        lines.append((group, keys.chat_key(group), "staff group"))
    unreachable = await unreachable_chats(session, [key for _, key, _ in lines])
    return [(shown, key, _tags(what, key in unreachable)) for shown, key, what in lines]


def _tags(what: str, unreachable: bool) -> str:
    return ", ".join(part for part in (what, UNREACHABLE if unreachable else "") if part)


async def run_bot(settings: Settings, *, webhook: bool) -> int:
    """Run against Telegram (or any Bot API server) until SIGINT or SIGTERM, or until Telegram
    says another instance polls this token (then EXIT_CONFLICT); returns the exit code.

    On PostgreSQL this process first waits as a standby while another one leads, and stops if it
    loses the lead (EXIT_LEADERSHIP_LOST); on SQLite it refuses to start beside another instance
    on the same file (bot/leadership.py)."""
    if webhook and (settings.webhook_url is None or settings.webhook_secret is None):
        raise SettingsError(
            "HOTLINE_WEBHOOK_URL and HOTLINE_WEBHOOK_SECRET: both are needed for --webhook"
        )
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with leadership.instance(settings, stop) as place:
        services = await open_services(settings, migrate=settings.sqlite_path is not None)
        try:
            async with health_for_the_process(services):
                if not await place.wait_until_leader():
                    return 0  # stopped while a standby
                return await _serve(services, place, stop, webhook=webhook)
        finally:
            await services.engine.dispose()


async def _serve(
    services: Services, place: leadership.Single, stop: asyncio.Event, *, webhook: bool
) -> int:
    """The leader's (or the only instance's) work: the Application, polling or the webhook."""
    settings = services.settings
    application = build_application(services)
    await place.take_over(services, application)
    if stop.is_set():
        return leadership.EXIT_LEADERSHIP_LOST if place.lost else 0
    await start_application(application)
    assert application.updater is not None
    guard = PollingGuard(stop)
    try:
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
            await application.updater.start_polling(error_callback=guard)
        log.info("bot is running (%s)", "webhook" if webhook else "polling")
        await stop.wait()
    finally:
        if place.lost:
            await leadership.stop_as_a_crash(application)
        else:
            await stop_application(application)
        guard.close()
    return leadership.EXIT_LEADERSHIP_LOST if place.lost else guard.exit_code


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop`."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def wait_for_stop_signal(stop: asyncio.Event | None = None) -> None:
    """Until SIGINT or SIGTERM (or `stop` is set by someone else)."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    await stop.wait()
