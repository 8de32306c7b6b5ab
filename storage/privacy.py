"""The family's control over its data: what we hold about a user, erasing it, and retention.

A relative may decide that being in our database is itself a danger (a phone checked at a
checkpoint, a search of their home). `forget_user` erases everything that identifies them or that
they told us, and keeps of a case only what staff marked as needed (`CasePersonal.kept_for_case`),
with the reporter's identity removed, so the case can still be followed. `purge_expired` enforces
the retention periods of the settings (drafts, delivered messages, the audit log): the
many rows of the outbox and the audit log in batches (`purge_in_batches`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, fields, forms
from storage.access import is_staff
from storage.crypto import FieldCipher
from storage.data_keys import (
    case_cipher,
    destroy_keys,
    destroy_user_key,
    lock_case_keys,
    rekey_case,
)
from storage.db import SessionFactory
from storage.enums import EventKind, MonitorStatus, OutboxStatus, Role
from storage.identity import telegram_id_of
from storage.models import (
    AuditEntry,
    Case,
    CaseContact,
    CaseEvent,
    CasePersonal,
    DataKey,
    DigestSetting,
    InboxUpdate,
    MonitorRequest,
    OutboxMessage,
    PersistenceEntry,
    ReportForm,
    SignOfLifeEntry,
    Subscription,
    Thread,
    UnreachableChat,
    User,
)
from storage.threads import MessageView, family_messages_of

USER_KIND = "user"
CHAT_KIND = "chat"
CONVERSATION_PREFIX = "conv:"
FAMILY_EVENT_KINDS = (EventKind.CREATED, EventKind.INFO_RECEIVED, EventKind.CONTACT_LINKED)
"""Events whose actor is the family member and whose body holds their words: a report, an
answer to staff, and (written by older versions when a report joined a case) a linked contact's
summary."""
PERSONAL_FIELDS = fields.REGISTRY.columns(fields.PERSONAL)


@dataclass(frozen=True)
class HeldCase:
    """One case the user is linked to, with what they told us about it."""

    code: str
    status: str
    is_reporter: bool
    relation: str | None
    contact_phone: str | None
    detainee_name: str | None
    telegram_name: str | None = None
    waiting: bool = False  # an older joined report staff have not approved: no code, no name
    told: tuple[tuple[str, object], ...] = ()
    """(field key, value) of what this user may see of what is held (`storage.fields`)."""


@dataclass(frozen=True)
class HeldData:
    """Everything the bot holds about one user, opened, for /mydata."""

    user_id: int
    language: str | None
    role: str
    monitor_status: str
    first_seen: datetime | None
    cases: list[HeldCase] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    monitor_requests: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    has_draft: bool = False
    pending_messages: int = 0
    thread_messages: list[MessageView] = field(default_factory=list)


@dataclass(frozen=True)
class ForgetResult:
    """Counts only (safe to log)."""

    contacts_removed: int
    cases_unlinked: int
    cases_erased: int
    cases_kept: int
    subscriptions_removed: int
    persistence_removed: int
    outbox_removed: int


async def _persistence_keys_of(session: AsyncSession, user_id: int) -> list[tuple[str, str]]:
    """The user's persistence entries (their user data, their private chat, their conversations),
    by the owner index: the cost does not grow with other users' entries."""
    rows = await session.execute(
        select(PersistenceEntry.kind, PersistenceEntry.key).where(PersistenceEntry.owner == user_id)
    )
    return [(kind, key) for kind, key in rows]


