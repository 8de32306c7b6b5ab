"""Monitors' subscriptions: who, besides the family, hears about a change to a case.

`monitor_recipients` and `monitor_alerts` are called by `storage.recipients` inside the transaction
that records an event, so the subscribers' outbox rows commit with the change itself. The rule of
DESIGN.md's "Who sees what": monitors hear only about cases the family did not keep staff-only,
only about public things (status changes and public notes, never questions to the family or
internal notes), and only while they are approved monitors (or admins) who have not blocked the
bot. An anonymous case reaches them as code, region, status and date: no name, and no note text
(a note can name the person), so a public note on an anonymous case is not sent to monitors.

Alerts are rendered at send time from parameters sealed at queue time, so when a family narrows
its consent, `storage.cases.change_visibility` rewrites (or cancels) the alerts still waiting in
the outbox in the same transaction: nothing queued under the wider consent goes out after it was
narrowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import (
    AlertFilter,
    CaseStatus,
    EventKind,
    MonitorStatus,
    Region,
    Role,
    SubscriptionScope,
    Visibility,
)
from storage.models import Case, CaseEvent, CaseRecord, Subscription, User, utcnow
from storage.outbox import Outgoing, event_key
from storage.statuses import ROWS

T_MONITOR_ALERT = "monitors.alert"
PUBLIC_EVENT_KINDS = frozenset({EventKind.STATUS_CHANGED, EventKind.PUBLIC_NOTE})
VERDICTS_AND_RETURNS: frozenset[CaseStatus] = frozenset(row.status for row in ROWS if row.verdict)
"""The "verdicts" filter: the statuses marked `verdict` in `storage.statuses` (sentenced,
released, returned, deceased), status changes only."""
FOLLOWABLE = (Visibility.PUBLIC, Visibility.ANONYMOUS)


class NotFollowable(LookupError):
    """No case a monitor may see has this code (unknown and staff-only alike)."""


@dataclass(frozen=True)
class SubscriptionView:
    """One line of /following."""

    target: str
    scope: str
    code: str | None
    region: str | None
    alert_filter: str


# -- the rule: who hears about an event -----------------------------------------------------------


def wants_event(alert_filter: str, event: CaseEvent) -> bool:
    """Whether a subscription with `alert_filter` is told about `event`."""
    if alert_filter == AlertFilter.VERDICTS_AND_RETURNS:
        return event.kind == EventKind.STATUS_CHANGED and event.new_status in VERDICTS_AND_RETURNS
    return True


def monitor_may_hear(visibility: str, kind: str) -> bool:
    """Staff-only cases never reach a monitor; anonymous ones only as status changes."""
    if kind not in PUBLIC_EVENT_KINDS or visibility == Visibility.STAFF_ONLY:
        return False
    return visibility == Visibility.PUBLIC or kind == EventKind.STATUS_CHANGED


def _matching(case: Case) -> Any:
    group = select(CaseRecord.group_id).where(CaseRecord.case_id == case.id).scalar_subquery()
    return or_(
        (Subscription.scope == SubscriptionScope.CASE) & (Subscription.case_id == case.id),
        (Subscription.scope == SubscriptionScope.REGION) & (Subscription.region == case.region),
        (Subscription.scope == SubscriptionScope.GROUP) & (Subscription.group_id == group),
        Subscription.scope == SubscriptionScope.ALL,
        Subscription.scope == SubscriptionScope.FILTER,  # matched in Python: `_filtered`
    )


async def _filtered(session: AsyncSession, case: Case, rows: Any) -> list[Any]:
    """The rows (user_id, ..., case_filter last) whose saved filter, if any, takes `case`."""
    from storage.library import case_facts, filter_matches

    kept, facts = [], None
    for row in rows:
        if row[-1] is not None:
            facts = facts or await case_facts(session, case)
            if not filter_matches(row[-1], facts):
                continue
        kept.append(row)
    return kept


def reachable_monitor() -> Any:
    return (
        or_(User.monitor_status == MonitorStatus.APPROVED, User.role == Role.ADMIN)
        & User.blocked.is_(False)
        & User.forgotten_at.is_(None)
    )


async def monitor_recipients(session: AsyncSession, case: Case, event: CaseEvent) -> list[int]:
    """User ids of approved monitors subscribed to `case` (directly, by region, or to all), once
    each however many of their subscriptions match."""
    if not monitor_may_hear(case.visibility, event.kind):
        return []
    rows = await session.execute(
        select(Subscription.user_id, Subscription.alert_filter, Subscription.case_filter)
        .join(User, User.id == Subscription.user_id)
        .where(_matching(case), reachable_monitor())
        .order_by(Subscription.user_id)
    )
    recipients: dict[int, None] = {}
    for user_id, alert_filter, _ in await _filtered(session, case, rows):
        if wants_event(alert_filter, event):
            recipients[user_id] = None
    return list(recipients)


async def record_recipients(session: AsyncSession, case: Case) -> list[int]:
    """Monitors told about changes of a public case's record (a new hearing, a transfer):
    those following it with every change; a "verdicts and returns" filter leaves them out."""
    if case.visibility != Visibility.PUBLIC:
        return []
    rows = await session.execute(
        select(Subscription.user_id, Subscription.case_filter)
        .join(User, User.id == Subscription.user_id)
        .where(
            _matching(case),
            reachable_monitor(),
            Subscription.alert_filter == AlertFilter.ALL_CHANGES,
        )
        .order_by(Subscription.user_id)
    )
    return list(dict.fromkeys(row[0] for row in await _filtered(session, case, rows)))


def alert_params(
    case: Case, event: CaseEvent, *, name: str | None, note: str | None
) -> dict[str, Any]:
    """What a monitor may read about this event under the case's current visibility."""
    public = case.visibility == Visibility.PUBLIC
    return {
        "code": case.code,
        "region": case.region,
        "kind": event.kind,
        "status": event.new_status or case.status,
        "date": (event.created_at or utcnow()).date().isoformat(),
        "name": name if public else None,
        "note": note if public else None,
    }


