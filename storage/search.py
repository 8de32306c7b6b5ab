"""Finding cases for staff: by code (or its first characters), region, status, custody, tag,
assignee, report date, and by the detainee's name through keyed blind indexes only.

Names are sealed with each case's data key, so a search never opens one: the name typed is
normalised (case, accents, spacing, look-alike letters of another script: `storage.crypto`) and
hashed with the index key, and the hash is compared with `case_name_index.name_index` (the name
alone) or `cases.person_index` (the name with the date of birth, the duplicate-detection key).
A Cyrillic "о" typed inside a Latin name finds the same case.

Every search by name writes an audit row in the same transaction: who searched, with which
criteria (never the name) and which codes it found.

The name index is kept by `index_case_name` (called when a report is filed) and by
`refresh_name_indexes` (the job in jobs/name_index.py): a row belongs to the data key that
sealed the name and is deleted with it (an erasure or a re-key), then made again from what the
new key holds; a new master key (rotation) makes every row again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import audit
from storage.crypto import FieldCipher
from storage.db import SessionFactory
from storage.models import (
    Case,
    CaseNameIndex,
    CasePersonal,
    CaseTag,
    DataKey,
    Meta,
    Tag,
    Thread,
)

PAGE_SIZE = 10
NAME_ONLY = "name only"
"""The second part hashed with a name alone, so it never equals a name-and-birth index."""
INDEX_CHECK_META = "name_index_check"
"""`meta` row: the index of a fixed text under the key the name indexes were made with."""
_CHECK_TEXT = "hotline name index check"
_CODE_CHARS = re.compile(r"^[A-Z0-9]{1,8}$")


@dataclass(frozen=True)
class CaseFilter:
    """What staff asked for; every field narrows. Holds hashes, never a name, so it can be
    kept between pages (`as_json`)."""

    code_prefix: str | None = None
    region: str | None = None
    status: str | None = None
    custody: str | None = None
    tag: str | None = None
    assignee: int | None = None  # a staff member's user key: who took a thread of the case
    reported_from: date | None = None
    reported_to: date | None = None  # inclusive
    name_index: str | None = None
    person_index: str | None = None
    statuses: tuple[str, ...] = field(default=())  # any of these (the open ones, for /stats)

    @property
    def by_name(self) -> bool:
        return self.name_index is not None or self.person_index is not None

    @property
    def empty(self) -> bool:
        return self == CaseFilter()

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("reported_from", "reported_to"):
            if values[key] is not None:
                values[key] = values[key].isoformat()
        values["statuses"] = list(self.statuses)
        return {key: value for key, value in values.items() if value not in (None, [])}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> CaseFilter:
        known = {key: values[key] for key in cls.__dataclass_fields__ if key in values}
        for key in ("reported_from", "reported_to"):
            if known.get(key):
                known[key] = date.fromisoformat(str(known[key]))
        known["statuses"] = tuple(known.get("statuses", ()))
        return cls(**known)


@dataclass(frozen=True)
class FoundCase:
    code: str
    status: str
    region: str
    custody: str | None
    reported_at: datetime
    tags: tuple[str, ...]


@dataclass(frozen=True)
class FoundPage:
    items: list[FoundCase]
    total: int
    page: int
    pages: int


def normalise_code_prefix(text: str) -> str | None:
    """`k7m4`, `K7M4-9X`, `k7m49x` -> `K7M4-9X`; None when it cannot start a case code."""
    bare = text.strip().upper().replace("-", "")
    if not _CODE_CHARS.match(bare):
        return None
    return bare if len(bare) <= 4 else f"{bare[:4]}-{bare[4:]}"


def name_index(cipher: FieldCipher, name: str) -> str:
    """The keyed index of a name alone (normalised by `storage.crypto.normalise_for_index`)."""
    return cipher.master.blind_index(name, NAME_ONLY)


def by_name(
    cipher: FieldCipher, base: CaseFilter, name: str, birth_date: date | None
) -> CaseFilter:
    """`base` narrowed to one person: the name alone, or the name and date of birth (the same
    key duplicate detection uses, `storage.reports.person_index`)."""
    if birth_date is not None:
        return replace(base, person_index=cipher.master.blind_index(name, birth_date.isoformat()))
    return replace(base, name_index=name_index(cipher, name))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def conditions(criteria: CaseFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter over `cases` (merged cases are never listed)."""
    where: list[ColumnElement[bool]] = [Case.merged_into_id.is_(None)]
    if criteria.code_prefix:
        where.append(Case.code.like(criteria.code_prefix + "%"))
    if criteria.region:
        where.append(Case.region == criteria.region)
    if criteria.status:
        where.append(Case.status == criteria.status)
    if criteria.statuses:
        where.append(Case.status.in_(sorted(criteria.statuses)))
    if criteria.custody:
        where.append(Case.custody == criteria.custody)
    if criteria.reported_from:
        where.append(Case.created_at >= _start_of(criteria.reported_from))
    if criteria.reported_to:
        where.append(Case.created_at < _start_of(criteria.reported_to + timedelta(days=1)))
    if criteria.tag:
        where.append(
            exists().where(
                CaseTag.case_id == Case.id,
                CaseTag.tag_id == select(Tag.id).where(Tag.name == criteria.tag).scalar_subquery(),
            )
        )
    if criteria.assignee is not None:
        where.append(
            exists().where(Thread.case_id == Case.id, Thread.assigned_to == criteria.assignee)
        )
    if criteria.person_index:
        where.append(Case.person_index == criteria.person_index)
    if criteria.name_index:
        where.append(
            exists().where(
                CaseNameIndex.case_id == Case.id,
                CaseNameIndex.name_index == criteria.name_index,
                _current_key(),
            )
        )
    return where