async def held_data(session: AsyncSession, cipher: FieldCipher, user_id: int) -> HeldData | None:
    """What we hold about the user, decrypted for them alone (None if we hold nothing)."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    contacts = await session.execute(
        select(Case, CaseContact, CasePersonal)
        .join(CaseContact, CaseContact.case_id == Case.id)
        .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
        .where(CaseContact.user_id == user_id)
        .order_by(Case.id)
    )
    cases = [
        _held_case(
            await case_cipher(session, cipher, contact.case_id, create=False),
            case,
            contact,
            personal,
        )
        for case, contact, personal in contacts
    ]
    targets = await session.scalars(
        select(Subscription.target).where(Subscription.user_id == user_id).order_by(Subscription.id)
    )
    requests = await session.scalars(
        select(MonitorRequest).where(MonitorRequest.user_id == user_id).order_by(MonitorRequest.id)
    )
    pending = await session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.chat_id == user_id, OutboxMessage.status == OutboxStatus.PENDING
        )
    )
    return HeldData(
        # What we hold is the Telegram id, sealed (the key is only its index).
        user_id=await telegram_id_of(session, cipher, user.id) or user.id,
        language=user.language,
        role=user.role,
        monitor_status=user.monitor_status,
        first_seen=user.created_at,
        cases=cases,
        subscriptions=list(targets),
        monitor_requests=[
            (cipher.open(r.organisation), cipher.open(r.purpose), r.status) for r in requests
        ],
        has_draft=bool(await _persistence_keys_of(session, user_id))
        or await forms.exists(session, user_id),
        pending_messages=len(list(pending)),
        thread_messages=await family_messages_of(session, cipher, user_id),
    )


def _held_case(
    cipher: FieldCipher, case: Case, contact: CaseContact, personal: CasePersonal | None
) -> HeldCase:
    """One contact row as /mydata shows it. A row staff have not approved belongs to another
    family's case: its code, status and details are theirs, not this user's to see."""
    username = cipher.open(contact.telegram_username)
    parts = (cipher.open(contact.telegram_name), f"@{username}" if username else None)
    telegram = " ".join(part for part in parts if part)
    waiting = not (contact.is_reporter or contact.approved)
    told = _told(cipher, case, contact, personal, waiting=waiting)
    return HeldCase(
        code="" if waiting else case.code,
        status="" if waiting else case.status,
        is_reporter=contact.is_reporter,
        relation=contact.relation,
        contact_phone=cipher.open(contact.contact_phone),
        detainee_name=None
        if waiting
        else cipher.open(personal.detainee_name if personal else None),
        telegram_name=telegram or None,
        waiting=waiting,
        told=told,
    )


def _told(
    cipher: FieldCipher,
    case: Case,
    contact: CaseContact,
    personal: CasePersonal | None,
    *,
    waiting: bool,
) -> tuple[tuple[str, object], ...]:
    """The fields (`storage.fields`) held about this contact's case that this user may see:
    everything they reported, as reporter; the name and their own contact details, as a
    relative linked later; only their own details while they wait for approval."""
    told: list[tuple[str, object]] = []
    for entry in fields.REGISTRY.fields:
        where = entry.stored
        if where is None or entry.audience == fields.Audience.STAFF:
            continue
        if where.table == fields.CONTACTS:
            row: object = contact
        elif waiting or (not contact.is_reporter and entry.key != fields.NAME):
            continue
        else:
            row = personal if where.table == fields.PERSONAL else case
        raw = getattr(row, where.column, None) if row is not None else None
        value = cipher.open(raw) if where.sealed and isinstance(raw, bytes) else raw
        if value not in (None, ""):
            told.append((entry.key, value))
    return tuple(told)


def coarse_day(now: datetime) -> datetime:
    """Midnight (UTC) of `now`: what /forget writes instead of the instant, so no two rows it
    touches share a moment that would tie them together."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def forget_user(
    session: AsyncSession, cipher: FieldCipher, user_id: int, *, now: datetime
) -> ForgetResult:
    """Erase the user's personal data and links, in the caller's transaction.

    Cases they reported stay (other relatives and staff still follow them) but lose the reporter;
    their sealed details are erased unless staff marked them `kept_for_case`. Their own words in
    case events (replies to staff) are erased. The audit row names no one.

    What is erased is also shredded (`storage.data_keys`): the user's own data key (their
    conversations) and their persistence entries' keys are destroyed, and every case they were
    part of gets a new key, so no copy of the old values (WAL, free pages, heap, a backup of the
    other tables) can be opened. Call `storage.data_keys.shred_copies` after the commit.

    No row keeps their user key afterwards (so a seized database with the data key cannot tell
    that a given Telegram account ever wrote), with two exceptions: an account staff froze keeps
    its `users` row, without its sealed Telegram id, so whoever holds the phone stays shut out;
    and the ids of messages "Hide this chat" may still delete (`storage.chat_cleanup`), dropped
    when Telegram's 48 hours are over. Nothing it writes carries the instant of the erasure:
    the erased cases keep their `updated_at`, the audit row and a frozen account's
    `forgotten_at` say only the day.
    """
    reported = list(await session.scalars(select(Case.id).where(Case.reporter_id == user_id)))
    linked = set(
        await session.scalars(select(CaseContact.case_id).where(CaseContact.user_id == user_id))
    )
    touched = sorted(linked | set(reported))
    await lock_case_keys(session, touched)
    kept = set(
        await session.scalars(
            select(CasePersonal.case_id).where(
                CasePersonal.case_id.in_(reported), CasePersonal.kept_for_case.is_(True)
            )
        )
    )
    erased = [case_id for case_id in reported if case_id not in kept]
    if erased:
        await session.execute(
            update(CasePersonal)
            .where(CasePersonal.case_id.in_(erased))
            .values(dict.fromkeys(PERSONAL_FIELDS))
        )
        # `updated_at` is left as it was: the moment of the erasure would tie the case to the
        # audit row of the /forget.
        await session.execute(update(Case).where(Case.id.in_(erased)).values(person_index=None))
    if reported:
        await session.execute(update(Case).where(Case.id.in_(reported)).values(reporter_id=None))
    own_words = (CaseEvent.actor_id == user_id, CaseEvent.kind.in_(FAMILY_EVENT_KINDS))
    await session.execute(
        update(CaseEvent)
        .where(*own_words, CaseEvent.case_id.not_in(kept))
        .values(body=None, actor_id=None)
    )
    await session.execute(update(CaseEvent).where(*own_words).values(actor_id=None))
    user = await session.get(User, user_id)
    staff_member = user is not None and is_staff(user.role)
    if not staff_member:
        # Anything else a family member did to a case (none today) names no one either.
        await session.execute(
            update(CaseEvent).where(CaseEvent.actor_id == user_id).values(actor_id=None)
        )
    await session.execute(
        update(SignOfLifeEntry).where(SignOfLifeEntry.logged_by == user_id).values(logged_by=None)
    )
    # Their conversations with the hotline, staff answers included (desk notices go with them).
    await session.execute(delete(Thread).where(Thread.user_id == user_id))
    contacts = await session.execute(delete(CaseContact).where(CaseContact.user_id == user_id))
    subscriptions = await session.execute(
        delete(Subscription).where(Subscription.user_id == user_id)
    )
    await session.execute(delete(DigestSetting).where(DigestSetting.user_id == user_id))
    await session.execute(delete(UnreachableChat).where(UnreachableChat.chat_id == user_id))
    requests = list(
        await session.scalars(select(MonitorRequest.id).where(MonitorRequest.user_id == user_id))
    )
    for request_id in requests:
        # The admins' notice of their request carries the requester in its sealed parameters.
        await session.execute(
            delete(OutboxMessage).where(OutboxMessage.dedupe_key.like(f"monreq:{request_id}:%"))
        )
    await session.execute(delete(MonitorRequest).where(MonitorRequest.user_id == user_id))
    outbox = await session.execute(delete(OutboxMessage).where(OutboxMessage.chat_id == user_id))
    found = await session.execute(
        delete(PersistenceEntry)
        .where(PersistenceEntry.owner == user_id)
        .returning(PersistenceEntry.data_key_id)
    )
    entries = list(found)
    await destroy_keys(session, cipher, [key_id for (key_id,) in entries if key_id is not None])
    await forms.discard(session, cipher, user_id)  # an open report form, with its key
    await destroy_user_key(session, cipher, user_id)
    for case_id in touched:
        await rekey_case(session, cipher, case_id, drop_delivered=case_id in erased)
    if not staff_member:
        # A family's own actions (a reply to staff) must not link their Telegram id to a case;
        # staff actions stay attributed, that is what the audit log is for.
        await session.execute(
            update(AuditEntry).where(AuditEntry.actor_id == user_id).values(actor_id=0)
        )
    await session.execute(
        update(AuditEntry).where(AuditEntry.target_user_id == user_id).values(target_user_id=None)
    )
    day = coarse_day(now)
    if user is not None and user.frozen_at is None:
        await session.delete(user)
        await session.flush()
    elif user is not None:
        # A freeze stays (whoever holds the phone stays shut out): the row stays, keyed, but
        # without the Telegram id, the language, the PIN or any instant of its own.
        user.telegram_id = None
        user.language = None
        user.monitor_status = MonitorStatus.NONE
        if user.role == Role.MONITOR:
            user.role = Role.FAMILY
        user.forgotten_at = day
        user.created_at = day
        user.last_seen_at = day
        user.pin_hash = None
        user.pin_failures = 0
    result = ForgetResult(
        contacts_removed=_count(contacts),
        cases_unlinked=len(reported),
        cases_erased=len(erased),
        cases_kept=len(kept),
        subscriptions_removed=_count(subscriptions),
        persistence_removed=len(entries),
        outbox_removed=_count(outbox),
    )
    audit.record(
        session,
        actor_id=0,
        action="forget_user",
        detail=f"cases erased {result.cases_erased}, kept {result.cases_kept}",
        at=day,
    )
    return result


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class PurgeResult:
    drafts: list[tuple[str, str]]
    outbox_rows: int
    audit_rows: int
    report_forms: int = 0
    batches: int = 0
    """Transactions the outbox and audit rows were deleted in (`purge_in_batches`)."""


