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

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
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


@lru_cache(maxsize=16384)
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
    days: dict[str, date] = {}  # each time zone's date now
    for setting, language in rows:
        today = days.get(setting.timezone)
        if today is None:
            today = days[setting.timezone] = now.astimezone(zone(setting.timezone)).date()
        end = send_moment(today, setting.send_at_minute, setting.timezone)
        if now < end or (setting.last_sent_on is not None and setting.last_sent_on >= today):
            continue
        start = send_moment(today - timedelta(days=1), setting.send_at_minute, setting.timezone)
        due.append(DueDigest(setting.user_id, language, today, setting.timezone, start, end))
    return due


@dataclass
class _Change:
    """One public event of the windows with what its digest line needs, opened once for every
    monitor it concerns."""

    event: CaseEvent
    case: Case
    group_id: int | None
    articles: list[Any] | None
    name: str | None
    note: str | None
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The item, per time zone (the time shown is local): one dict shared by every digest."""

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


class _Changes:
    """The changes of a chunk's windows, oldest first, and which of them each kind of
    subscription takes: worked out once per distinct subscription (its scope, target and alert
    filter), shared by every monitor who has one like it."""

    def __init__(self, changes: list[_Change]) -> None:
        self.changes = changes
        self.times = [change.event.created_at for change in changes]
        self._by: dict[tuple[str, Any], list[int]] = defaultdict(list)
        for number, change in enumerate(changes):
            self._by[SubscriptionScope.CASE, change.case.id].append(number)
            self._by[SubscriptionScope.REGION, change.case.region].append(number)
            if change.group_id is not None:
                self._by[SubscriptionScope.GROUP, change.group_id].append(number)
        self._facts: dict[int, CaseFacts] = {}
        self._taken: dict[tuple[Any, ...], list[int]] = {}

    def _facts_of(self, number: int) -> CaseFacts:
        facts = self._facts.get(number)
        if facts is None:
            change = self.changes[number]
            facts = self._facts[number] = facts_of(change.case, change.articles)
        return facts

    def _followed(self, sub: Subscription) -> list[int]:
        """The changes (by number) in the cases `sub` follows, whatever its alert filter."""
        scope = sub.scope
        if scope == SubscriptionScope.ALL:
            return list(range(len(self.changes)))
        if scope == SubscriptionScope.CASE:
            return self._by.get((scope, sub.case_id), [])
        if scope == SubscriptionScope.REGION:
            return self._by.get((scope, sub.region), [])
        if scope == SubscriptionScope.GROUP:
            return self._by.get((scope, sub.group_id), []) if sub.group_id is not None else []
        if scope == SubscriptionScope.FILTER:
            chosen = sub.case_filter
            return [
                n for n in range(len(self.changes)) if filter_matches(chosen, self._facts_of(n))
            ]
        return []

    def taken(self, sub: Subscription) -> list[int]:
        """The changes (by number, in order) `sub` brings into a digest."""
        chosen = json.dumps(sub.case_filter, sort_keys=True) if sub.case_filter else None
        key = (sub.scope, sub.case_id, sub.region, sub.group_id, chosen, sub.alert_filter)
        taken = self._taken.get(key)
        if taken is None:
            wanted = sub.alert_filter or AlertFilter.ALL_CHANGES
            taken = self._taken[key] = [
                n for n in self._followed(sub) if wants_event(wanted, self.changes[n].event)
            ]
        return taken

    def items(self, digest: DueDigest, subs: list[Subscription]) -> list[dict[str, Any]]:
        """One monitor's items: the changes of its window that any of its subscriptions
        brings, oldest first, each once."""
        if not subs:
            return []
        lists = [self.taken(sub) for sub in subs]
        numbers = lists[0] if len(lists) == 1 else sorted(set().union(*lists))
        first = bisect_left(numbers, bisect_left(self.times, digest.start))
        last = bisect_left(numbers, bisect_left(self.times, digest.end))
        return [self.changes[n].item(digest.timezone) for n in numbers[first:last]]


async def _subscriptions(
    session: AsyncSession, user_ids: Sequence[int]
) -> dict[int, list[Subscription]]:
    subs: dict[int, list[Subscription]] = defaultdict(list)
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


async def digests_items(
    session: AsyncSession, cipher: FieldCipher, due: Sequence[DueDigest]
) -> dict[int, list[dict[str, Any]]]:
    """Every due digest's items (by monitor), as each monitor may see them now: one query for
    their subscriptions, one for the public events of all their windows, matched in Python.
    Items of one event are one dict, shared by the digests that show it."""
    subs = await _subscriptions(session, [digest.user_id for digest in due])
    followers = [digest for digest in due if subs.get(digest.user_id)]
    if not followers:
        return {digest.user_id: [] for digest in due}
    start = min(digest.start for digest in followers)
    end = max(digest.end for digest in followers)
    changes = _Changes(await _changes(session, cipher, start, end))
    return {digest.user_id: changes.items(digest, subs.get(digest.user_id, [])) for digest in due}


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
