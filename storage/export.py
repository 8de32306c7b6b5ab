"""What an export holds, row by row, streamed from the database (never all rows in memory).

Two kinds:
- anonymised (for partners reconciling lists, and for approved monitors): only cases the
  family allowed to publish (public or anonymous), as code, region, status, custody, articles
  and dates; their status history; the audit log as actions and dates. No name, no sealed
  value, no user key or Telegram id.
- full (admins only, audited by the caller): every case with its sealed fields opened with the
  case's own data key, every event with its note, the audit log with user keys. Never a
  Telegram id (the bot never needs one in a file).

Rows are read with `AsyncSession.stream` and `yield_per`, so 100,000 cases pass through in
batches; each case's data key is opened only for its own row.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import audit, fields
from storage.crypto import FieldCipher
from storage.enums import EventKind, Visibility
from storage.models import (
    AuditEntry,
    Case,
    CaseEvent,
    CasePersonal,
    CaseRecord,
    CaseTag,
    DataKey,
    Tag,
)

BATCH = 1000
PUBLISHABLE = (Visibility.PUBLIC, Visibility.ANONYMOUS)


class What(StrEnum):
    CASES = "cases"
    EVENTS = "events"
    AUDIT = "audit"


@dataclass(frozen=True)
class Sheet:
    """The columns of one export; `rows` yields lists in this order."""

    what: What
    anonymised: bool
    columns: tuple[str, ...]


ANONYMISED_CASE_COLUMNS = (
    "code",
    "region",
    "status",
    "custody",
    "articles",
    "detention_date",
    "reported_at",
    "updated_at",
)
PERSONAL_COLUMNS = fields.REGISTRY.columns(fields.PERSONAL)
"""The sealed personal columns, from the fields registry (storage/fields.py)."""
RECORD_SEALED = ("criminal_case", "court", "detention_place")
FULL_CASE_COLUMNS = (
    "code",
    "status",
    "visibility",
    "region",
    "detained_by",
    "detention_date",
    "custody",
    "articles",
    "tags",
    "reported_at",
    "updated_at",
    "closed_reason",
    "merged_into",
    "duplicate_of",
    *PERSONAL_COLUMNS,
    *RECORD_SEALED,
    "next_hearing_at",
    "pretrial_until",
    "sentence_months",
    "sentence_regime",
    "end_of_term",
)
ANONYMISED_EVENT_COLUMNS = ("code", "kind", "old_status", "new_status", "at")
FULL_EVENT_COLUMNS = ("code", "kind", "old_status", "new_status", "public", "note", "at")
ANONYMISED_AUDIT_COLUMNS = ("at", "action", "outcome")
FULL_AUDIT_COLUMNS = ("at", "actor", "action", "outcome", "case_code", "target_user", "detail")
ANONYMISED_EVENT_KINDS = (EventKind.CREATED, EventKind.STATUS_CHANGED)


def sheet(what: What, anonymised: bool) -> Sheet:
    columns = {
        (What.CASES, True): ANONYMISED_CASE_COLUMNS,
        (What.CASES, False): FULL_CASE_COLUMNS,
        (What.EVENTS, True): ANONYMISED_EVENT_COLUMNS,
        (What.EVENTS, False): FULL_EVENT_COLUMNS,
        (What.AUDIT, True): ANONYMISED_AUDIT_COLUMNS,
        (What.AUDIT, False): FULL_AUDIT_COLUMNS,
    }[(what, anonymised)]
    return Sheet(what, anonymised, columns)


def articles_text(articles: Sequence[Any] | None) -> str:
    """`205.5 p.2; 275.1`: the same in every language, for spreadsheets."""
    parts = []
    for article in articles or []:
        if isinstance(article, dict) and article.get("number"):
            part = article.get("part")
            parts.append(f"{article['number']} p.{part}" if part else str(article["number"]))
    return "; ".join(parts)


def plain(value: Any) -> Any:
    """A value as files hold it: dates and instants in ISO 8601 (UTC), None as empty."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _tag_list(session: AsyncSession) -> Any:
    """A case's tags joined by "; " (each database names the aggregate its own way)."""
    if session.get_bind().dialect.name == "postgresql":
        joined = func.string_agg(Tag.name, "; ")
    else:
        joined = func.group_concat(Tag.name, "; ")
    return (
        select(joined)
        .join(CaseTag, CaseTag.tag_id == Tag.id)
        .where(CaseTag.case_id == Case.id)
        .correlate(Case)
        .scalar_subquery()
    )


async def _stream(session: AsyncSession, query: Any) -> AsyncIterator[Any]:
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.partitions():
        for row in partition:
            yield row


async def rows(
    session: AsyncSession, cipher: FieldCipher, chosen: Sheet
) -> AsyncIterator[list[Any]]:
    """The rows of `chosen`, in its column order, streamed."""
    if chosen.what == What.CASES:
        source = _anonymised_cases if chosen.anonymised else _full_cases
    elif chosen.what == What.EVENTS:
        source = _anonymised_events if chosen.anonymised else _full_events
    else:
        source = _anonymised_audit if chosen.anonymised else _full_audit
    async for row in source(session, cipher):
        yield [plain(value) for value in row]