@dataclass(frozen=True)
class DraftPurge:
    drafts: list[tuple[str, str]]
    report_forms: int


def _unused(column: Any, key_id: Any) -> ColumnElement[bool]:
    """No row of `column`'s table uses the key (NOT EXISTS: an index probe per key, where
    NOT IN read the whole column first, under the write lock)."""
    return ~exists().where(column == key_id)


async def purge_drafts(session: AsyncSession, *, now: datetime, draft_days: int) -> DraftPurge:
    """Delete abandoned drafts (persistence entries, report forms) and their keys, and keys no
    row uses any more, in the caller's (short) transaction.

    Returns the (kind, key) of the persistence entries removed, so the running bot can forget its
    in-memory copy too (or it would write the draft back on the user's next message).
    """
    draft_cutoff = now - timedelta(days=draft_days)
    drafts = [
        (kind, key)
        for kind, key in await session.execute(
            select(PersistenceEntry.kind, PersistenceEntry.key).where(
                PersistenceEntry.updated_at < draft_cutoff
            )
        )
    ]
    purged = await session.execute(
        delete(PersistenceEntry)
        .where(PersistenceEntry.updated_at < draft_cutoff)
        .returning(PersistenceEntry.data_key_id)
    )
    # Each draft's own key goes with it: its copies in the WAL or a backup are noise now.
    draft_keys = [key_id for (key_id,) in purged if key_id is not None]
    if draft_keys:
        await session.execute(delete(DataKey).where(DataKey.id.in_(draft_keys)))
    report_forms = await forms.purge_older_than(session, now=now, days=draft_days)
    # A key no row uses any more (an entry written twice at once keeps one of its two keys;
    # an update waiting in the inbox, the bot down that long, still uses its own).
    await session.execute(
        delete(DataKey).where(
            DataKey.case_id.is_(None),
            DataKey.user_id.is_(None),
            DataKey.created_at < draft_cutoff,
            _unused(PersistenceEntry.data_key_id, DataKey.id),
            _unused(OutboxMessage.data_key_id, DataKey.id),
            _unused(ReportForm.data_key_id, DataKey.id),
            _unused(InboxUpdate.data_key_id, DataKey.id),
        )
    )
    return DraftPurge(drafts, report_forms)


