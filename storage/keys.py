"""Key rotation: re-seal every personal field with a new data key while the bot keeps running.

A key that may have leaked (an old backup of the server's environment, a departed admin) must be
replaceable without downtime. The operator restarts the bot with ``HOTLINE_DATA_KEY=new,old`` (the
first key seals, every key opens), then runs ``python -m bot rotate-key`` with the same value:

1. blind indexes (`Case.person_index`) are recomputed with the new key first, so the window in
   which a new report's index (new key) cannot match an old case's index (old key) is short;
2. every value sealed by the master key is re-sealed, found from the models' `LargeBinary`
   columns so a sealed column added later is covered without touching this module. With
   envelope encryption (`storage.data_keys`) that is the small `data_keys` table (each case's,
   user's and draft's key) and the few values still sealed by the master key (broadcast texts,
   monitor requests, PINs, digests, values from before envelope encryption); values sealed by
   a data key are left as they are: the master key cannot open them, and need not;
3. the user index key in `meta` (`storage.identity`) is re-sealed, so user keys do not change;
4. the key check in `meta` is replaced, so the old key alone no longer starts the bot.

Work is done in small batches: each batch is read in one short transaction and written in another
with compare-and-swap updates (``WHERE col = <the token we read>``), so a row the bot changed in
between is left as the bot wrote it (already sealed with the new key) and never overwritten with a
stale value. Nothing here holds a lock for longer than one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Column, LargeBinary, Table, and_, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from storage.crypto import INDEX_RULE, LEGACY_INDEX_RULE, DataKeyError, FieldCipher
from storage.db import SessionFactory
from storage.identity import INDEX_KEY
from storage.meta import replace_key_check, verify_or_store_key_check
from storage.models import Base, Case, CasePersonal, DataKey, Meta
from storage.reports import person_index_from_stored

DEFAULT_BATCH_SIZE = 200
INDEX_RULE_KEY = "index_rule"
"""`meta` row naming the rule the stored blind indexes were computed by (`crypto.INDEX_RULE`)."""
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class SealedTable:
    """A table with at least one sealed column, and how to walk it in primary-key order."""

    table: Table
    columns: tuple[Column[bytes], ...]

    @property
    def primary_key(self) -> tuple[Column[object], ...]:
        return tuple(self.table.primary_key.columns)


@dataclass
class RotationReport:
    """Counts for the operator; no values, so it is safe to print and log."""

    resealed: dict[str, int] = field(default_factory=dict)
    indexes_recomputed: int = 0
    indexes_unmatched: int = 0
    left_on_old_key: int = 0


def sealed_tables() -> list[SealedTable]:
    """Every table with `LargeBinary` columns, except `meta` (its key check is replaced whole)."""
    found: list[SealedTable] = []
    for table in Base.metadata.sorted_tables:
        if table.name == Meta.__tablename__:
            continue
        columns = tuple(c for c in table.columns if isinstance(c.type, LargeBinary))
        if columns:
            found.append(SealedTable(table, columns))
    return found


def _after(primary_key: Sequence[Column[object]], last: tuple[object, ...]) -> ColumnElement[bool]:
    if len(primary_key) == 1:
        return primary_key[0] > last[0]
    return tuple_(*primary_key) > tuple_(*last)


async def _reseal_table(
    sessions: SessionFactory,
    cipher: FieldCipher,
    sealed: SealedTable,
    batch_size: int,
    progress: Progress | None,
) -> int:
    primary_key = sealed.primary_key
    last: tuple[object, ...] | None = None
    resealed = 0
    needs_work = or_(*(column.isnot(None) for column in sealed.columns))
    while True:
        query = select(*primary_key, *sealed.columns).where(needs_work)
        if last is not None:
            query = query.where(_after(primary_key, last))
        query = query.order_by(*primary_key).limit(batch_size)
        async with sessions() as session:
            rows = (await session.execute(query)).all()
        if not rows:
            return resealed
        changes: list[tuple[tuple[object, ...], Column[bytes], bytes, bytes]] = []
        for row in rows:
            keys = tuple(row[: len(primary_key)])
            for column, token in zip(sealed.columns, row[len(primary_key) :], strict=True):
                if not isinstance(token, bytes) or cipher.is_sealed_with_primary(token):
                    continue
                if cipher.can_open(token):  # not a data key's: those stay as they are
                    changes.append((keys, column, token, cipher.rotate(token)))
        if changes:
            async with sessions() as session, session.begin():
                for keys, column, old, new in changes:
                    match = and_(
                        *(pk == value for pk, value in zip(primary_key, keys, strict=True))
                    )
                    result = await session.execute(
                        update(sealed.table).where(match, column == old).values({column.name: new})
                    )
                    resealed += int(getattr(result, "rowcount", 0) or 0)
        last = tuple(rows[-1][: len(primary_key)])
        if progress is not None:
            progress(sealed.table.name, resealed)


async def _recompute_indexes(
    sessions: SessionFactory,
    cipher: FieldCipher,
    old_ciphers: Sequence[FieldCipher],
    batch_size: int,
    report: RotationReport,
    progress: Progress | None,
) -> None:
    """Move each case's blind index to the new key, only where it matches an old key's index."""
    last_id = 0
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Case.id,
                        Case.person_index,
                        CasePersonal.detainee_name,
                        CasePersonal.birth_date,
                        DataKey.id,
                        DataKey.sealed,
                    )
                    .join(CasePersonal, CasePersonal.case_id == Case.id)
                    .outerjoin(DataKey, DataKey.case_id == Case.id)
                    .where(Case.id > last_id, Case.person_index.isnot(None))
                    .order_by(Case.id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return
        changes: list[tuple[int, str, str]] = []
        for case_id, stored, sealed_name, sealed_birth, key_id, sealed_key in rows:
            keyed = cipher if key_id is None else cipher.for_data_key(key_id, sealed_key)
            name, birth = keyed.open(sealed_name), keyed.open(sealed_birth)
            new_index = person_index_from_stored(cipher, name, birth)
            if stored is None or new_index is None or stored == new_index:
                continue
            if any(stored == person_index_from_stored(old, name, birth) for old in old_ciphers):
                changes.append((case_id, stored, new_index))
            else:
                report.indexes_unmatched += 1
        if changes:
            async with sessions() as session, session.begin():
                for case_id, old_index, new_index in changes:
                    result = await session.execute(
                        update(Case)
                        .where(Case.id == case_id, Case.person_index == old_index)
                        .values(person_index=new_index)
                    )
                    report.indexes_recomputed += int(getattr(result, "rowcount", 0) or 0)
        last_id = rows[-1][0]
        if progress is not None:
            progress("cases.person_index", report.indexes_recomputed)


async def _reseal_user_index_key(sessions: SessionFactory, cipher: FieldCipher) -> int:
    """The user index key is re-sealed, never replaced: every user key stays the same."""
    async with sessions() as session, session.begin():
        row = await session.get(Meta, INDEX_KEY)
        if row is None or cipher.is_sealed_with_primary(row.value):
            return 0
        row.value = cipher.rotate(row.value)
        return 1


async def _count_on_old_key(
    sessions: SessionFactory, cipher: FieldCipher, tables: Sequence[SealedTable]
) -> int:
    left = 0
    async with sessions() as session:
        for sealed in tables:
            for column in sealed.columns:
                tokens = await session.scalars(select(column).where(column.isnot(None)))
                left += sum(
                    1
                    for token in tokens
                    if not cipher.is_sealed_with_primary(token) and cipher.can_open(token)
                )
    return left


def ciphers_for_rotation(value: str) -> tuple[FieldCipher, list[FieldCipher]]:
    """`new,old[,older]` -> the combined cipher (new seals, all open) and one cipher per old key."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if len(keys) < 2:
        raise DataKeyError(
            "HOTLINE_DATA_KEY: rotate-key needs the new key first and the old key after it "
            "(HOTLINE_DATA_KEY=new,old)"
        )
    return FieldCipher(keys), [FieldCipher([key]) for key in keys[1:]]


