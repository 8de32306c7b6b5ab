"""Reminders: the open cases nobody has touched for a while (to staff, weekly), and one gentle
reminder to a family who has not answered a question for a few days.

The job runs hourly; the outbox keys (ISO week, question event) make each reminder happen once,
so a restart or an extra run never repeats one. Time comes from `Services.clock`, which tests fix.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.case_reminders import queue_need_info_reminders, queue_stale_case_list
from storage.recipients import staff_contacts

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600


async def run_reminders(services: Services) -> tuple[int, int]:
    """Queue what is due now; returns (family reminders, staff lists) newly queued."""
    settings = services.settings
    now = services.clock()
    async with services.sessions() as session, session.begin():
        families = await queue_need_info_reminders(
            session, services.cipher, now=now, days=settings.need_info_reminder_days
        )
        staff = await queue_stale_case_list(
            session,
            services.cipher,
            now=now,
            days=settings.stale_case_days,
            staff=staff_contacts(services.admin_keys, services.staff_chat_key),
        )
    if families or staff:
        log.info("reminders queued: %d to families, %d to staff", families, staff)
    return families, staff


async def _job(context: HotlineContext) -> None:
    await run_reminders(context.services)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job, interval=INTERVAL_SECONDS, first=60, name="reminders"
        )