async def purge_expired(
    session: AsyncSession,
    *,
    now: datetime,
    draft_days: int,
    outbox_days: int,
    audit_days: int,
) -> PurgeResult:
    """What `jobs.retention` purges, all in the caller's one transaction (the job deletes the
    outbox and audit rows in batches instead: `purge_in_batches`)."""
    drafts = await purge_drafts(session, now=now, draft_days=draft_days)
    counts = []
    for expired in (expired_outbox(now, outbox_days), expired_audit(now, audit_days)):
        counts.append(_count(await session.execute(delete(expired.model).where(expired.condition))))
    return PurgeResult(drafts.drafts, counts[0], counts[1], drafts.report_forms, batches=1)


MIN_BATCH = 100
MAX_BATCH = 20_000


@dataclass(frozen=True)
class Expired:
    """Rows of one table past their retention: what `purge_in_batches` deletes. `older` is the
    age test alone, which bounds the ids (`upper_id`)."""

    model: Any
    condition: ColumnElement[bool]
    older: ColumnElement[bool]


def expired_outbox(now: datetime, days: int) -> Expired:
    """Delivered, dead or cancelled outbox rows older than `days` (pending ones stay). The status
    is compared as `status || ''`, which no index matches: SQLite without statistics would
    otherwise walk the status index of every sent row (a million) instead of the id range."""
    older = OutboxMessage.created_at < now - timedelta(days=days)
    done = (OutboxStatus.SENT, OutboxStatus.DEAD, OutboxStatus.CANCELLED)
    return Expired(OutboxMessage, OutboxMessage.status.concat("").in_(done) & older, older)