def _current_key() -> ColumnElement[bool]:
    """An index row counts only while it belongs to the key the case holds now: a row made
    before a re-key (an erasure) is never used, even before the job replaces it."""
    key = select(DataKey.id).where(DataKey.case_id == Case.id).correlate(Case).scalar_subquery()
    return CaseNameIndex.data_key_id.is_not_distinct_from(key)


async def tags_of(session: AsyncSession, case_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not case_ids:
        return {}
    rows = await session.execute(
        select(CaseTag.case_id, Tag.name)
        .join(Tag, Tag.id == CaseTag.tag_id)
        .where(CaseTag.case_id.in_(case_ids))
        .order_by(Tag.name)
    )
    found: dict[int, list[str]] = {}
    for case_id, name in rows:
        found.setdefault(case_id, []).append(name)
    return {case_id: tuple(names) for case_id, names in found.items()}


async def find_cases(
    session: AsyncSession,
    criteria: CaseFilter,
    page: int = 0,
    *,
    actor_id: int,
    now: datetime,
    page_size: int = PAGE_SIZE,
) -> FoundPage:
    """One page of the cases matching `criteria`, most recently reported first. A search by
    name is audited in the caller's transaction (criteria kinds and codes found, no name)."""
    where = conditions(criteria)
    total = int(await session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = (
        await session.execute(
            select(Case.id, Case.code, Case.status, Case.region, Case.custody, Case.created_at)
            .where(*where)
            .order_by(Case.created_at.desc(), Case.id.desc())
            .offset(page * page_size)
            .limit(page_size)
        )
    ).all()
    tags = await tags_of(session, [row[0] for row in rows])
    items = [
        FoundCase(code, status, region, custody, created_at, tags.get(case_id, ()))
        for case_id, code, status, region, custody, created_at in rows
    ]
    if criteria.by_name:
        kind = "name and birth date" if criteria.person_index else "name"
        codes = " ".join(item.code for item in items)
        audit.record(
            session,
            actor_id=actor_id,
            action="case.find_by_name",
            detail=f"{kind}; {total} found {codes}".strip(),
            at=now,
        )
    return FoundPage(items, total, page, pages)


# -- keeping the name index ----------------------------------------------------------------------


async def index_case_name(
    session: AsyncSession, keyed: FieldCipher, case_id: int, name: str | None
) -> None:
    """Write the name index of a case whose name `keyed` (its data key's cipher) just sealed,
    in the caller's transaction (storage.reports.file_report calls it)."""
    await session.execute(delete(CaseNameIndex).where(CaseNameIndex.case_id == case_id))
    session.add(
        CaseNameIndex(
            case_id=case_id,
            data_key_id=keyed.key_id,
            name_index=name_index(keyed, name) if name else None,
        )
    )


async def _check_key(session: AsyncSession, cipher: FieldCipher) -> bool:
    """True when the stored indexes were made with this master key (and rule); otherwise they
    are all deleted here, to be made again."""
    expected = name_index(cipher, _CHECK_TEXT).encode("ascii")
    row = await session.get(Meta, INDEX_CHECK_META)
    if row is not None and bytes(row.value) == expected:
        return True
    await session.execute(delete(CaseNameIndex))
    if row is None:
        session.add(Meta(key=INDEX_CHECK_META, value=expected))
    else:
        row.value = expected
    return False


async def check_index_key(sessions: SessionFactory, cipher: FieldCipher) -> bool:
    """At start: True when the stored name indexes were made with this master key; otherwise
    they are deleted (the job makes them again). Cheap: one `meta` row."""
    async with sessions() as session, session.begin():
        return await _check_key(session, cipher)


async def refresh_name_indexes(
    sessions: SessionFactory, cipher: FieldCipher, *, batch_size: int = 500
) -> int:
    """Index every case that has no name-index row of its current data key (new since the
    upgrade, re-keyed, erased, or all of them after a new master key); returns how many rows
    were written. Each batch is its own short transaction; a row whose key was destroyed
    meanwhile fails its foreign key and is left for the next run."""
    await check_index_key(sessions, cipher)
    written = 0
    last_id = 0
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(Case.id, CasePersonal.detainee_name, DataKey.id, DataKey.sealed)
                    .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
                    .outerjoin(DataKey, DataKey.case_id == Case.id)
                    .where(
                        Case.id > last_id,
                        ~exists().where(CaseNameIndex.case_id == Case.id, _current_key()),
                    )
                    .order_by(Case.id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return written
        last_id = rows[-1][0]
        try:
            async with sessions() as session, session.begin():
                stale = [row[0] for row in rows]
                await session.execute(delete(CaseNameIndex).where(CaseNameIndex.case_id.in_(stale)))
                for case_id, sealed_name, key_id, sealed_key in rows:
                    keyed = cipher if key_id is None else cipher.for_data_key(key_id, sealed_key)
                    name = keyed.open(sealed_name) if sealed_name is not None else None
                    session.add(
                        CaseNameIndex(
                            case_id=case_id,
                            data_key_id=key_id,
                            name_index=name_index(cipher, name) if name else None,
                        )
                    )
            written += len(rows)
        except IntegrityError:
            continue  # a key destroyed or a row written meanwhile: the next run sees it
