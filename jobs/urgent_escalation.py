"""Escalation of urgent alerts nobody took: every half minute, each urgent case whose alert has
waited HOTLINE_URGENT_ESCALATION_MINUTES without anyone taking it is sent again, to those on
call and to every admin (`storage.urgent.escalate_due`, at most `MAX_ROUNDS` times, once per
period). Time comes from `Services.clock`, which tests fix; the outbox keys (case, round,
chat) make a second run at the same moment queue nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.oncall import Duty
from storage.urgent import escalate_due

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30


async def run_escalation(services: Services) -> list[str]:
    """Send again what is due now; returns the case codes escalated."""
    async with services.sessions() as session, session.begin():
        escalated = await escalate_due(
            session,
            services.cipher,
            now=services.clock(),
            minutes=services.settings.urgent_escalation_minutes,
            duty=Duty.of(services.admin_keys, services.settings.timezone),
        )
    if escalated:
        log.warning("urgent alerts nobody took, sent again to admins: %d", len(escalated))
    return escalated


async def _job(context: HotlineContext) -> None:
    await run_escalation(context.services)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job,
            interval=INTERVAL_SECONDS,
            first=INTERVAL_SECONDS,
            name="urgent:escalation",
            job_kwargs={"max_instances": 1, "coalesce": True},
        )
