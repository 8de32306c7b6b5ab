"""Daily retention: what we no longer need is a risk we no longer carry.

Abandoned report drafts (sealed persistence entries, each with its own data key, destroyed with
it: crypto-shredding, `storage.data_keys`) go after `draft_retention_days`, delivered or
failed outbox rows after `outbox_retention_days`, audit rows after `audit_retention_days`. The
running bot also forgets its in-memory copy of a purged draft, or it would write it back.
"""

from __future__ import annotations

import logging
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any

from telegram.ext import Application

from storage.data_keys import shred_copies
from storage.identity import UserKeys
from storage.privacy import CHAT_KIND, USER_KIND, PurgeResult, purge_expired

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
JOB_NAME = "retention"
RUN_AT = time(3, 17)


async def run_retention(services: Services) -> PurgeResult:
    """One pass, in one short transaction, at the services' clock."""
    settings = services.settings
    async with services.sessions() as session, session.begin():
        result = await purge_expired(
            session,
            now=services.clock(),
            draft_days=settings.draft_retention_days,
            outbox_days=settings.outbox_retention_days,
            audit_days=settings.audit_retention_days,
        )
    # Each purged draft's data key was destroyed with it; now the key rows' own bytes go too
    # (and those of keys destroyed since the last pass, e.g. by finished conversations).
    await shred_copies(services.engine)
    log.info(
        "retention: %d drafts, %d outbox rows, %d audit rows removed",
        len(result.drafts),
        result.outbox_rows,
        result.audit_rows,
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