def expired_audit(now: datetime, days: int) -> Expired:
    older = AuditEntry.created_at < now - timedelta(days=days)
    return Expired(AuditEntry, older, older)


async def upper_id(session: AsyncSession, expired: Expired) -> int | None:
    """At least the highest id of an expired row (None: none): batches stop there, so the last
    one does not walk the newer rows to the end of the table."""
    found = await session.scalar(select(func.max(expired.model.id)).where(expired.older))
    return None if found is None else int(found)


async def delete_batch(
    session: AsyncSession, expired: Expired, *, after: int, upper: int, size: int
) -> tuple[int, int | None]:
    """Delete the next (at most) `size` expired rows with ids in (after, upper], by the range of
    their ids; returns (rows deleted, the range's last id, or None when there were none)."""
    model = expired.model
    batch = (
        select(model.id)
        .where(model.id > after, model.id <= upper, expired.condition)
        .order_by(model.id)
        .limit(size)
        .subquery()
    )
    low, high = (await session.execute(select(func.min(batch.c.id), func.max(batch.c.id)))).one()
    if high is None:
        return 0, None
    deleted = await session.execute(
        delete(model)
        .where(model.id >= low, model.id <= high, expired.condition)
        .execution_options(synchronize_session=False)
    )
    return _count(deleted), int(high)


async def purge_in_batches(
    sessions: SessionFactory,
    expired: Expired,
    *,
    size: int,
    pause: float,
    target: float | None = None,
) -> tuple[int, int]:
    """Delete every expired row, `size` at a time, each batch its own transaction, with `pause`
    seconds between batches: a writer waiting for SQLite's lock waits one batch at most, and
    its busy handler's next try finds the lock free. With `target` (seconds), the size follows
    what a batch costs on this database and machine (halved or doubled at most each time,
    between MIN_BATCH and MAX_BATCH rows), so each holds the lock about that long.
    Returns (rows deleted, batches)."""
    async with sessions() as session:
        upper = await upper_id(session, expired)
    deleted = batches = 0
    after = 0
    while upper is not None:
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            count, last = await delete_batch(session, expired, after=after, upper=upper, size=size)
        if last is None:
            break
        deleted, batches, after = deleted + count, batches + 1, last
        if last >= upper:
            break
        if target is not None:
            took = max(time.perf_counter() - started, 1e-4)
            size = min(
                MAX_BATCH, max(MIN_BATCH, size // 2, min(size * 2, int(size * target / took)))
            )
        await asyncio.sleep(pause)
    return deleted, batches
