"""Daily retention: what we no longer need is a risk we no longer carry.

Abandoned report drafts (sealed persistence entries, each with its own data key, destroyed with
it: crypto-shredding, `storage.data_keys`) go after `draft_retention_days`, delivered or
failed outbox rows after `outbox_retention_days`, audit rows after `audit_retention_days`. The
running bot also forgets its in-memory copy of a purged draft, or it would write it back.

The outbox and the audit log can hold hundreds of thousands of expired rows: they go in batches
by ranges of their ids, each its own transaction of about `BATCH_SECONDS`, with a pause between
them, so nobody's write waits behind retention for more than one batch.
"""

from __future__ import annotations

import logging
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any

from telegram.ext import Application

from storage.data_keys import shred_copies
from storage.identity import UserKeys
from storage.privacy import (
    CHAT_KIND,
    USER_KIND,
    PurgeResult,
    expired_audit,
    expired_outbox,
    purge_drafts,
    purge_in_batches,
)

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
JOB_NAME = "retention"
RUN_AT = time(3, 17)
BATCH_ROWS = 500
"""Outbox or audit rows in the first batch; later ones are sized to take `BATCH_SECONDS`."""
BATCH_SECONDS = 0.03
"""How long a batch may hold the write lock (500,000 rows in one DELETE held it 8 s on SQLite;
2,000 random rows of the outbox, with its eleven indexes and secure_delete, take 150-350 ms on
a busy 2-core machine)."""
PAUSE_SECONDS = 0.1
"""Between batches: SQLite's busy handler polls (sleeps of 25 to 100 ms) rather than queueing,
so a writer that waited for one batch needs a gap that long to find the lock free before the
next batch takes it (with 50 ms, 1.7% of a family's writes waited over 100 ms; with 100 ms,
2 of 7,043, at most 103 ms: README, "Flat at scale")."""


async def run_retention(
    services: Services,
    *,
    batch: int = BATCH_ROWS,
    pause: float = PAUSE_SECONDS,
    target: float | None = BATCH_SECONDS,
) -> PurgeResult:
    """One pass at the services' clock: drafts in one short transaction, then the outbox and
    audit rows `batch` at a time (see the module's docstring)."""
    settings, now = services.settings, services.clock()
    async with services.sessions() as session, session.begin():
        drafts = await purge_drafts(session, now=now, draft_days=settings.draft_retention_days)
    outbox_rows, outbox_batches = await purge_in_batches(
        services.sessions,
        expired_outbox(now, settings.outbox_retention_days),
        size=batch,
        pause=pause,
        target=target,
    )
    audit_rows, audit_batches = await purge_in_batches(
        services.sessions,
        expired_audit(now, settings.audit_retention_days),
        size=batch,
        pause=pause,
        target=target,
    )
    result = PurgeResult(
        drafts=drafts.drafts,
        outbox_rows=outbox_rows,
        audit_rows=audit_rows,
        report_forms=drafts.report_forms,
        batches=outbox_batches + audit_batches,
    )
    # Each purged draft's data key was destroyed with it; now the key rows' own bytes go too
    # (and those of keys destroyed since the last pass, e.g. by finished conversations).
    await shred_copies(services.engine)
    log.info(
        "retention: %d drafts, %d outbox rows, %d audit rows removed in %d batches",
        len(result.drafts),
        result.outbox_rows,
        result.audit_rows,
        result.batches,
    )
    return result


def forget_in_memory(
    application: Application[Any, Any, Any, Any, Any, Any], result: PurgeResult, keys: UserKeys
) -> None:
    """Drop PTB's copies of purged user and chat data so they are not persisted again. The rows
    are keyed by user keys, PTB by Telegram ids: PTB's ids are turned into keys to compare."""
    purged_users = {key for kind, key in result.drafts if kind == USER_KIND}
    purged_chats = {key for kind, key in result.drafts if kind == CHAT_KIND}
    for user_id in list(application.user_data):
        if str(keys.chat_key(user_id)) in purged_users:
            application.drop_user_data(user_id)
    for chat_id in list(application.chat_data):
        if str(keys.chat_key(chat_id)) in purged_chats:
            application.drop_chat_data(chat_id)


async def retention_job(context: HotlineContext) -> None:
    result = await run_retention(context.services)
    forget_in_memory(context.application, result, context.services.keys)


def schedule(application: HotlineApplication) -> None:
    """Once a day at night, and once shortly after start (a bot restarted daily still purges)."""
    job_queue = application.job_queue
    if job_queue is None:
        return
    job_queue.run_daily(retention_job, RUN_AT, name=JOB_NAME)
    job_queue.run_once(retention_job, timedelta(minutes=5), name=JOB_NAME + "_at_start")
