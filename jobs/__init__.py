"""Scheduled and background work on PTB's JobQueue; durable work lives in database rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context import HotlineApplication


def register_jobs(application: HotlineApplication) -> None:
    """Each jobs module adds its own jobs here."""
    from jobs import (
        broadcast_progress,
        deletions,
        delivery,
        digests,
        hearings,
        name_index,
        reminders,
        retention,
        silence,
        sqlite_maintenance,
        urgent_escalation,
    )

    retention.schedule(application)
    delivery.setup(application)
    deletions.setup(application)
    reminders.setup(application)
    hearings.setup(application)
    silence.setup(application)
    name_index.setup(application)
    digests.setup(application)
    broadcast_progress.setup(application)
    sqlite_maintenance.setup(application)
    urgent_escalation.setup(application)
