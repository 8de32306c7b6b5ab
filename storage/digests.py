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

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import FieldCipher
from storage.enums import AlertFilter, EventKind, SubscriptionScope, Visibility
from storage.library import CaseFacts, facts_of, filter_matches
from storage.models import (
    Case,
    CaseEvent,
    CasePersonal,
    CaseRecord,
    DataKey,
    DigestSetting,
    Subscription,
    User,
)
from storage.outbox import row_cipher
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
IN_LIST = 1000
"""User ids per IN (...) list: well under SQLite's and asyncpg's limits on bound parameters."""


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


@dataclass
class _Change:
    """One public event of the window with what its digest line needs, opened once for every
    monitor it concerns."""

    event: CaseEvent
    case: Case
    group_id: int | None
    articles: list[Any] | None
    name: str | None
    note: str | None
    facts: CaseFacts | None = None
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The item, per time zone (the time shown is local): one dict shared by every digest."""

    def matches(self, sub: Subscription) -> bool:
        """Whether `sub` follows this change's case (a saved filter: matched on its facts)."""
        scope, case = sub.scope, self.case
        if scope == SubscriptionScope.ALL:
            return True
        if scope == SubscriptionScope.CASE:
            return sub.case_id == case.id
        if scope == SubscriptionScope.REGION:
            return sub.region == case.region
        if scope == SubscriptionScope.GROUP:
            return self.group_id is not None and sub.group_id == self.group_id
        if scope == SubscriptionScope.FILTER:
            self.facts = self.facts or facts_of(case, self.articles)
            return filter_matches(sub.case_filter, self.facts)
        return False

    def item(self, timezone: str) -> dict[str, Any]:
        line = self.lines.get(timezone)
        if line is None:
            event, case = self.event, self.case
            line = self.lines[timezone] = {
                "code": case.code,
                "name": self.name,
                "region": case.region,
                "kind": event.kind,
                "status": event.new_status,
                "note": self.note,
                "time": event.created_at.astimezone(zone(timezone)).strftime("%H:%M"),
            }
        return line


async def _subscriptions(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, list[Any]]:
    subs: dict[int, list[Any]] = defaultdict(list)
    for start in range(0, len(user_ids), IN_LIST):
        chunk = user_ids[start : start + IN_LIST]
        for sub in await session.scalars(
            select(Subscription).where(Subscription.user_id.in_(chunk)).order_by(Subscription.id)
        ):
            subs[sub.user_id].append(sub)
    return subs


async def _changes(
    session: AsyncSession, cipher: FieldCipher, start: datetime, end: datetime
) -> list[_Change]:
    """The public events of [start, end) a monitor may hear of, oldest first, in one query with
    their case, group, articles, sealed name and data key; names and notes opened once each."""
    rows = await session.execute(
        select(
            CaseEvent,
            Case,
            CaseRecord.group_id,
            CaseRecord.articles,
            CasePersonal.detainee_name,
            DataKey.id,
            DataKey.sealed,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .outerjoin(CaseRecord, CaseRecord.case_id == Case.id)
        .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
        .outerjoin(DataKey, DataKey.case_id == Case.id)
        .where(
            CaseEvent.created_at >= start,
            CaseEvent.created_at < end,
            CaseEvent.kind.in_(sorted(PUBLIC_EVENT_KINDS)),
            Case.visibility.in_(sorted(FOLLOWABLE)),
        )
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )
    names: dict[int, str | None] = {}
    changes = []
    for event, case, group_id, articles, sealed_name, key_id, sealed_key in rows:
        if not monitor_may_hear(case.visibility, event.kind):
            continue
        name = note = None
        if case.visibility == Visibility.PUBLIC:  # an anonymous case: code, region, status
            keyed = row_cipher(cipher, key_id, sealed_key)
            if case.id not in names:
                names[case.id] = keyed.open(sealed_name)
            name = names[case.id]
            note = keyed.open(event.body) if event.kind == PUBLIC_NOTE else None
        changes.append(_Change(event, case, group_id, articles, name, note))
    return changes


def _items(digest: DueDigest, subs: list[Subscription], changes: list[_Change]) -> list[Any]:
    """One monitor's items: the changes of its window in the cases its subscriptions follow
    and whose alert filter takes them, oldest first, each once."""
    times = [change.event.created_at for change in changes]
    window = changes[bisect_left(times, digest.start) : bisect_left(times, digest.end)]
    items = []
    for change in window:
        filters = [sub.alert_filter for sub in subs if change.matches(sub)]
        if any(wants_event(f or AlertFilter.ALL_CHANGES, change.event) for f in filters):
            items.append(change.item(digest.timezone))
    return items


async def digests_items(
    session: AsyncSession, cipher: FieldCipher, due: Sequence[DueDigest]
) -> dict[int, list[dict[str, Any]]]:
    """Every due digest's items (by monitor), as each monitor may see them now: one query for
    their subscriptions, one for the public events of all their windows, matched in Python."""
    subs = await _subscriptions(session, [digest.user_id for digest in due])
    followers = [digest for digest in due if subs.get(digest.user_id)]
    if not followers:
        return {digest.user_id: [] for digest in due}
    start = min(digest.start for digest in followers)
    end = max(digest.end for digest in followers)
    changes = await _changes(session, cipher, start, end)
    return {digest.user_id: _items(digest, subs.get(digest.user_id, []), changes) for digest in due}


async def digest_items(
    session: AsyncSession, cipher: FieldCipher, digest: DueDigest
) -> list[dict[str, Any]]:
    """The window's changes in this monitor's subscriptions, oldest first, each once, as the
    monitor may see them now."""
    return (await digests_items(session, cipher, [digest]))[digest.user_id]


async def mark_digests_done(session: AsyncSession, done: Iterable[DueDigest]) -> None:
    """Mark each digest's day done: one UPDATE per distinct day."""
    days: dict[date, list[int]] = defaultdict(list)
    for digest in done:
        days[digest.day].append(digest.user_id)
    for day, user_ids in days.items():
        for start in range(0, len(user_ids), IN_LIST):
            await session.execute(
                update(DigestSetting)
                .where(DigestSetting.user_id.in_(user_ids[start : start + IN_LIST]))
                .values(last_sent_on=day)
                .execution_options(synchronize_session=False)
            )
