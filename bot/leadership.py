"""Which `python -m bot run` serves the bot: one process per SQLite file; on PostgreSQL, a leader
and any number of hot standbys.

PostgreSQL. The leader is the process holding a session-level advisory lock (`LOCK_KEY`) on a
connection of its own, kept open for the process's life; only the leader polls (or serves the
webhook), handles updates and runs the JobQueue. A standby opens its services (so a bad setting
shows at start), asks for the lock every `HOTLINE_LEADER_CHECK_SECONDS` and waits. When the
leader dies its connection drops, PostgreSQL frees the lock and a standby takes it: it waits a
grace of two checks (a leader that lost its connection without dying has stopped by then), makes
the rows the dead leader's delivery loop held due again (`storage.leadership`), then starts as
any process does: the inbox replays the updates the leader stored but did not finish
(`bot/inbox.py`), and polling fetches those it had not confirmed. Nothing is lost; a message is
sent twice only if it reached Telegram and the leader died before recording it (the Bot API
cannot be asked whether a message went out).

The leader checks its lock connection every check; if it fails (or PostgreSQL does not answer
for three checks) the leader can no longer know it is the leader: it logs `LOST_LINE` and stops
as a crash would (nothing more is written, no drain), exit code `EXIT_LEADERSHIP_LOST`. The lock
connection asks PostgreSQL for TCP keepalives short enough that, cut off by the network, the
server frees the lock only after the leader has given up.

SQLite. A second instance on the same database file would double every send and fight for the
write lock: an exclusive `flock` on `<database>.lock`, held for the process's life, makes it
refuse to start with one line (`AnotherInstance`, exit code 2).

`current_role()` says what this process is ("single", "leader", "standby"), for the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bot import metrics
from bot.metrics import Role
from storage.db import DatabaseUnwritable, is_sqlite, make_private, sqlite_file
from storage.leadership import leader_owner, requeue_former_leaders_rows

if TYPE_CHECKING:  # the CLI imports this module for `AnotherInstance`: keep it light
    from bot.context import HotlineApplication
    from bot.services import Services
    from bot.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no file lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


LOCK_KEY = int.from_bytes(b"hotline\x01", "big")
"""The advisory lock's key (a bigint; advisory locks are per database)."""
EXIT_LEADERSHIP_LOST = 4
STANDBY_LINE = "standby: another instance is the leader; waiting"
LEADER_LINE = "leader: this instance holds the leader lock and serves the bot"
LOST_LINE = "leader lock lost (%s): this instance stops now; a standby takes over"
GRACE_CHECKS = 2
"""Checks a new leader waits before taking over what the previous one held."""
PATIENCE_CHECKS = 3
"""Checks' worth of time without an answer from PostgreSQL before a leader gives up."""
LOCK_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :high AND objid = :low AND objsubid = 1"
)


class AnotherInstance(Exception):
    """Another instance uses this SQLite database: the message is one line for the operator."""


def current_role() -> Role:
    """What this process is: "single" (SQLite, or not started by `run`), "leader" or "standby"
    (kept by `bot.metrics`, which reports it)."""
    return metrics.current_role()


def _set_role(role: Role) -> None:
    metrics.set_role(role)


# -- SQLite: one instance per file ------------------------------------------------------------


