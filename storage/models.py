"""The database schema as typed SQLAlchemy 2 mappings.

Personal fields are `bytes` columns holding Fernet tokens sealed by `storage.crypto`; nothing in a
plain column names a person. Enumerations are stored as short strings (see `storage.enums`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.enums import (
    AlertFilter,
    BroadcastStatus,
    MonitorStatus,
    OutboxStatus,
    Role,
    Visibility,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite has no time zones and returns naive ones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012
        datetime: UTCDateTime(),
        bytes: LargeBinary(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    """A Telegram user who has talked to the bot. `id` is the user key, a keyed index of the
    Telegram id (storage/identity.py), never the Telegram id itself; every column that names a
    user holds this key."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    telegram_id: Mapped[bytes | None]
    """The Telegram id, sealed: opened only to send (storage/identity.py)."""
    language: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default=Role.FAMILY)
    monitor_status: Mapped[str] = mapped_column(String(16), default=MonitorStatus.NONE)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    forgotten_at: Mapped[datetime | None]
    discreet: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Pushes say only that there is news, with a Show button (bot/texts/messages/discreet.py)."""
    frozen_at: Mapped[datetime | None]
    """Set by staff (/freeze) or by five wrong PINs: no details, no updates (a seized phone)."""
    pin_hash: Mapped[bytes | None]
    """The family's PIN as a salted scrypt hash, sealed (storage/safety.py); never in clear."""
    pin_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DataKey(Base):
    """One data key (envelope encryption, `storage.data_keys`): a random Fernet key sealed by the
    master key. It belongs to a case (its personal fields, contacts, notes and messages about
    it), to a user (their conversations with the hotline, their PIN) or, with neither, to one
    persistence entry (a draft). Destroying the row makes everything it sealed unreadable."""

    __tablename__ = "data_keys"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - an id is never used twice

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sealed: Mapped[bytes]
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """A detention report and its place in the lifecycle. Only non-identifying fields are plain."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_region_status", "region", "status"),  # /find, /stats (storage/search.py)
        Index("ix_cases_created_at", "created_at"),  # date ranges, reports per week
        Index("ix_cases_inbox", "status", "created_at", "id"),  # the staff inbox's pages
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(9), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.STAFF_ONLY)
    region: Mapped[str] = mapped_column(String(16), index=True)
    detained_by: Mapped[str | None] = mapped_column(String(16))
    detention_date: Mapped[date | None] = mapped_column(Date)
    person_index: Mapped[str | None] = mapped_column(String(64), index=True)
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    duplicate_of: Mapped[str | None] = mapped_column(String(9), index=True)
    """Staff-only hint: the code of an earlier case about the same person (same blind index).
    The reporter is never told; staff merge or link (storage.relatives)."""
    closed_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    custody: Mapped[str | None] = mapped_column(String(16), index=True)
    """Where the person stands (`enums.Custody`), apart from the lifecycle; kept by staff."""


class CasePersonal(Base):
    """The detainee's personal fields, each sealed with the case's data key; which field is
    which column is said by `storage.fields.REGISTRY`."""

    __tablename__ = "case_personal"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    detainee_name: Mapped[bytes | None]
    birth_date: Mapped[bytes | None]
    arrest_place: Mapped[bytes | None]
    """Where the arrest happened (town, address)."""
    charges: Mapped[bytes | None]
    held_in: Mapped[bytes | None]
    """Where the person is held now."""
    lawyer: Mapped[bytes | None]
    health: Mapped[bytes | None]
    kept_for_case: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseContact(Base):
    """A user who follows a case as family: the reporter, or a relative linked later."""

    __tablename__ = "case_contacts"
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str | None] = mapped_column(String(16))
    is_reporter: Mapped[bool] = mapped_column(Boolean, default=False)
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_phone: Mapped[bytes | None]
    telegram_name: Mapped[bytes | None]
    """The reporter's Telegram name and username as they filed (sealed), so staff deciding
    whether to link them to another family's case see who is asking."""
    telegram_username: Mapped[bytes | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseEvent(Base):
    """One thing that happened to a case; notes are sealed, the rest carries no personal data."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[bytes | None]
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        # /stats: the first "verified" of each case, returns per month (storage/stats.py)
        Index("ix_case_events_new_status_created_at", "new_status", "created_at"),
    )


class UrgentCase(Base):
    """A case born on the urgent path ("a search or detention is happening now"): what is
    happening, who took it, how far its alert went. Its answers live where every case keeps
    them (the place in `case_personal`, by whom in `cases`, the phone in `case_contacts`, all
    sealed with the case's key), so erasing and re-keying treat them like any other case's."""

    __tablename__ = "urgent_cases"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    what: Mapped[str | None] = mapped_column(String(16))
    contact_here: Mapped[bool] = mapped_column(Boolean, default=False)
    """The family asked to be reached here in Telegram (no phone)."""
    taken_by: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The user key of the staff member who took it: set once, by an atomic update."""
    taken_at: Mapped[datetime | None]
    taker_name: Mapped[bytes | None]
    """The taker's Telegram name, sealed with the master key (it names staff, not the family):
    the others are told who took it."""
    last_step: Mapped[str | None] = mapped_column(String(16))
    last_step_at: Mapped[datetime | None]
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    """How many times the alert went out again because nobody took it."""
    last_alert_at: Mapped[datetime] = mapped_column(index=True)
    done_at: Mapped[datetime | None]
    report_code: Mapped[str | None] = mapped_column(String(9))
    """The full report the family filed from these answers later, if any."""


class OnCall(Base):
    """A staff member's own on-call switch (`/oncall on|off`)."""

    __tablename__ = "oncall"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    on_now: Mapped[bool] = mapped_column(Boolean, default=False)
    off_until: Mapped[datetime | None]
    """`/oncall off` during a scheduled shift: off until that shift ends."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OnCallShift(Base):
    """One weekly on-call shift set by an admin, in the hotline's time zone (HOTLINE_TIMEZONE)."""

    __tablename__ = "oncall_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    days: Mapped[int] = mapped_column(Integer)
    """The days the shift starts on: bit 0 Monday ... bit 6 Sunday."""
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    """Minutes after midnight; an end at or before the start ends on the next day."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Thread(Base):
    """One family member's conversation with the hotline: about one of their cases, or general
    (no case yet). Each member has their own thread per case, so a staff answer reaches exactly
    the person who wrote, and contacts of one case never see each other."""

    __tablename__ = "threads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    assigned_to: Mapped[int | None] = mapped_column(BigInteger, index=True)
    unread: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThreadMessage(Base):
    """One message of a thread, from the family or from staff. Text, captions, locations and
    Telegram file ids are sealed; the bot never downloads a file."""

    __tablename__ = "thread_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    from_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[bytes | None]
    file_id: Mapped[bytes | None]
    chat_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PreparedAnswer(Base):
    """A prepared staff answer, one row per language of the same `key`."""

    __tablename__ = "prepared_answers"
    __table_args__ = (UniqueConstraint("key", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitorRequest(Base):
    """A request for monitor access, decided by an admin."""

    __tablename__ = "monitor_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation: Mapped[bytes | None]
    purpose: Mapped[bytes | None]
    status: Mapped[str] = mapped_column(String(16), default=MonitorStatus.PENDING)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Subscription(Base):
    """A monitor follows one case, one region, or every public case (`target` makes it unique)."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(40), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    region: Mapped[str | None] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """A group of co-defendants' cases (`case_groups.id`) the monitor follows."""
    alert_filter: Mapped[str] = mapped_column(String(16), default=AlertFilter.ALL_CHANGES)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    case_filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """A saved case-library filter (scope FILTER): {"region", "custody", "article", "year"}
    (storage/library.py decides whether a case matches)."""


class DigestSetting(Base):
    """A monitor's daily digest: on or off, and the local time of day it is sent."""

    __tablename__ = "digest_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    send_at_minute: Mapped[int] = mapped_column(Integer, default=18 * 60)
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/Kyiv")
    last_sent_on: Mapped[date | None] = mapped_column(Date)


class Broadcast(Base):
    """An announcement from staff to an audience; its deliveries are outbox rows."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(BigInteger)
    audience: Mapped[str] = mapped_column(String(16))
    audience_arg: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[bytes | None]
    """Sealed: an announcement can name people and places."""
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.DRAFT)
    total: Mapped[int] = mapped_column(Integer, default=0)
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    queued_through: Mapped[int | None] = mapped_column(BigInteger)
    """The last recipient (user key) whose row is queued: recipients are queued in key order, a
    chunk per transaction, and a restart continues after this one."""
    queue_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """True while recipients remain to be queued."""


class BroadcastText(Base):
    """A broadcast's text in one more language (crh, en, ru). The Ukrainian text, required, is
    `broadcasts.text`; each recipient reads their language's text, or that one."""

    __tablename__ = "broadcast_texts"

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    text: Mapped[bytes]
    """Sealed, as `broadcasts.text` is."""


class OutboxMessage(Base):
    """One message to one chat, written in the same transaction as the change that caused it.

    `dedupe_key` (for example ``event:42:123456``) makes queuing the same thing twice impossible.
    `payload` is a sealed JSON object of the template's parameters; the text is rendered in the
    recipient's language only when it is sent. Lower `priority` goes first (case alerts 0,
    broadcasts 100).

    Ownership (jobs/delivery.py): a row is `sending` for exactly one `owner` (a delivery loop)
    until `lease_until`, which the owner renews while it lives; claims and recovery only ever
    look at open rows, through the partial index `ix_outbox_pending`, so the delivered history
    never slows them down.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "not_before", "id"),
        Index("ix_outbox_chat", "chat_id", "status"),
        Index("ix_outbox_sent_message", "chat_id", "telegram_message_id"),
        Index("ix_outbox_broadcast_progress", "broadcast_id", "status", "sent_at"),
        Index(
            "ix_outbox_pending",
            "priority",
            "id",
            "chat_id",
            "not_before",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_outbox_dead_unreported",
            "dead_at",
            sqlite_where=text("status = 'dead' AND dead_reported_at IS NULL"),
            postgresql_where=text("status = 'dead' AND dead_reported_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    template: Mapped[str] = mapped_column(String(48))
    payload: Mapped[bytes | None]
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_events.id", ondelete="CASCADE"), index=True
    )
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]
    thread_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("thread_messages.id", ondelete="CASCADE"), index=True
    )
    """The thread message a desk notice announces: a staff member's Telegram reply to the notice
    (chat_id + telegram_message_id) finds its thread through it."""
    data_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_keys.id", ondelete="CASCADE"), index=True
    )
    """The data key `payload` is sealed with (the case's or the user's it is about); None: the
    master key (broadcasts, digests). A row whose key is destroyed goes with it."""
    owner: Mapped[str | None] = mapped_column(String(32))
    """The delivery loop holding the row while it is `sending` (a random id per loop)."""
    failing_since: Mapped[datetime | None]
    """The first of an unbroken run of network errors and 5xx: the row is retried until
    `failing_since + delivery_horizon_hours`, then it is dead."""
    dead_at: Mapped[datetime | None]
    dead_reported_at: Mapped[datetime | None]
    """When staff were told of this dead row (in one summary with the others)."""


class SendBudgetSlice(Base):
    """A share of the overall send rate some sender holds or used (storage/send_budget.py): every
    process on one PostgreSQL database takes its turns from these rows, so together they never
    send more than `send_rate_per_second` in any second. `free_at` is the database clock's epoch
    seconds at which the tokens may be used again (a second after their sends were answered)."""

    __tablename__ = "send_budget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    tokens: Mapped[int] = mapped_column(Integer)
    free_at: Mapped[float] = mapped_column(Double)


class SensitiveMessage(Base):
    """A message in a private chat that "Hide this chat" deletes (while Telegram still allows,
    48 hours), or that is deleted by itself at `delete_at` (a discreet notification's details).
    Ids only, no content; kept through /forget, so hiding still works after it."""

    __tablename__ = "sensitive_messages"
    __table_args__ = (UniqueConstraint("chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delete_at: Mapped[datetime | None] = mapped_column(index=True)


class AuditEntry(Base):
    """Who did what to which case, and whether it was allowed. Never personal data."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(48))
    case_code: Mapped[str | None] = mapped_column(String(9))
    target_user_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PersistenceEntry(Base):
    """PTB persistence (user/chat/bot data, conversation states), sealed: drafts hold answers."""

    __tablename__ = "persistence"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[bytes]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    data_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_keys.id", ondelete="CASCADE"), index=True
    )
    """The entry's own data key, destroyed with the entry (retention, /forget)."""
    owner: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The user key of the person the entry belongs to (`storage.identity.persistence_owner`):
    /mydata and /forget look up a user's entries by it."""


class ReportForm(Base):
    """A report being filled in (`storage.forms`): the state and the answers, written together
    in one statement per step. The answers are sealed with the form's own data key."""

    __tablename__ = "report_forms"

    user_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    version: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(32))
    editing: Mapped[bool] = mapped_column(Boolean, default=False)
    answers: Mapped[bytes]
    data_key_id: Mapped[int] = mapped_column(
        ForeignKey("data_keys.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class InboxUpdate(Base):
    """An update from Telegram, stored before Telegram is told it arrived, handled from here
    (`bot/inbox.py`): a crash replays it instead of losing it.

    `payload` is the update's JSON (a family's words, their Telegram id) sealed with a data key
    of its own; once the update is handled the payload and the key are destroyed, and the row
    stays (`update_id` only) for a day so that Telegram delivering it again changes nothing."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """The order of arrival, which is the order of handling."""
    update_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    payload: Mapped[bytes | None]
    """The update, sealed; None once handled."""
    data_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_keys.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Meta(Base):
    """Small facts about the database itself, such as the sealed key check."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes]


class GuideVersion(Base):
    """One imported version of the "what to do" guide (`python -m bot guide import`): the TOML
    source of every language, validated before it was stored. The newest row is the guide; with
    none, the files under locales/guide/ are. Public advice, not personal data: not sealed."""

    __tablename__ = "guide_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sources: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseGroup(Base):
    """Co-defendants tried together (one criminal case, e.g. "the second Simferopol group"):
    a hearing or verdict set on the group is written to every case in it, in one transaction.
    The name is sealed with the master key (it may name people) and shown to staff and to
    monitors following the group."""

    __tablename__ = "case_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseRecord(Base):
    """The prisoner's record staff keep current (storage/record.py): what the rights groups'
    lists hold. Values that could identify the person or their family (court, place of
    detention and its postal address, transfers, health, the criminal case's name) are sealed
    with the case's data key; dates, articles and the regime stay plain, so hearing reminders
    and statistics can query them without opening anything."""

    __tablename__ = "case_records"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_groups.id", ondelete="SET NULL"), index=True
    )
    articles: Mapped[list[Any] | None] = mapped_column(JSON)
    criminal_case: Mapped[bytes | None]
    court: Mapped[bytes | None]
    next_hearing_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    hearing_access: Mapped[str | None] = mapped_column(String(8))
    pretrial_until: Mapped[date | None] = mapped_column(Date)
    sentence_months: Mapped[int | None] = mapped_column(Integer)
    sentence_regime: Mapped[str | None] = mapped_column(String(16))
    detention_place: Mapped[bytes | None]
    postal_address: Mapped[bytes | None]
    transfers: Mapped[bytes | None]
    """Earlier places of detention, newest last: sealed JSON [{"place": ..., "until": ISO}]."""
    punishment_cell_since: Mapped[date | None] = mapped_column(Date)
    health_flags: Mapped[bytes | None]
    end_of_term: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignOfLifeEntry(Base):
    """A sign of life (a letter, a call, a visit, a lawyer's visit) on a day, logged by the
    family or staff. The silence alarm (storage/signs_of_life.py) watches the newest one."""

    __tablename__ = "signs_of_life"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    on_date: Mapped[date] = mapped_column(Date)
    logged_by: Mapped[int | None] = mapped_column(BigInteger)
    """The user key of who logged it (cleared by /forget)."""
    by_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnreachableChat(Base):
    """A staff chat Telegram says does not exist (`chat not found`: the person never opened the
    bot, or the bot is not in the staff group). Recorded once, so the other staff are told once,
    not per notice, and `python -m bot staff list` shows it; gone when that person opens the bot
    (/start) or the group writes (`storage.reachability`)."""

    __tablename__ = "unreachable_chats"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - an id is never used twice

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """Names the episode in the notices' dedupe keys, so they never name the person."""
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    """The user key (a person) or the group chat id."""
    reason: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(default=utcnow)


class Tag(Base):
    """A label admins define (a short list) and staff put on cases; /find and /stats use them.
    Tags name groups of cases ("journalist", "Crimean Solidarity"), never a person."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseTag(Base):
    """A tag on a case (who tagged it is in the audit log)."""

    __tablename__ = "case_tags"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseNameIndex(Base):
    """The keyed blind index of a case's detainee name alone (storage/search.py), so staff can
    find a case by name without any name being opened to search. It belongs to the data key
    that sealed the name: destroying that key (an erasure, a re-key) deletes the row with it,
    and the index job makes it again from what the new key holds (nothing, after an erasure)."""

    __tablename__ = "case_name_index"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    data_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_keys.id", ondelete="CASCADE"), index=True
    )
    name_index: Mapped[str | None] = mapped_column(String(64), index=True)
    """None: the case holds no name (erased, or never given)."""


class ExportGrant(Base):
    """A monitor's request for the anonymised export of public cases, and an admin's answer."""

    __tablename__ = "export_grants"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default=MonitorStatus.PENDING)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