async def _anonymised_cases(session: AsyncSession, cipher: FieldCipher) -> AsyncIterator[list[Any]]:
    query = (
        select(
            Case.code,
            Case.region,
            Case.status,
            Case.custody,
            CaseRecord.articles,
            Case.detention_date,
            Case.created_at,
            Case.updated_at,
        )
        .outerjoin(CaseRecord, CaseRecord.case_id == Case.id)
        .where(Case.merged_into_id.is_(None), Case.visibility.in_(PUBLISHABLE))
        .order_by(Case.id)
    )
    async for code, region, status, custody, articles, detained, created, updated in _stream(
        session, query
    ):
        yield [code, region, status, custody, articles_text(articles), detained, created, updated]


async def _full_cases(session: AsyncSession, cipher: FieldCipher) -> AsyncIterator[list[Any]]:
    merged = aliased(Case)
    personal = [getattr(CasePersonal, name) for name in PERSONAL_COLUMNS]
    sealed_record = [getattr(CaseRecord, name) for name in RECORD_SEALED]
    query = (
        select(
            Case.code, Case.status, Case.visibility, Case.region, Case.detained_by,
            Case.detention_date, Case.custody, CaseRecord.articles, _tag_list(session),
            Case.created_at, Case.updated_at, Case.closed_reason, merged.code, Case.duplicate_of,
            *personal, *sealed_record,
            CaseRecord.next_hearing_at, CaseRecord.pretrial_until, CaseRecord.sentence_months,
            CaseRecord.sentence_regime, CaseRecord.end_of_term, DataKey.id, DataKey.sealed,
        )
        .outerjoin(merged, merged.id == Case.merged_into_id)
        .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
        .outerjoin(CaseRecord, CaseRecord.case_id == Case.id)
        .outerjoin(DataKey, DataKey.case_id == Case.id)
        .order_by(Case.id)
    )  # fmt: skip
    first_sealed = 14  # the column of the first sealed value in the query above
    last_sealed = first_sealed + len(personal) + len(sealed_record)
    async for row in _stream(session, query):
        key_id, sealed = row[-2], row[-1]
        keyed = cipher if key_id is None else cipher.for_data_key(key_id, sealed)
        values = list(row[:-2])
        values[7] = articles_text(values[7])
        for index in range(first_sealed, last_sealed):
            if values[index] is not None:
                values[index] = keyed.open(values[index])
        yield values


async def _anonymised_events(
    session: AsyncSession, cipher: FieldCipher
) -> AsyncIterator[list[Any]]:
    query = (
        select(
            Case.code, CaseEvent.kind, CaseEvent.old_status, CaseEvent.new_status,
            CaseEvent.created_at,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            Case.merged_into_id.is_(None),
            Case.visibility.in_(PUBLISHABLE),
            CaseEvent.kind.in_(ANONYMISED_EVENT_KINDS),
        )
        .order_by(CaseEvent.id)
    )  # fmt: skip
    async for row in _stream(session, query):
        yield list(row)


async def _full_events(session: AsyncSession, cipher: FieldCipher) -> AsyncIterator[list[Any]]:
    query = (
        select(
            Case.code, CaseEvent.kind, CaseEvent.old_status, CaseEvent.new_status,
            CaseEvent.public, CaseEvent.body, CaseEvent.created_at, DataKey.id, DataKey.sealed,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .outerjoin(DataKey, DataKey.case_id == Case.id)
        .order_by(CaseEvent.id)
    )  # fmt: skip
    async for code, kind, old, new, public, body, at, key_id, sealed in _stream(session, query):
        note: str | None = None
        if body is not None:
            keyed = cipher if key_id is None else cipher.for_data_key(key_id, sealed)
            note = keyed.open(body)
            if kind == EventKind.RECORD_CHANGED and note:
                note = json.dumps(json.loads(note), ensure_ascii=False)
        yield [code, kind, old, new, public, note, at]


async def _anonymised_audit(session: AsyncSession, cipher: FieldCipher) -> AsyncIterator[list[Any]]:
    query = select(AuditEntry.created_at, AuditEntry.action, AuditEntry.outcome).order_by(
        AuditEntry.id
    )
    async for row in _stream(session, query):
        yield list(row)


async def _full_audit(session: AsyncSession, cipher: FieldCipher) -> AsyncIterator[list[Any]]:
    query = select(
        AuditEntry.created_at,
        AuditEntry.actor_id,
        AuditEntry.action,
        AuditEntry.outcome,
        AuditEntry.case_code,
        AuditEntry.target_user_id,
        AuditEntry.detail,
    ).order_by(AuditEntry.id)
    async for row in _stream(session, query):
        yield list(row)


def record_export(
    session: AsyncSession,
    *,
    actor_id: int,
    chosen: Sheet,
    file_format: str,
    encrypted: bool,
    count: int,
    now: datetime,
) -> None:
    """The audit row of an export (in its own short transaction, after the file is made)."""
    kind = "anonymised" if chosen.anonymised else "full"
    audit.record(
        session,
        actor_id=actor_id,
        action=f"export.{chosen.what}",
        detail=f"{kind} {file_format}{' encrypted' if encrypted else ''}: {count} rows",
        at=now,
    )
