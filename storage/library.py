"""The case library for monitors: the cases families allowed to publish, filtered, paged,
savable as a subscription; and monitors' access to the anonymised export.

What a monitor reads follows DESIGN.md's "Who sees what": a public case shows its name, custody,
articles and detention date; an anonymous one only its code, region and status. Staff-only and
merged cases are never listed. A filter (region, custody, article, year of detention) saved as a
subscription (scope FILTER) is matched against each case as it changes (`filter_matches`, used
by `storage.subscriptions` and `storage.digests`).

A monitor asks once for the anonymised export; an admin approves or refuses (one row per
monitor, `export_grants`), with the notice, the answer and the audit row in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Text, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import audit
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import (
    AlertFilter,
    Custody,
    MonitorStatus,
    OutboxKind,
    Region,
    SubscriptionScope,
    Visibility,
)
from storage.models import Case, CasePersonal, CaseRecord, ExportGrant, Subscription
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue

PAGE_SIZE = 8
LISTED = (Visibility.PUBLIC, Visibility.ANONYMOUS)
ARTICLE = re.compile(r"^\d{2,3}(\.\d{1,2})?$")
FIRST_YEAR = 2014  # the occupation of Crimea
T_EXPORT_REQUEST = "library.export_request"
T_EXPORT_DECIDED = "library.export_decided"


@dataclass(frozen=True)
class LibraryFilter:
    region: str | None = None
    custody: str | None = None
    article: str | None = None
    year: int | None = None

    def __post_init__(self) -> None:
        if self.region is not None:
            Region(self.region)
        if self.custody is not None:
            Custody(self.custody)
        if self.article is not None and not ARTICLE.match(self.article):
            raise ValueError("article")
        if self.year is not None and not FIRST_YEAR <= self.year <= 2100:
            raise ValueError("year")

    @property
    def empty(self) -> bool:
        return self == LibraryFilter()

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, values: dict[str, Any] | None) -> LibraryFilter:
        values = values or {}
        year = values.get("year")
        return cls(
            region=values.get("region"),
            custody=values.get("custody"),
            article=values.get("article"),
            year=int(year) if year is not None else None,
        )

    @property
    def target(self) -> str:
        """The subscription's unique target: the same filter saved twice is one subscription."""
        canonical = json.dumps(self.as_json(), sort_keys=True)
        return "filter:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LibraryCase:
    code: str
    region: str
    status: str
    public: bool
    name: str | None = None
    custody: str | None = None
    articles: list[dict[str, Any]] | None = None
    detention_date: date | None = None


@dataclass(frozen=True)
class LibraryPage:
    items: list[LibraryCase]
    total: int
    page: int
    pages: int


def _article_clause(article: str) -> ColumnElement[bool]:
    # Articles are stored as JSON written by json.dumps alike on both databases.
    return cast(CaseRecord.articles, Text).like(f'%"number": "{article}"%')


def _conditions(chosen: LibraryFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        Case.merged_into_id.is_(None),
        Case.visibility.in_(LISTED),
    ]
    if chosen.region:
        where.append(Case.region == chosen.region)
    if chosen.custody:
        where.append(Case.custody == chosen.custody)
    if chosen.year:
        where.append(extract("year", Case.detention_date) == chosen.year)
    if chosen.article:
        where.append(_article_clause(chosen.article))
    return where


