"""The prisoner's record staff keep current, and who is told when it changes.

One operation writes a record field (`edit_record`): the value, a RECORD_CHANGED event, the
audit row and the messages staff chose to send (the family; on a public case also the monitors
following it; or nobody), all in the caller's transaction. Group operations (a hearing or a
verdict for co-defendants) call it once per case in the same transaction, so a group's news is
never half-written. Which fields exist, how they are typed and who may read them is the field
registry's business (storage/fields.py); this module stores and reads the values.

Values cross layers as JSON-ready plain values: text, ISO dates, a UTC ISO datetime for a
hearing, a list of {"number", "part"} for articles, months for a term, a list of flags. None
clears a field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, fields
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import EventKind, Visibility
from storage.fields import Audience, Field
from storage.models import Case, CaseEvent, CaseGroup, CasePersonal, CaseRecord
from storage.outbox import Outgoing, enqueue, event_key
from storage.recipients import family_of
from storage.reports import person_index_from_stored
from storage.search import index_case_name

T_RECORD_FAMILY = "record.changed"
T_RECORD_MONITOR = "record.changed_monitor"


class Tell(StrEnum):
    """Whom staff tell about a change of the record."""

    NOBODY = "nobody"
    FAMILY = "family"
    FAMILY_AND_MONITORS = "all"  # monitors only on a public case, only of fields they may read


def editable() -> dict[str, Field]:
    """Every field staff may edit from the card, by key (`fields.REGISTRY`, read at use)."""
    return {f.key: f for f in fields.REGISTRY.fields if f.staff_editable and f.stored is not None}


def record_keys() -> list[str]:
    """The prisoner's record's fields, in registry order."""
    return [f.key for f in fields.REGISTRY.record()]


def monitor_may_read(fld: Field) -> bool:
    """Monitors of a public case read these fields; health and contacts stay with the family."""
    return fld.audience == Audience.PUBLIC


class UnknownRecordField(KeyError):
    pass


class RecordCaseNotFound(LookupError):
    """No case with this code (or it was merged away)."""


@dataclass(frozen=True)
class RecordEdit:
    code: str
    key: str
    changed: bool
    family: int
    monitors: int
    event_id: int | None


@dataclass(frozen=True)
class RecordView:
    """A case's record as plain values, keyed like `SLOTS`, plus the transfer history."""

    values: dict[str, Any]
    transfers: list[dict[str, str]]
    group_id: int | None
    group_name: str | None


def _target(fld: Field, case: Case, record: CaseRecord, personal: CasePersonal) -> Any:
    assert fld.stored is not None
    return {fields.CASES: case, fields.RECORDS: record, fields.PERSONAL: personal}[fld.stored.table]


def _read(fld: Field, source: Any, keyed: FieldCipher) -> Any:
    """The stored value in the shape the kind shows (ISO dates, lists, text)."""
    assert fld.stored is not None
    raw = getattr(source, fld.stored.column) if source is not None else None
    if raw is None:
        return None
    if fld.stored.sealed:
        raw = keyed.open(raw)
    return fld.kind.from_column(raw)


async def _case(session: AsyncSession, code: str) -> Case:
    case = await session.scalar(select(Case).where(Case.code == code.strip().upper()))
    if case is None or case.merged_into_id is not None:
        raise RecordCaseNotFound(code)
    return case


async def _record(session: AsyncSession, case: Case, now: datetime) -> CaseRecord:
    record = await session.get(CaseRecord, case.id)
    if record is None:
        record = CaseRecord(case_id=case.id, updated_at=now)
        session.add(record)
    return record


async def read_record(session: AsyncSession, cipher: FieldCipher, case: Case) -> RecordView:
    """Every record value of `case`, opened (for the card, the editor and the letters page)."""
    keyed = await case_cipher(session, cipher, case.id)
    record = await session.get(CaseRecord, case.id)
    values: dict[str, Any] = {}
    for fld in fields.REGISTRY.record():
        assert fld.stored is not None
        source: Any = case if fld.stored.table == fields.CASES else record
        values[fld.key] = _read(fld, source, keyed)
    transfers = json.loads(keyed.open(record.transfers) or "[]") if record is not None else []
    group_id = record.group_id if record is not None else None
    group_name = None
    if group_id is not None:
        group = await session.get(CaseGroup, group_id)
        group_name = cipher.open(group.name) if group is not None else None
    return RecordView(values, transfers, group_id, group_name)


