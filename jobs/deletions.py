"""Deletes messages whose time has come: the details a discreet notification showed.

The time to delete is a database row (`sensitive_messages.delete_at`), not a timer in memory, so
a restart does not leave details on the phone: a sweep runs soon after start and then every
`SWEEP_SECONDS`, and "Show" also schedules a run at the exact moment. Deletion uses
deleteMessages (up to 100 ids a call). Telegram refuses messages older than 48 hours; their ids
are dropped, and so are ids a network error could not delete once they are that old.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application

from storage import chat_cleanup
from storage.identity import telegram_ids_of

if TYPE_CHECKING:
    from bot.context import HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)

JOB_NAME = "deletions:sweep"
SWEEP_SECONDS = 30.0
BATCH = 100


def _services(application: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    from bot.services import SERVICES_KEY

    services: Services = application.bot_data[SERVICES_KEY]
    return services


async def delete_due(application: Application[Any, Any, Any, Any, Any, Any]) -> int:
    """Delete every message that is due, at the services' clock; returns how many ids were done."""
    services = _services(application)
    now = services.clock()
    async with services.sessions() as session:
        due = await chat_cleanup.due_deletions(session, now=now)
        stale = await chat_cleanup.has_undeletable(session, now=now)
        # Stored under user keys: open where each chat really is.
        chats = await telegram_ids_of(session, services.cipher, [item.chat_id for item in due])
    done: list[int] = []
    for item in due:
        chat = chats.get(item.chat_id)
        if chat is None:  # the user is gone: nothing we can delete any more
            done += item.row_ids
            continue
        try:
            for start in range(0, len(item.message_ids), BATCH):
                batch = item.message_ids[start : start + BATCH]
                await application.bot.delete_messages(chat, batch)
        except (BadRequest, Forbidden):
            pass  # too old, already deleted, or the user blocked the bot: nothing more to do
        except TelegramError as error:
            log.warning("deletions: %s, will try again", type(error).__name__)
            continue
        done += item.row_ids
    if not done and not stale:
        return 0  # nothing to write: no write lock, no WAL traffic every sweep
    async with services.sessions() as session, session.begin():
        await chat_cleanup.drop(session, done)
        await chat_cleanup.purge_undeletable(session, now=now)
    if done:
        log.info("deletions: %d expired messages deleted", len(done))
    return len(done)


async def sweep(context: HotlineContext) -> None:
    await delete_due(context.application)


def schedule_at(application: Application[Any, Any, Any, Any, Any, Any], delay: timedelta) -> None:
    """Run a sweep after `delay` (besides the regular sweep, which covers restarts)."""
    job_queue = application.job_queue
    if job_queue is not None and job_queue.scheduler.running:
        job_queue.run_once(sweep, delay + timedelta(seconds=1), name=JOB_NAME + ":at")


def setup(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    job_queue = application.job_queue
    if job_queue is None:
        return
    job_queue.run_repeating(
        sweep,
        interval=SWEEP_SECONDS,
        first=5.0,
        name=JOB_NAME,
        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )
