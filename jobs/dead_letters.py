"""Dead rows, told to staff once: a burst of undeliverable messages (three families who blocked
the bot, an outage past the horizon) becomes ONE summary, not one notice per message.

A dead row waits `dead_summary_seconds` (so a burst is gathered); then every dead row staff have
not heard of goes into one summary to the staff desk, and all of them are marked reported in the
same transaction. A summary that itself cannot be delivered is marked reported without a summary
of its own, so dead notices never breed more dead notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from storage import outbox
from storage.crypto import FieldCipher
from storage.db import SessionFactory
from storage.enums import OutboxKind
from storage.outbox import PRIORITY_STAFF, DeadRow, Outgoing
from storage.recipients import StaffContacts, staff_desk

SUMMARY_TEMPLATE = "delivery.dead_summary"
DEAD_LETTER_TEMPLATE = "cases.dead_letter_staff"
"""The one-notice-per-row template of earlier releases (rows queued then still render)."""
STAFF_NOTICES = frozenset({SUMMARY_TEMPLATE, DEAD_LETTER_TEMPLATE})
HORIZON_SUFFIX = ":horizon"
"""Ends the `last_error` of a row given up after the horizon (`NetworkError:horizon`)."""
MAX_CODES = 20


def why(reason: str) -> str:
    """'blocked', 'unreachable' (past the horizon) or 'refused' (bad request, chat not found)."""
    if reason.startswith("Forbidden"):
        return "blocked"
    if reason.endswith(HORIZON_SUFFIX):
        return "unreachable"
    return "refused"


def summary_params(rows: Sequence[DeadRow], horizon_hours: float) -> dict[str, object]:
    """Counts by reason and the case codes concerned: no names, no texts, no Telegram ids."""
    counts = {"blocked": 0, "refused": 0, "unreachable": 0}
    for row in rows:
        counts[why(row.reason)] += 1
    codes = sorted({row.code for row in rows if row.code})
    return {
        "count": len(rows),
        **counts,
        "hours": horizon_hours,
        "codes": codes[:MAX_CODES],
        "more_codes": max(0, len(codes) - MAX_CODES),
    }


async def report_dead(
    sessions: SessionFactory,
    cipher: FieldCipher,
    staff: StaffContacts,
    *,
    now: datetime,
    gather: timedelta,
    horizon_hours: float,
) -> int:
    """Queue one summary of the unreported dead rows, once the oldest is `gather` old; returns
    how many rows it covers (0: nothing to say yet)."""
    async with sessions() as session, session.begin():
        rows = await outbox.unreported_dead(session, cipher, died_before=now - gather)
        if not rows:
            return 0
        counted = [row for row in rows if row.template not in STAFF_NOTICES]
        if counted:
            params = summary_params(counted, horizon_hours)
            last = max(row.id for row in rows)
            await outbox.enqueue(
                session,
                cipher,
                [
                    Outgoing(
                        chat,
                        f"dead-summary:{last}:{chat}",
                        SUMMARY_TEMPLATE,
                        params,
                        kind=OutboxKind.STAFF_ALERT,
                        priority=PRIORITY_STAFF,
                    )
                    for chat in staff_desk(staff)
                ],
                now=now,
            )
        await outbox.mark_dead_reported(session, [row.id for row in rows], now=now)
    return len(counted)