async def record_followers(session: AsyncSession, case: Case) -> list[int]:
    """Monitors told of record changes: those following this public case with every change
    (by case, region, group or all), not those who asked for verdicts and returns only."""
    from storage.subscriptions import record_recipients  # the rule of who hears lives there

    if case.visibility != Visibility.PUBLIC:
        return []
    return await record_recipients(session, case)


async def edit_record(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    key: str,
    value: Any,
    *,
    tell: Tell,
    actor_id: int,
    now: datetime,
) -> RecordEdit:
    """Set one record field (None clears it) and tell whom staff chose, in one transaction:
    the value (`_write`), a RECORD_CHANGED event, the messages (`_tell`) and the audit row.
    Setting the value it already has changes nothing and tells nobody."""
    fld = editable().get(key)
    if fld is None or fld.stored is None:
        raise UnknownRecordField(key)
    case = await _case(session, code)
    keyed = await case_cipher(session, cipher, case.id)
    shown = await _write(session, cipher, keyed, case, fld, value, now)
    if shown is _UNCHANGED:
        return RecordEdit(case.code, key, False, 0, 0, None)
    monitors_told = tell == Tell.FAMILY_AND_MONITORS and monitor_may_read(fld)
    event = CaseEvent(
        case_id=case.id,
        kind=EventKind.RECORD_CHANGED,
        public=monitors_told and case.visibility == Visibility.PUBLIC,
        body=keyed.seal(json.dumps({"field": key, "value": shown}, ensure_ascii=False)),
        actor_id=actor_id,
        created_at=now,
    )
    session.add(event)
    await session.flush()
    params = {"code": case.code, "field": key, "value": shown}
    family, followers = await _tell(
        session, keyed, case, event, params, family=tell != Tell.NOBODY, monitors=monitors_told
    )
    audit.record(
        session,
        actor_id=actor_id,
        action="case.record",
        case_code=case.code,
        detail=f"{key}; told {tell.value}: family {family}, monitors {followers}",
        at=now,
    )
    return RecordEdit(case.code, key, True, family, followers, event.id)


_UNCHANGED = object()


async def _write(
    session: AsyncSession,
    master: FieldCipher,
    keyed: FieldCipher,
    case: Case,
    fld: Field,
    value: Any,
    now: datetime,
) -> Any:
    """Store the value where its field lives (sealed if it is sealed) with what follows from
    it: a new place of detention keeps the old one in the transfer history, a new name or birth
    date re-indexes the duplicate check and /find. Returns the value as the kind shows it, or
    `_UNCHANGED`."""
    assert fld.stored is not None
    record = await _record(session, case, now)
    personal = await session.get(CasePersonal, case.id)
    if personal is None:
        personal = CasePersonal(case_id=case.id)
        session.add(personal)
    target = _target(fld, case, record, personal)
    old = _read(fld, target, keyed)
    raw = fld.kind.column(value, now.date())
    shown = fld.kind.from_column(raw)
    if old == shown:
        return _UNCHANGED
    sealed = keyed.seal(str(raw)) if fld.stored.sealed and raw is not None else raw
    setattr(target, fld.stored.column, sealed)
    if fld.key == fields.NAME:  # staff find a case by its name's keyed index (storage/search.py)
        await index_case_name(session, keyed, case.id, keyed.open(personal.detainee_name))
    if fld.key in (fields.NAME, fields.BIRTH):  # duplicates are found by name and birth
        case.person_index = person_index_from_stored(
            master, keyed.open(personal.detainee_name), keyed.open(personal.birth_date)
        )
    if fld.key == "detention_place" and old:
        history = json.loads(keyed.open(record.transfers) or "[]")
        history.append({"place": old, "until": now.date().isoformat()})
        record.transfers = keyed.seal(json.dumps(history, ensure_ascii=False))
    record.updated_at = case.updated_at = now
    return shown


