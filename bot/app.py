"""Assembles the bot: services, the PTB Application, its handlers and its jobs.

`open_services` and `build_application` are separate so tests can build several Applications on one
database (a restart), and so the CLI's maintenance commands can use the services without a bot.
"""

from __future__ import annotations

import warnings
from typing import Any

from telegram.constants import ParseMode
from telegram.ext import ApplicationBuilder, ContextTypes, Defaults, TypeHandler
from telegram.warnings import PTBUserWarning

from bot.clean_input import CleanInputApplication
from bot.commands import publish_commands, publish_role_commands
from bot.context import HotlineApplication, HotlineContext
from bot.health import start_health, stop_health
from bot.i18n import I18n
from bot.inbox import UpdateInbox, inbox_of
from bot.inbox_mark import ARM_GROUP, arm
from bot.inbox_polling import InboxUpdater
from bot.limits import MessageLimiter
from bot.pacing import SharedPacerLimiter
from bot.services import SERVICES_KEY, Services
from bot.settings import Settings
from bot.telegram_faults import SEND_READ_TIMEOUT
from bot.update_processor import PerUserUpdateProcessor, connection_pool_size
from handlers import (
    broadcast,
    case_library,
    common,
    desk,
    edits,
    export,
    fallbacks,
    family_messages,
    find,
    guide,
    letters,
    monitor,
    oncall,
    pin,
    prepared,
    privacy,
    record_edit,
    report,
    roles,
    safety,
    staff,
    staff_actions,
    staff_contacts,
    staff_input,
    stats,
    status,
    tags,
    urgent,
)
from handlers.middleware import PRIVATE_ONLY_GROUP, flush_persistence, load_profile, only_in_private
from jobs import register_jobs
from jobs.delivery import PACER_KEY, Pacer
from storage.crypto import DataKeyError, FieldCipher
from storage.data_keys import give_existing_data_keys
from storage.db import (
    SchemaNotCurrent,
    check_writable,
    make_engine,
    make_session_factory,
    refused_writes_as_unwritable,
)
from storage.identity import load_user_keys, telegram_ids_of
from storage.identity_upgrade import key_telegram_ids
from storage.keys import upgrade_index_rule
from storage.meta import verify_or_store_key_check
from storage.migrate import pending_migrations, upgrade_to_head
from storage.persistence import DatabasePersistence
from storage.search import check_index_key
from storage.users import staff_members

# Our conversations take button presses with per_message=False on purpose (one conversation per
# user, buttons re-checked on the server); PTB warns about that choice at every start.
warnings.filterwarnings(
    "ignore", message=r"If 'per_message=False'", category=PTBUserWarning, module=r"handlers\."
)

MIDDLEWARE_GROUP = -100
FLUSH_GROUP = 100


async def open_services(
    settings: Settings, *, migrate: bool = True, i18n: I18n | None = None
) -> Services:
    """Connect to the database (migrating it if asked), and check the data key opens it."""
    if settings.data_key is None:
        raise DataKeyError("HOTLINE_DATA_KEY: not set (make one with: python -m bot keygen)")
    cipher = FieldCipher.from_setting(settings.data_key.get_secret_value())
    engine = make_engine(settings.database_url)
    try:
        with refused_writes_as_unwritable():  # a read-only database: one line at start, exit 2
            if migrate:
                await upgrade_to_head(engine)
            elif await pending_migrations(engine):
                raise SchemaNotCurrent(
                    "HOTLINE_DATABASE_URL: the database schema is not up to date: "
                    "run python -m bot migrate"
                )
            await check_writable(engine)
        sessions = make_session_factory(engine)
        async with sessions() as session, session.begin():
            await verify_or_store_key_check(session, cipher)
            keys = await load_user_keys(session, cipher)
        async with sessions() as session, session.begin():
            await key_telegram_ids(session, keys, cipher)
        await upgrade_index_rule(sessions, cipher)
        await give_existing_data_keys(sessions, cipher)
        await check_index_key(sessions, cipher)  # names are indexed by the name-index job
    except BaseException:
        await engine.dispose()
        raise
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        keys=keys,
        i18n=i18n or I18n(default_language=settings.default_language),
        message_limiter=MessageLimiter(settings.messages_per_minute),
    )


