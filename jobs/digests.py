"""The daily digest job: every few minutes, queue the digests whose local send time has passed.

Set-based, so 5,000 monitors cost a few queries, not a few per monitor: the due monitors are
taken `CHUNK` at a time, and for each chunk one transaction reads their subscriptions and the
public events of their windows (two queries, `storage.digests.digests_items`), queues every part
in one bulk insert and marks the days done, so a digest is never built twice and a chunk's
write lock is short. Each part is one outbox row (key ``digest:<date>:<chat>:<part>``), split
only where Telegram's 4,096-character limit forces it, measured in the monitor's language (the
one the delivery job renders it in); monitors whose digests are alike share one sealed payload.
Time comes from `Services.clock`, which tests fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.i18n import Translator
from bot.texts.messages.monitors import digest_line, split_digest, telegram_length
from storage.digests import DueDigest, digests_items, due_digests, mark_digests_done
from storage.enums import OutboxKind
from storage.outbox import PRIORITY_DIGEST, Outgoing, enqueue

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext
    from bot.services import Services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 300
T_DIGEST_PART = "monitors.digest_part"
CHUNK = 500
"""Monitors per transaction: their parts (about 900 rows at the benchmark's mix) are one short
write; a smaller chunk repeats the events query more often."""


def digest_key(day: str, chat_id: int, part: int) -> str:
    return f"digest:{day}:{chat_id}:{part}"


class _Sizes:
    """A digest line's length per language, measured once however many digests show it (the
    items of one event are one shared dict, see `storage.digests`)."""

    def __init__(self, tr: Translator) -> None:
        self.tr = tr
        self.known: dict[int, tuple[Mapping[str, Any], int]] = {}

    def __call__(self, item: Mapping[str, Any]) -> int:
        known = self.known.get(id(item))
        if known is None or known[0] is not item:
            known = self.known[id(item)] = (item, telegram_length(digest_line(self.tr, item)))
        return known[1]


def _messages(
    services: Services,
    digest: DueDigest,
    items: list[dict[str, Any]],
    sizes: dict[str | None, _Sizes],
) -> list[Outgoing]:
    tr = services.i18n.get(digest.language)
    measure = sizes.get(digest.language) or sizes.setdefault(digest.language, _Sizes(tr))
    day = digest.day.isoformat()
    parts = split_digest(tr, tr.format_date(digest.day), items, line_size=measure)
    return [
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


async def _queue_chunk(services: Services, chunk: Sequence[DueDigest], now: datetime) -> int:
    sizes: dict[str | None, _Sizes] = {}
    async with services.sessions() as session, session.begin():
        found = await digests_items(session, services.cipher, chunk)
        messages = [
            message
            for digest in chunk
            if found[digest.user_id]
            for message in _messages(services, digest, found[digest.user_id], sizes)
        ]
        queued = await enqueue(session, services.cipher, messages, now=now)
        await mark_digests_done(session, chunk)
    return queued


async def run_digests(services: Services) -> int:
    """Queue every digest due now; returns how many message parts were queued."""
    now = services.clock()
    async with services.sessions() as session:
        due = await due_digests(session, now)
    queued = 0
    for start in range(0, len(due), CHUNK):
        queued += await _queue_chunk(services, due[start : start + CHUNK], now)
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