async def monitor_alerts(
    session: AsyncSession, case: Case, event: CaseEvent, *, name: str | None, note: str | None
) -> list[Outgoing]:
    """One `monitors.alert` outbox message per monitor who should hear about `event`."""
    params = alert_params(case, event, name=name, note=note)
    return [
        Outgoing(chat, event_key(event.id, chat), T_MONITOR_ALERT, params, event_id=event.id)
        for chat in await monitor_recipients(session, case, event)
    ]


# -- following and unfollowing --------------------------------------------------------------------


def case_target(code: str) -> str:
    return f"case:{code}"


def region_target(region: Region) -> str:
    return f"region:{region.value}"


ALL_TARGET = "all"


async def _upsert(
    session: AsyncSession, user_id: int, target: str, alert_filter: AlertFilter, **fields: Any
) -> bool:
    """Create or update one subscription; True when it is new."""
    existing = await session.scalar(
        select(Subscription).where(Subscription.user_id == user_id, Subscription.target == target)
    )
    if existing is not None:
        existing.alert_filter = alert_filter
        return False
    session.add(Subscription(user_id=user_id, target=target, alert_filter=alert_filter, **fields))
    await session.flush()
    return True


async def followable_case(session: AsyncSession, code: str | None) -> Case:
    """The case a monitor may follow by this code, or NotFollowable (same for hidden cases)."""
    case = None if code is None else await session.scalar(select(Case).where(Case.code == code))
    if case is None or case.visibility not in FOLLOWABLE:
        raise NotFollowable(code or "")
    return case


async def follow_case(
    session: AsyncSession,
    user_id: int,
    code: str | None,
    alert_filter: AlertFilter = AlertFilter.ALL_CHANGES,
) -> bool:
    case = await followable_case(session, code)
    return await _upsert(
        session,
        user_id,
        case_target(case.code),
        alert_filter,
        scope=SubscriptionScope.CASE,
        case_id=case.id,
    )


def group_target(group_id: int) -> str:
    return f"group:{group_id}"


async def follow_group(
    session: AsyncSession,
    user_id: int,
    group_id: int,
    alert_filter: AlertFilter = AlertFilter.ALL_CHANGES,
) -> bool:
    """Follow every case of a group of co-defendants (each still heard of only as far as its
    own visibility allows)."""
    from storage.models import CaseGroup

    if await session.get(CaseGroup, group_id) is None:
        raise NotFollowable(str(group_id))
    return await _upsert(
        session,
        user_id,
        group_target(group_id),
        alert_filter,
        scope=SubscriptionScope.GROUP,
        group_id=group_id,
    )


async def follow_region(
    session: AsyncSession,
    user_id: int,
    region: Region,
    alert_filter: AlertFilter = AlertFilter.ALL_CHANGES,
) -> bool:
    return await _upsert(
        session,
        user_id,
        region_target(region),
        alert_filter,
        scope=SubscriptionScope.REGION,
        region=region.value,
    )


async def follow_all(
    session: AsyncSession, user_id: int, alert_filter: AlertFilter = AlertFilter.ALL_CHANGES
) -> bool:
    return await _upsert(session, user_id, ALL_TARGET, alert_filter, scope=SubscriptionScope.ALL)


async def unfollow(session: AsyncSession, user_id: int, target: str) -> bool:
    """Remove one subscription by its target (`case:CODE`, `region:crimea`, `all`)."""
    result = await session.execute(
        delete(Subscription).where(Subscription.user_id == user_id, Subscription.target == target)
    )
    return bool(getattr(result, "rowcount", 0))


async def subscriptions_of(session: AsyncSession, user_id: int) -> list[SubscriptionView]:
    rows = await session.execute(
        select(Subscription, Case.code)
        .outerjoin(Case, Case.id == Subscription.case_id)
        .where(Subscription.user_id == user_id)
        .order_by(Subscription.scope, Subscription.target)
    )
    return [
        SubscriptionView(sub.target, sub.scope, code, sub.region, sub.alert_filter)
        for sub, code in rows
    ]
