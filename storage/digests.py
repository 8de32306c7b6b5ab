"""Daily digests: each approved monitor may get one message a day listing the changes in what they
follow.

A digest for local day D covers the 24 hours before its send time on D (from the send time on
D-1), so every change lands in exactly one digest whatever time the monitor chose. What a digest
shows is decided when it is built, under each case's visibility at that moment: a case made
staff-only since the change is left out, one made anonymous loses its name and notes.
`last_sent_on` marks the day done (also on a day with nothing to send), in the same transaction
as the queued parts, so a digest is never built twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import AlertFilter, EventKind, SubscriptionScope, Visibility
from storage.library import case_facts, filter_matches
from storage.models import (
    Case,
    CaseEvent,
    CasePersonal,
    DigestSetting,
    Subscription,
    User,
)
from storage.subscriptions import (
    FOLLOWABLE,
    PUBLIC_EVENT_KINDS,
    monitor_may_hear,
    reachable_monitor,
    wants_event,
)

DEFAULT_TIMEZONE = "Europe/Kyiv"
DEFAULT_SEND_AT_MINUTE = 18 * 60
PUBLIC_NOTE = EventKind.PUBLIC_NOTE


@dataclass(frozen=True)
class DigestSettingView:
    enabled: bool
    send_at_minute: int
    timezone: str


@dataclass(frozen=True)
class DueDigest:
    """A monitor whose digest for `day` (their local date) is due now."""

    user_id: int
    language: str | None
    day: date
    timezone: str
    start: datetime
    end: datetime


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def send_moment(day: date, send_at_minute: int, timezone: str) -> datetime:
    """The UTC instant of the local send time on `day` (zoneinfo handles summer time)."""
    local = datetime.combine(day, time(send_at_minute // 60, send_at_minute % 60))
    return local.replace(tzinfo=zone(timezone)).astimezone(UTC)


def parse_send_time(text: str) -> int | None:
    """'HH:MM' (24-hour) as minutes after midnight, or None."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        return None
    h, m = int(hours), int(minutes)
    return h * 60 + m if 0 <= h < 24 and 0 <= m < 60 else None


async def set_digest(
    session: AsyncSession,
    user_id: int,
    *,
    enabled: bool,
    send_at_minute: int | None = None,
    timezone: str | None = None,
) -> DigestSettingView:
    setting = await session.get(DigestSetting, user_id)
    if setting is None:
        setting = DigestSetting(
            user_id=user_id, send_at_minute=DEFAULT_SEND_AT_MINUTE, timezone=DEFAULT_TIMEZONE
        )
        session.add(setting)
    setting.enabled = enabled
    if send_at_minute is not None:
        setting.send_at_minute = send_at_minute
    if timezone is not None:
        setting.timezone = zone(timezone).key
    await session.flush()
    return DigestSettingView(setting.enabled, setting.send_at_minute, setting.timezone)


async def due_digests(session: AsyncSession, now: datetime) -> list[DueDigest]:
    """Enabled digests of reachable approved monitors whose local send time today has passed
    and who have not had today's digest."""
    rows = await session.execute(
        select(DigestSetting, User.language)
        .join(User, User.id == DigestSetting.user_id)
        .where(DigestSetting.enabled.is_(True), reachable_monitor())
        .order_by(DigestSetting.user_id)
    )
    due: list[DueDigest] = []
    for setting, language in rows:
        today = now.astimezone(zone(setting.timezone)).date()
        end = send_moment(today, setting.send_at_minute, setting.timezone)
        if now < end or (setting.last_sent_on is not None and setting.last_sent_on >= today):
            continue
        start = send_moment(today - timedelta(days=1), setting.send_at_minute, setting.timezone)
        due.append(DueDigest(setting.user_id, language, today, setting.timezone, start, end))
    return due


async def digest_items(
    session: AsyncSession, cipher: FieldCipher, digest: DueDigest
) -> list[dict[str, Any]]:
    """The window's changes in this monitor's subscriptions, oldest first, each once, as the
    monitor may see them now."""
    subs = list(
        await session.scalars(select(Subscription).where(Subscription.user_id == digest.user_id))
    )
    if not subs:
        return []
    case_ids = [s.case_id for s in subs if s.scope == SubscriptionScope.CASE and s.case_id]
    regions = [s.region for s in subs if s.scope == SubscriptionScope.REGION and s.region]
    follows_all = any(s.scope in (SubscriptionScope.ALL, SubscriptionScope.FILTER) for s in subs)
    matches = or_(
        Case.id.in_(case_ids) if case_ids else false(),
        Case.region.in_(regions) if regions else false(),
    )
    query = (
        select(CaseEvent, Case)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            CaseEvent.created_at >= digest.start,
            CaseEvent.created_at < digest.end,
            CaseEvent.kind.in_(sorted(PUBLIC_EVENT_KINDS)),
            Case.visibility.in_(sorted(FOLLOWABLE)),
        )
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )
    if not follows_all:
        query = query.where(matches)
    saved = any(s.scope == SubscriptionScope.FILTER for s in subs)  # matched case by case
    local = zone(digest.timezone)
    names: dict[int, str | None] = {}
    items: list[dict[str, Any]] = []
    for event, case in (await session.execute(query)).all():
        if not monitor_may_hear(case.visibility, event.kind):
            continue
        facts = await case_facts(session, case) if saved else None
        filters = [
            s.alert_filter
            for s in subs
            if s.scope == SubscriptionScope.ALL
            or (s.scope == SubscriptionScope.CASE and s.case_id == case.id)
            or (s.scope == SubscriptionScope.REGION and s.region == case.region)
            or (
                s.scope == SubscriptionScope.FILTER
                and facts
                and filter_matches(s.case_filter, facts)
            )
        ]
        if not any(wants_event(f or AlertFilter.ALL_CHANGES, event) for f in filters):
            continue
        public = case.visibility == Visibility.PUBLIC
        keyed = await case_cipher(session, cipher, case.id)
        if public and case.id not in names:
            personal = await session.get(CasePersonal, case.id)
            names[case.id] = keyed.open(personal.detainee_name) if personal else None
        items.append(
            {
                "code": case.code,
                "name": names.get(case.id) if public else None,
                "region": case.region,
                "kind": event.kind,
                "status": event.new_status,
                "note": keyed.open(event.body) if public and event.kind == PUBLIC_NOTE else None,
                "time": event.created_at.astimezone(local).strftime("%H:%M"),
            }
        )
    return items


async def mark_digest_done(session: AsyncSession, user_id: int, day: date) -> None:
    setting = await session.get(DigestSetting, user_id)
    if setting is not None:
        setting.last_sent_on = day