async def library_page(
    session: AsyncSession, cipher: FieldCipher, chosen: LibraryFilter, page: int = 0
) -> LibraryPage:
    """One page of listed cases, most recently changed first, as a monitor may read them."""
    where = _conditions(chosen)
    base = select(Case).outerjoin(CaseRecord, CaseRecord.case_id == Case.id).where(*where)
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows = (
        await session.execute(
            select(Case, CaseRecord.articles, CasePersonal.detainee_name)
            .outerjoin(CaseRecord, CaseRecord.case_id == Case.id)
            .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
            .where(*where)
            .order_by(Case.updated_at.desc(), Case.id.desc())
            .offset(page * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    ).all()
    items = []
    for case, articles, sealed_name in rows:
        if case.visibility != Visibility.PUBLIC:
            items.append(LibraryCase(case.code, case.region, case.status, public=False))
            continue
        keyed = await case_cipher(session, cipher, case.id, create=False)
        items.append(
            LibraryCase(
                case.code,
                case.region,
                case.status,
                public=True,
                name=keyed.open(sealed_name),
                custody=case.custody,
                articles=list(articles or []),
                detention_date=case.detention_date,
            )
        )
    return LibraryPage(items, total, page, pages)


# -- saved filters as subscriptions ---------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What a saved filter looks at in one case."""

    region: str
    custody: str | None
    articles: tuple[str, ...]
    year: int | None


async def case_facts(session: AsyncSession, case: Case) -> CaseFacts:
    articles = await session.scalar(
        select(CaseRecord.articles).where(CaseRecord.case_id == case.id)
    )
    return facts_of(case, articles)


def facts_of(case: Case, articles: list[Any] | None) -> CaseFacts:
    """The facts of `case` whose record lists `articles` (for callers that joined them)."""
    numbers = tuple(str(a.get("number")) for a in articles or [] if isinstance(a, dict))
    year = case.detention_date.year if case.detention_date else None
    return CaseFacts(case.region, case.custody, numbers, year)


def filter_matches(stored: dict[str, Any] | None, facts: CaseFacts) -> bool:
    chosen = LibraryFilter.from_json(stored)
    return (
        (chosen.region is None or chosen.region == facts.region)
        and (chosen.custody is None or chosen.custody == facts.custody)
        and (chosen.article is None or chosen.article in facts.articles)
        and (chosen.year is None or chosen.year == facts.year)
    )


async def save_filter(
    session: AsyncSession,
    user_id: int,
    chosen: LibraryFilter,
    alert_filter: AlertFilter,
    *,
    now: datetime,
) -> bool:
    """Follow every listed case matching `chosen`; True when the subscription is new."""
    existing = await session.scalar(
        select(Subscription).where(
            Subscription.user_id == user_id, Subscription.target == chosen.target
        )
    )
    if existing is not None:
        existing.alert_filter = alert_filter
        return False
    session.add(
        Subscription(
            user_id=user_id,
            scope=SubscriptionScope.FILTER,
            target=chosen.target,
            case_filter=chosen.as_json(),
            alert_filter=alert_filter,
            created_at=now,
        )
    )
    audit.record(
        session,
        actor_id=user_id,
        action="monitor.follow",
        detail=f"filter {json.dumps(chosen.as_json(), sort_keys=True)} {alert_filter}",
        at=now,
    )
    return True


async def saved_filters(session: AsyncSession, user_id: int) -> list[tuple[str, LibraryFilter]]:
    rows = await session.execute(
        select(Subscription.target, Subscription.case_filter)
        .where(Subscription.user_id == user_id, Subscription.scope == SubscriptionScope.FILTER)
        .order_by(Subscription.id)
    )
    return [(target, LibraryFilter.from_json(stored)) for target, stored in rows]


# -- the anonymised export for monitors -----------------------------------------------------------


async def export_status(session: AsyncSession, user_id: int) -> str:
    """MonitorStatus.NONE, PENDING, APPROVED or REFUSED for this monitor's export access."""
    grant = await session.get(ExportGrant, user_id)
    return grant.status if grant is not None else MonitorStatus.NONE


async def request_export(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    *,
    admin_ids: frozenset[int],
    now: datetime,
) -> bool:
    """Ask the admins (a notice with Approve/Refuse buttons); False if already asked or
    decided."""
    grant = await session.get(ExportGrant, user_id)
    if grant is not None and grant.status != MonitorStatus.REFUSED:
        return False
    if grant is None:
        grant = ExportGrant(user_id=user_id, status=MonitorStatus.PENDING, requested_at=now)
        session.add(grant)
    else:
        grant.status, grant.requested_at, grant.decided_at = MonitorStatus.PENDING, now, None
    await session.flush()
    stamp = int(now.timestamp())
    await enqueue(
        session,
        cipher,
        [
            Outgoing(
                admin,
                f"expreq:{user_id}:{stamp}:{admin}"[:80],
                T_EXPORT_REQUEST,
                {"user_id": user_id},
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
            )
            for admin in sorted(admin_ids)
        ],
        now=now,
    )
    audit.record(session, actor_id=user_id, action="export.request", at=now)
    return True


async def decide_export(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    approve: bool,
    *,
    actor_id: int,
    now: datetime,
) -> bool:
    """An admin's answer; the monitor is told. False when there is no pending request."""
    grant = await session.get(ExportGrant, user_id)
    if grant is None or grant.status != MonitorStatus.PENDING:
        return False
    grant.status = MonitorStatus.APPROVED if approve else MonitorStatus.REFUSED
    grant.decided_at = now
    await enqueue(
        session,
        cipher,
        [
            Outgoing(
                user_id,
                f"expdec:{user_id}:{int(now.timestamp())}",
                T_EXPORT_DECIDED,
                {"approved": approve},
            )
        ],
        now=now,
    )
    audit.record(
        session,
        actor_id=actor_id,
        action="export.approve" if approve else "export.refuse",
        target_user_id=user_id,
        at=now,
    )
    return True