async def rotate_data_key(
    sessions: SessionFactory,
    cipher: FieldCipher,
    old_ciphers: Sequence[FieldCipher],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> RotationReport:
    """Re-seal everything with `cipher`'s primary key; the bot may keep running meanwhile.

    The bot must already run with the same `new,old` key list, or what it writes during the
    rotation would be sealed with the old key (counted in `left_on_old_key`).
    """
    async with sessions() as session, session.begin():
        await verify_or_store_key_check(session, cipher)
    report = RotationReport()
    recognised = [
        *old_ciphers,
        *(each.with_index_rule(LEGACY_INDEX_RULE) for each in (cipher, *old_ciphers)),
    ]
    await _recompute_indexes(sessions, cipher, recognised, batch_size, report, progress)
    tables = sealed_tables()
    for sealed in tables:
        report.resealed[sealed.table.name] = await _reseal_table(
            sessions, cipher, sealed, batch_size, progress
        )
    report.resealed[Meta.__tablename__] = await _reseal_user_index_key(sessions, cipher)
    report.left_on_old_key = await _count_on_old_key(sessions, cipher, tables)
    if report.left_on_old_key == 0:
        async with sessions() as session, session.begin():
            await replace_key_check(session, cipher)
    return report


async def upgrade_index_rule(
    sessions: SessionFactory, cipher: FieldCipher, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """At start: recompute the blind indexes an earlier rule made (before look-alike letters
    were folded), so a new report still finds a case filed before the upgrade. Runs once per
    database (the rule's name is kept in `meta`); returns how many indexes changed."""
    async with sessions() as session:
        row = await session.get(Meta, INDEX_RULE_KEY)
    if row is not None and bytes(row.value) == INDEX_RULE.encode():
        return 0
    report = RotationReport()
    legacy = [cipher.with_index_rule(LEGACY_INDEX_RULE)]
    await _recompute_indexes(sessions, cipher, legacy, batch_size, report, None)
    async with sessions() as session, session.begin():
        row = await session.get(Meta, INDEX_RULE_KEY)
        if row is None:
            session.add(Meta(key=INDEX_RULE_KEY, value=INDEX_RULE.encode()))
        else:
            row.value = INDEX_RULE.encode()
    return report.indexes_recomputed
