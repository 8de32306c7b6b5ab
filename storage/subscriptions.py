"""Monitors' subscriptions: who, besides the family, hears about a change to a case.

`monitor_recipients` is called by `storage.cases` inside the transaction that records an event, so
the subscribers' outbox rows commit with the change itself. The rule of DESIGN.md's "Who sees what":
monitors hear only about cases the family did not keep staff-only, only about public things
(status changes and public notes, never questions to the family or internal notes), and only while
they are approved monitors who have not blocked the bot.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import (
    AlertFilter,
    CaseStatus,
    EventKind,
    MonitorStatus,
    Role,
    SubscriptionScope,
    Visibility,
)
from storage.models import Case, CaseEvent, Subscription, User

PUBLIC_EVENT_KINDS = frozenset({EventKind.STATUS_CHANGED, EventKind.PUBLIC_NOTE})
VERDICTS_AND_RETURNS = frozenset(
    {CaseStatus.SENTENCED, CaseStatus.RELEASED, CaseStatus.RETURNED, CaseStatus.DECEASED}
)


def wants_event(alert_filter: str, event: CaseEvent) -> bool:
    """Whether a subscription with `alert_filter` is told about `event`."""
    if alert_filter == AlertFilter.VERDICTS_AND_RETURNS:
        return event.kind == EventKind.STATUS_CHANGED and event.new_status in VERDICTS_AND_RETURNS
    return True


async def monitor_recipients(session: AsyncSession, case: Case, event: CaseEvent) -> list[int]:
    """User ids of approved monitors subscribed to `case` (directly, by region, or to all)."""
    if case.visibility == Visibility.STAFF_ONLY or event.kind not in PUBLIC_EVENT_KINDS:
        return []
    rows = await session.execute(
        select(Subscription.user_id, Subscription.alert_filter)
        .join(User, User.id == Subscription.user_id)
        .where(
            or_(
                (Subscription.scope == SubscriptionScope.CASE) & (Subscription.case_id == case.id),
                (Subscription.scope == SubscriptionScope.REGION)
                & (Subscription.region == case.region),
                Subscription.scope == SubscriptionScope.ALL,
            ),
            or_(User.monitor_status == MonitorStatus.APPROVED, User.role == Role.ADMIN),
            User.blocked.is_(False),
            User.forgotten_at.is_(None),
        )
        .order_by(Subscription.user_id)
    )
    recipients: list[int] = []
    for user_id, alert_filter in rows:
        if wants_event(alert_filter, event) and user_id not in recipients:
            recipients.append(user_id)
    return recipients
