"""The daily digest job: every few minutes, queue the digests whose local send time has passed.

Each monitor's digest is built and queued in its own transaction, one outbox row per message
part (key ``digest:<date>:<chat>:<part>``), split only where Telegram's 4,096-character limit
forces it. The split is measured in the monitor's language, the one the delivery job renders it
in a moment later. Time comes from `Services.clock`, which tests fix.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.texts.messages.monitors import split_digest
from storage.digests import digest_items, due_digests, mark_digest_done
from storage.enums import OutboxKind
from storage.outbox import PRIORITY_DIGEST, Outgoing, enqueue

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 300
T_DIGEST_PART = "monitors.digest_part"


def digest_key(day: str, chat_id: int, part: int) -> str:
    return f"digest:{day}:{chat_id}:{part}"


async def run_digests(services: Services) -> int:
    """Queue every digest due now; returns how many message parts were queued."""
    now = services.clock()
    async with services.sessions() as session:
        due = await due_digests(session, now)
    queued = 0
    for digest in due:
        async with services.sessions() as session, session.begin():
            items = await digest_items(session, services.cipher, digest)
            if items:
                tr = services.i18n.get(digest.language)
                day = digest.day.isoformat()
                parts = split_digest(tr, tr.format_date(digest.day), items)
                messages = [
                    Outgoing(
                        digest.user_id,
                        digest_key(day, digest.user_id, number),
                        T_DIGEST_PART,
                        {"date": day, "part": number, "parts": len(parts), "items": part},
                        kind=OutboxKind.DIGEST,
                        priority=PRIORITY_DIGEST,
                    )
                    for number, part in enumerate(parts, start=1)
                ]
                queued += await enqueue(session, services.cipher, messages, now=now)
            await mark_digest_done(session, digest.user_id, digest.day)
    if queued:
        log.info("digests queued: %d parts for %d monitors", queued, len(due))
    return queued


async def _job(context: HotlineContext) -> None:
    await run_digests(context.services)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job, interval=INTERVAL_SECONDS, first=30, name="digests"
        )