async def _tell(
    session: AsyncSession,
    keyed: FieldCipher,
    case: Case,
    event: CaseEvent,
    params: dict[str, Any],
    *,
    family: bool,
    monitors: bool,
) -> tuple[int, int]:
    """Queue the change to the family and (on a public case) the monitors following it with
    every change; returns how many of each."""
    relatives = await family_of(session, case) if family else []
    followers = await record_followers(session, case) if monitors else []
    name = await _detainee_name(session, keyed, case) if relatives or followers else None
    to = [(chat, T_RECORD_FAMILY) for chat in relatives]
    to += [(chat, T_RECORD_MONITOR) for chat in followers if chat not in relatives]
    messages = [
        Outgoing(chat, event_key(event.id, chat), template, {**params, "name": name},
                 event_id=event.id)
        for chat, template in to
    ]  # fmt: skip
    await enqueue(session, keyed, messages, now=event.created_at)
    return len(relatives), len(followers)


async def _detainee_name(session: AsyncSession, keyed: FieldCipher, case: Case) -> str | None:
    personal = await session.get(CasePersonal, case.id)
    return keyed.open(personal.detainee_name) if personal is not None else None


# -- groups of co-defendants ----------------------------------------------------------------------

GROUP_FIELDS = frozenset(
    {"next_hearing", "hearing_access", "court", "criminal_case", "articles", "sentence_regime"}
)
"""Fields set for a whole group at once (a hearing, a verdict's regime): each case gets its own
event and messages, in one transaction."""


class UnknownGroup(LookupError):
    pass


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    codes: list[str]


async def create_group(
    session: AsyncSession, cipher: FieldCipher, name: str, *, actor_id: int, now: datetime
) -> int:
    group = CaseGroup(name=cipher.seal(name), created_at=now)
    session.add(group)
    await session.flush()
    audit.record(
        session, actor_id=actor_id, action="group.create", detail=f"group {group.id}", at=now
    )
    return group.id


async def set_case_group(
    session: AsyncSession,
    code: str,
    group_id: int | None,
    *,
    actor_id: int,
    now: datetime,
) -> str:
    """Put a case in a group (or take it out, with None)."""
    case = await _case(session, code)
    if group_id is not None and await session.get(CaseGroup, group_id) is None:
        raise UnknownGroup(group_id)
    record = await _record(session, case, now)
    record.group_id = group_id
    record.updated_at = now
    audit.record(
        session,
        actor_id=actor_id,
        action="group.member",
        case_code=case.code,
        detail=f"group {group_id}" if group_id is not None else "no group",
        at=now,
    )
    return case.code


async def group_view(session: AsyncSession, cipher: FieldCipher, group_id: int) -> GroupView:
    group = await session.get(CaseGroup, group_id)
    if group is None:
        raise UnknownGroup(group_id)
    codes = await session.scalars(
        select(Case.code)
        .join(CaseRecord, CaseRecord.case_id == Case.id)
        .where(CaseRecord.group_id == group_id, Case.merged_into_id.is_(None))
        .order_by(Case.code)
    )
    return GroupView(group_id, cipher.open(group.name) or "", list(codes))


async def list_groups(session: AsyncSession, cipher: FieldCipher) -> list[GroupView]:
    ids = await session.scalars(select(CaseGroup.id).order_by(CaseGroup.id))
    return [await group_view(session, cipher, group_id) for group_id in ids]


async def edit_group(
    session: AsyncSession,
    cipher: FieldCipher,
    group_id: int,
    key: str,
    value: Any,
    *,
    tell: Tell,
    actor_id: int,
    now: datetime,
) -> Sequence[RecordEdit]:
    """Set a group field on every case of the group, one event per case, in the caller's one
    transaction (a crash writes all of them or none)."""
    if key not in GROUP_FIELDS:
        raise UnknownRecordField(key)
    view = await group_view(session, cipher, group_id)
    edits = [  # one event and one set of messages per case, all in this transaction
        await edit_record(session, cipher, code, key, value, tell=tell, actor_id=actor_id, now=now)
        for code in view.codes
    ]
    audit.record(
        session,
        actor_id=actor_id,
        action="group.record",
        detail=f"group {group_id}: {key} on {len(edits)} cases",
        at=now,
    )
    return edits