def build_application(services: Services, **builder_options: Any) -> HotlineApplication:
    """The PTB Application with every handler and job registered; not yet initialised."""
    settings = services.settings
    if settings.bot_token is None:
        raise ValueError("build_application needs HOTLINE_BOT_TOKEN (the sandbox sets one)")
    pacer = Pacer(settings.send_rate_per_second)  # replies and the outbox share it
    # Updates are stored before Telegram is told they arrived, and handled from the store.
    inbox = UpdateInbox(services.sessions, services.cipher, clock=lambda: services.clock())
    builder = (
        ApplicationBuilder()
        .application_class(CleanInputApplication)
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_base_url.removesuffix("/bot") + "/file/bot")
        .context_types(ContextTypes(context=HotlineContext))
        .defaults(Defaults(parse_mode=ParseMode.HTML))  # every text sent is HTML: escape values
        .concurrent_updates(PerUserUpdateProcessor(settings.concurrent_updates))
        .connection_pool_size(connection_pool_size(settings.concurrent_updates))
        .update_queue(inbox)
        # Replies retry short faults; requests wait for a slow API rather than send twice.
        .rate_limiter(SharedPacerLimiter(pacer, horizon=settings.reply_retry_seconds))
        .read_timeout(SEND_READ_TIMEOUT)  # the delivery job sends through this request too
        .persistence(DatabasePersistence(services.sessions, services.cipher, services.keys))
        .post_init(_post_init)
        .post_shutdown(stop_health)  # /healthz and /metrics stop with the bot
    )
    for name, value in builder_options.items():
        builder = getattr(builder, name)(value)
    application: HotlineApplication = builder.build()
    inbox.bind(application)
    application.updater = InboxUpdater(application.bot, inbox)  # polls in batches into it
    application.bot_data[SERVICES_KEY] = services
    application.bot_data[PACER_KEY] = pacer
    register_handlers(application)
    register_jobs(application)
    return application


def register_handlers(application: HotlineApplication) -> None:
    """Order matters within a group: conversations and deep links before the generic /start."""
    application.add_handler(TypeHandler(object, load_profile), group=MIDDLEWARE_GROUP)
    application.add_handler(TypeHandler(object, arm), group=ARM_GROUP)  # writes mark the update
    application.add_handler(TypeHandler(object, only_in_private), group=PRIVATE_ONLY_GROUP)
    edits.register(application)  # every edit, before any input, form or command takes it
    privacy.register(application)
    pin.register(application)
    safety.register(application)
    staff.register(application)  # the inbox and a case's card
    staff_actions.register(application)  # moves, /keep, /visibility
    staff_contacts.register(application)  # relatives, merging, notes for the family
    staff_input.register(application)  # what staff type after a button asked
    desk.register(application)
    record_edit.register(application)
    letters.register(application)
    find.register(application)
    tags.register(application)
    stats.register(application)
    export.register(application)
    case_library.register(application)
    prepared.register(application)
    roles.register(application)
    oncall.register(application)
    urgent.register(application)  # before the report form: while it is on, its answers go to it
    report.register(application)
    status.register(application)
    monitor.register(application)
    broadcast.register(application)
    guide.register(application)
    common.register(application)
    family_messages.register(application)  # what no form or command took: a family's message
    fallbacks.register(application)  # last: unknown commands, stale buttons, edits
    application.add_handler(TypeHandler(object, flush_persistence), group=FLUSH_GROUP)


async def _post_init(application: HotlineApplication) -> None:
    services = application.bot_data[SERVICES_KEY]
    assert isinstance(services, Services)
    staff_chats = [services.settings.staff_chat_id] if services.settings.staff_chat_id else []
    await publish_commands(
        application.bot,
        services.i18n,
        default_language=services.settings.default_language,
        staff_chat_ids=staff_chats,
    )
    admins = services.settings.admin_ids
    async with services.sessions() as session:
        members = await staff_members(session, services.admin_keys)
        chats = await telegram_ids_of(session, services.cipher, [key for key, _, _ in members])
    chats.update({services.keys.key(admin): admin for admin in admins})
    for key, language, role in members:  # each staff member's own menu, in their language
        if key in chats:
            await publish_role_commands(
                application.bot, services.i18n.get(language), chats[key], role
            )
    await start_health(application)  # /healthz and /metrics, if HOTLINE_METRICS_PORT is set


async def start_application(application: HotlineApplication) -> None:
    """What `run_polling` does before polling, for tests and the sandbox that drive it directly;
    then the updates an earlier run stored but did not handle, before any new one is fetched."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    if (inbox := inbox_of(application)) is not None:
        await inbox.replay()


async def stop_application(application: HotlineApplication) -> None:
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if (inbox := inbox_of(application)) is not None:
        await inbox.drain()  # what was stored is handled (and marked) before the jobs stop
    if application.running:
        await application.stop()
    await application.shutdown()
    if application.post_shutdown is not None:  # what run_polling would call after shutdown
        await application.post_shutdown(application)
