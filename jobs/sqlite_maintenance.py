"""SQLite upkeep: empty the write-ahead log every few minutes.

SQLite's automatic checkpoints copy the WAL back into the database but leave the WAL file as it
was, still holding old images of the pages it copied: the name erased by /forget (zeroed in the
database by `secure_delete`) could be read back from the WAL of a seized disk. A
`wal_checkpoint(TRUNCATE)` copies the WAL and cuts it to zero bytes. On PostgreSQL this job is
not scheduled.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from storage.db import checkpoint_wal

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
JOB_NAME = "sqlite_checkpoint"
CHECKPOINT_INTERVAL = timedelta(minutes=5)


async def checkpoint(services: Services) -> bool:
    """One TRUNCATE checkpoint; False when a reader or writer kept SQLite from finishing it (the
    next run tries again)."""
    outcome = await checkpoint_wal(services.engine)
    if outcome is None:
        return True
    busy, frames, done = outcome
    if busy:
        log.info("sqlite checkpoint: busy (%d of %d frames copied), retrying later", done, frames)
        return False
    log.debug("sqlite checkpoint: %d frames copied, WAL emptied", done)
    return True


async def checkpoint_job(context: HotlineContext) -> None:
    await checkpoint(context.services)


def setup(application: HotlineApplication) -> None:
    from bot.services import SERVICES_KEY

    services = application.bot_data[SERVICES_KEY]
    job_queue = application.job_queue
    if job_queue is None or services.engine.dialect.name != "sqlite":
        return
    job_queue.run_repeating(
        checkpoint_job,
        interval=CHECKPOINT_INTERVAL,
        first=CHECKPOINT_INTERVAL,
        name=JOB_NAME,
        job_kwargs={"max_instances": 1, "coalesce": True},
    )
