"""The hearing reminder job: every few minutes, queue the reminders due now
(storage/hearings.py). The outbox keys make each reminder once, so a restart, a second process
or a missed run never repeats or loses one; time comes from `Services.clock`, which tests fix."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.hearings import queue_hearing_reminders

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 600


async def run_hearing_reminders(services: Services) -> int:
    async with services.sessions() as session, session.begin():
        queued = await queue_hearing_reminders(session, services.cipher, now=services.clock())
    if queued:
        log.info("hearing reminders queued: %d", queued)
    return queued


async def _job(context: HotlineContext) -> None:
    await run_hearing_reminders(context.services)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job, interval=INTERVAL_SECONDS, first=30, name="hearing-reminders"
        )
