"""Keeps the keyed name index of every case (storage/search.py): at start (cases filed before
the upgrade, or every case after a new master key) and every minute (cases re-keyed or erased
since). A report indexes its own case when it is filed, so this only catches up."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storage.search import refresh_name_indexes

if TYPE_CHECKING:
    from bot.context import HotlineApplication, HotlineContext

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 60


async def _job(context: HotlineContext) -> None:
    services = context.services
    written = await refresh_name_indexes(services.sessions, services.cipher)
    if written:
        log.info("name index: %d cases indexed", written)


def setup(application: HotlineApplication) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _job, interval=INTERVAL_SECONDS, first=1, name="name-index"
        )
