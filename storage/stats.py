"""The figures of /stats: counts the rights groups publish, computed from plain columns only.

Nothing here opens a sealed value. Counts by status, region and tag are GROUP BY queries on
indexed columns; the series over time read only the timestamps of the last year and put them in
weeks and months of the hotline's time zone in Python, which both databases do alike.
A tag narrows every figure to the cases carrying it.

Definitions (also in the README):
- open cases: not merged away, and not closed, returned home or deceased (`lifecycle.OPEN`);
- reports per week: cases by the week (Monday to Sunday, local time) they were reported, the
  last 52 weeks, this week included;
- time from report to verified: days from the report to the case's first move to verified,
  the median per month of that move, the last 12 months, and over the whole year;
- returns per month: moves to "returned home", the last 12 months, this month included.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.enums import CaseStatus, EventKind, Region
from storage.lifecycle import OPEN
from storage.models import Case, CaseEvent, CaseTag, Tag
from storage.search import CaseFilter, conditions

WEEKS = 52
MONTHS = 12


@dataclass(frozen=True)
class Figures:
    """What the charts are drawn from, in a fixed order (so every language shows the same)."""

    open_by_status: list[tuple[str, int]]
    open_by_region: list[tuple[str, int]]
    open_by_tag: list[tuple[str, int]]
    reports_per_week: list[tuple[date, int]]  # the Monday of each week
    days_to_verified: list[tuple[date, float | None]]  # the first of each month
    median_days_to_verified: float | None
    returns_per_month: list[tuple[date, int]]
    tag: str | None = None

    @property
    def open_total(self) -> int:
        return sum(count for _, count in self.open_by_status)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_back(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def _scope(tag: str | None) -> list[ColumnElement[bool]]:
    return conditions(CaseFilter(tag=tag))


async def _grouped(
    session: AsyncSession, column: Any, where: list[ColumnElement[bool]]
) -> Counter[str]:
    rows = await session.execute(select(column, func.count()).where(*where).group_by(column))
    return Counter({str(key): int(count) for key, count in rows})


async def compute_figures(
    session: AsyncSession, *, now: datetime, timezone: str, tag: str | None = None
) -> Figures:
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    scope = _scope(tag)
    open_scope = [*scope, Case.status.in_(sorted(OPEN))]

    by_status = await _grouped(session, Case.status, open_scope)
    by_region = await _grouped(session, Case.region, open_scope)
    tag_rows = await session.execute(
        select(Tag.name, func.count(Case.id))
        .join(CaseTag, CaseTag.tag_id == Tag.id)
        .join(Case, Case.id == CaseTag.case_id)
        .where(*open_scope)
        .group_by(Tag.name)
        .order_by(Tag.name)
    )

    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=WEEKS - 1)
    since = datetime.combine(first_monday, datetime.min.time(), tzinfo=zone)
    weeks: Counter[date] = Counter()
    # One list of timestamps (a year of reports, 8 bytes each in the database's answer): fetched
    # whole, since iterating a streamed result row by row costs a round trip per row.
    reported = await session.scalars(
        select(Case.created_at).where(*conditions(CaseFilter(tag=tag)), Case.created_at >= since)
    )
    for created_at in reported:
        local = created_at.astimezone(zone).date()
        weeks[local - timedelta(days=local.weekday())] += 1

    this_month = _month_start(today)
    first_month = _months_back(this_month, MONTHS - 1)
    month_since = datetime.combine(first_month, datetime.min.time(), tzinfo=zone)
    moved = and_(CaseEvent.case_id == Case.id, CaseEvent.kind == EventKind.STATUS_CHANGED)

    first_verified = (
        select(CaseEvent.case_id, func.min(CaseEvent.created_at).label("at"))
        .where(
            CaseEvent.new_status == CaseStatus.VERIFIED, CaseEvent.kind == EventKind.STATUS_CHANGED
        )
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    verified_rows = await session.execute(
        select(Case.created_at, first_verified.c.at)
        .join(first_verified, first_verified.c.case_id == Case.id)
        .where(*scope, first_verified.c.at >= month_since)
    )
    durations: dict[date, list[float]] = {}
    for created_at, verified_at in verified_rows:
        month = _month_start(verified_at.astimezone(zone).date())
        days = (verified_at - created_at).total_seconds() / 86400
        durations.setdefault(month, []).append(days)

    returns: Counter[date] = Counter()
    returned = await session.scalars(
        select(CaseEvent.created_at)
        .join(Case, moved)
        .where(
            *scope,
            CaseEvent.new_status == CaseStatus.RETURNED,
            CaseEvent.created_at >= month_since,
        )
    )
    for at in returned:
        returns[_month_start(at.astimezone(zone).date())] += 1

    months = [_months_back(this_month, back) for back in range(MONTHS - 1, -1, -1)]
    every = [days for values in durations.values() for days in values]
    return Figures(
        open_by_status=[(s.value, by_status[s.value]) for s in CaseStatus if s in OPEN],
        open_by_region=[(r.value, by_region[r.value]) for r in Region],
        open_by_tag=[(str(name), int(count)) for name, count in tag_rows],
        reports_per_week=[
            (first_monday + timedelta(weeks=n), weeks[first_monday + timedelta(weeks=n)])
            for n in range(WEEKS)
        ],
        days_to_verified=[
            (m, round(statistics.median(durations[m]), 1) if m in durations else None)
            for m in months
        ],
        median_days_to_verified=round(statistics.median(every), 1) if every else None,
        returns_per_month=[(m, returns[m]) for m in months],
        tag=tag,
    )