def lock_file(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def sqlite_single_instance(database: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<database>.lock` while inside; raise `AnotherInstance` at once
    if another process holds it. The lock goes with the process, however it ends."""
    make_private(database)  # the folder and the file, private (or one line: DatabaseUnwritable)
    path = lock_file(database)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as error:
        raise DatabaseUnwritable(
            f"HOTLINE_DATABASE_URL: cannot create the lock file {path} "
            f"({error.strerror or type(error).__name__}); check that its folder is writable"
        ) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AnotherInstance(
                    f"HOTLINE_DATABASE_URL: another instance of the bot is running on the SQLite "
                    f"database {database}; run one per SQLite file (a standby needs PostgreSQL)"
                ) from None
        yield
    finally:
        os.close(descriptor)  # and with it the lock


# -- PostgreSQL: a leader and standbys --------------------------------------------------------


class Single:
    """The only instance (SQLite): the leader from the start. `sole`: it holds the file's
    single-instance lock, so no other process sends on this database (workers refuse SQLite),
    and rows left `sending` belong to one that died: due again at once, not after their lease
    (a family's alert in flight at a crash went out a minute after the restart)."""

    lost = False
    sole = False

    def __init__(self, *, sole: bool = False) -> None:
        self.sole = sole

    async def wait_until_leader(self) -> bool:
        return True

    async def take_over(self, services: Services, application: HotlineApplication) -> None:
        if self.sole:
            await take_over_delivery(services, application)

    async def close(self) -> None:
        return None


class PostgresLeadership(Single):
    """The advisory lock on a connection of its own: waited for, then watched."""

    def __init__(
        self, database_url: str, *, check_seconds: float, stop: asyncio.Event, key: int = LOCK_KEY
    ) -> None:
        self.check_seconds = check_seconds
        self.key = key
        self._stop = stop
        keepalive = max(1, math.ceil(check_seconds))
        # Keepalives (server side): cut off, the server ends the session (and frees the lock)
        # after 7 checks at the soonest, when the leader gave up after 4 at the latest.
        server_settings = {
            "application_name": "hotline leader lock",
            "tcp_keepalives_idle": str(4 * keepalive),
            "tcp_keepalives_interval": str(keepalive),
            "tcp_keepalives_count": "3",
        }
        self._engine = create_async_engine(
            database_url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # the lock is the session's, not a transaction's
            connect_args={"server_settings": server_settings},
        )
        self._connection: AsyncConnection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._check: asyncio.Task[bool] | None = None
        self.lost = False

    async def _ask(self) -> bool:
        if self._connection is None:
            self._connection = await self._engine.connect()
        locked = await self._connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
        )
        return bool(locked)

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except (SQLAlchemyError, OSError):
                await connection.invalidate()

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the process is told to stop."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def wait_until_leader(self) -> bool:
        """Return True once this process holds the lock, False if told to stop first."""
        said = False
        while not self._stop.is_set():
            try:
                if await self._ask():
                    _set_role("leader")
                    log.info(LEADER_LINE)
                    self._watch = asyncio.create_task(self._watch_lock(), name="leader lock")
                    return True
            except (SQLAlchemyError, OSError) as error:
                await self._drop_connection()
                log.warning(
                    "standby: PostgreSQL cannot be asked for the leader lock (%s); retrying",
                    type(error).__name__,
                )
            else:
                _set_role("standby")
                if not said:
                    log.info(STANDBY_LINE)
                    said = True
            await self._pause(self.check_seconds)
        return False

    async def _held(self) -> bool:
        assert self._connection is not None
        high, low = divmod(self.key, 1 << 32)
        return bool(await self._connection.scalar(LOCK_HELD, {"high": high, "low": low}))

    async def _watch_lock(self) -> None:
        """Check the lock every `check_seconds`; once in doubt, stop the process."""
        patience = PATIENCE_CHECKS * self.check_seconds
        while True:
            check = self._check = asyncio.create_task(self._held(), name="leader lock check")
            # Not cancelled when this task is (`close` waits for it), nor on a timeout: a slow
            # answer is no reason to give up, only a late one.
            done, _ = await asyncio.wait({check}, timeout=patience)
            if not done:
                check.cancel()
                reason = f"PostgreSQL did not answer for {patience:g} s"
                break
            error = check.exception()
            if error is not None:
                reason = f"its connection failed: {type(error).__name__}"
                break
            if not check.result():
                reason = "PostgreSQL no longer shows it held"
                break
            await asyncio.sleep(self.check_seconds)
        self.lost = True
        _set_role("standby")
        log.error(LOST_LINE, reason)
        self._stop.set()

    async def take_over(self, services: Services, application: HotlineApplication) -> None:
        """Before the Application starts: give a leader that lost the lock without dying the
        time to stop, name this leader's delivery loop, and make due again the rows an earlier
        leader held (they would otherwise wait out their lease)."""
        await self._pause(GRACE_CHECKS * self.check_seconds)
        await take_over_delivery(services, application)

    async def close(self) -> None:
        """Free the lock (a standby takes over at once): after the Application stopped."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._check is not None:  # a query in flight on the lock connection ends first
            await asyncio.wait({self._check}, timeout=PATIENCE_CHECKS * self.check_seconds)
        if self._connection is not None and not self.lost:  # freed now, not when the server
            with suppress(SQLAlchemyError, OSError):  # gets round to ending the session
                await self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
        await self._drop_connection()
        await self._engine.dispose()
        _set_role("single")


async def take_over_delivery(services: Services, application: HotlineApplication) -> None:
    """Name this leader's delivery loop, and make due again the rows an earlier leader held
    (they would otherwise wait out their lease)."""
    from jobs.delivery import DELIVERY_KEY, Delivery

    delivery = application.bot_data.get(DELIVERY_KEY)
    if not isinstance(delivery, Delivery):
        return
    delivery.owner = leader_owner(delivery.owner)
    async with services.sessions() as session, session.begin():
        recovered = await requeue_former_leaders_rows(session, own_owner=delivery.owner)
    if recovered:
        log.info("leader: %d messages the previous leader was sending are due again", recovered)


@asynccontextmanager
async def instance(settings: Settings, stop: asyncio.Event) -> AsyncIterator[Single]:
    """This `python -m bot run`'s place: the only one on a SQLite file (`AnotherInstance` if
    not), or a leader-to-be on PostgreSQL (`wait_until_leader`). `stop` is set if the lead is
    lost."""
    url = settings.database_url
    if is_sqlite(url):
        path = sqlite_file(url)
        _set_role("single")
        if path is None:  # in memory, or a file: URI
            yield Single()
            return
        with sqlite_single_instance(path):
            yield Single(sole=True)
        return
    leadership = PostgresLeadership(url, check_seconds=settings.leader_check_seconds, stop=stop)
    try:
        yield leadership
    finally:
        await leadership.close()


async def stop_as_a_crash(application: HotlineApplication) -> None:
    """The lead is lost: another process may already serve the bot. Stop as a killed process
    would, so nothing this one holds in memory is written over the new leader's work: updates
    being stored or handled stop where they are (the new leader replays them), conversation
    state is not flushed, running jobs are not waited for, and the delivery settles no row it
    holds (they go out again after their lease, as a killed process's would)."""
    from bot.inbox import inbox_of
    from jobs.delivery import DELIVERY_KEY, Delivery

    application.persistence = None
    inbox = inbox_of(application)
    if inbox is not None:
        inbox.abandon()
    delivery = application.bot_data.get(DELIVERY_KEY)
    if isinstance(delivery, Delivery):
        delivery.abandon()
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.job_queue is not None and application.job_queue.scheduler.running:
        application.job_queue.scheduler.shutdown(wait=False)
    if application.running:
        await application.stop()
    await application.shutdown()
