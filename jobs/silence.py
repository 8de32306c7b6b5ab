"""The silence alarm job: once an hour, flag the held people not heard of for
`HOTLINE_SILENCE_ALARM_DAYS` days (storage/signs_of_life.py). The outbox keys make each alarm
once per period, so running hourly (or after a restart) never repeats one; time comes from
`Services.clock`, which tests fix."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.recipients import all_staff, staff_contacts, staff_desk
from storage.signs_of_life import queue_silence_alarms

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600


async def run_silence_alarms(services: Services) -> int:
    staff = staff_contacts(services.admin_keys, services.staff_chat_key)
    async with services.sessions() as session, session.begin():
        chats = staff_desk(staff) if staff.group_chat_id else await all_staff(session, staff)
        queued = await queue_silence_alarms(
            session,
            services.cipher,
            now=services.clock(),
            days=services.settings.silence_alarm_days,
            staff_chats=chats,
        )
    if queued:
        log.info("silence alarms queued: %d", queued)
    return queued


async def _job(context: HotlineContext) -> None:
    await run_silence_alarms(context.services)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job, interval=INTERVAL_SECONDS, first=120, name="silence-alarms"
        )
