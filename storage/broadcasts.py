"""Staff announcements to an audience: the Broadcast row, its recipients, and its outbox rows.

A broadcast is queued in ONE transaction: the Broadcast row and one outbox row per recipient
(kind broadcast, priority 100 so case alerts always go first, dedupe key ``broadcast:<id>:<chat>``
so a retry of the transaction can never queue a person twice). The delivery job sends the rows;
nothing here talks to Telegram.

Counts are never kept in counters that a crash could leave wrong: delivered / blocked / failed /
pending are counted from the outbox rows themselves, so progress is right after a restart.

Pause and resume move the broadcast's pending rows' `not_before` far into the future and back
(the delivery job needs no knowledge of broadcasts); rows already in flight when staff pause
still finish. Cancel marks every unsent row cancelled.

Audiences (who is a recipient; blocked and forgotten users never are):
- everyone: every user of the bot;
- families: users who are a contact of at least one case (they reported or were linked);
- monitors: approved monitors;
- staff: stored staff and the admins named in settings who have talked to the bot;
- language: users whose language is that one (users with no stored language count as the
  hotline's default language, which is what they read);
- region: BOTH monitors who follow that region (a region Subscription) AND the contacts of cases
  in that region: an announcement about a region concerns its families as much as its watchers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import FieldCipher
from storage.enums import (
    BroadcastStatus,
    MonitorStatus,
    OutboxKind,
    OutboxStatus,
    Region,
    Role,
    SubscriptionScope,
)
from storage.models import Broadcast, Case, CaseContact, OutboxMessage, Subscription, User, utcnow
from storage.outbox import PRIORITY_BROADCAST, Outgoing, enqueue, wake_delivery_after_commit

TEMPLATE = "broadcasts.announcement"
RECIPIENT_BATCH = 1000
PAUSED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
"""`not_before` of a paused broadcast's rows: never due until resumed."""
BLOCKED_REASON = "Forbidden"
LANGUAGES = ("uk", "crh", "en", "ru")


class Audience(StrEnum):
    EVERYONE = "everyone"
    FAMILIES = "families"
    MONITORS = "monitors"
    STAFF = "staff"
    LANGUAGE = "language"
    REGION = "region"


NEEDS_ARGUMENT = frozenset({Audience.LANGUAGE, Audience.REGION})


class BadAudience(ValueError):
    """An unknown audience, or a language/region audience without a valid argument."""


class BroadcastNotFound(LookupError):
    pass


class BadBroadcastState(ValueError):
    """Pause/resume/cancel asked of a broadcast in a state that does not allow it."""


@dataclass(frozen=True)
class Counts:
    """Where a broadcast's rows are, counted from the outbox."""

    total: int
    delivered: int
    blocked: int
    failed: int
    cancelled: int
    pending: int

    @property
    def done(self) -> int:
        """Rows that reached an end (sent, blocked, failed, cancelled)."""
        return self.total - self.pending


@dataclass(frozen=True)
class BroadcastView:
    """One broadcast as staff see it in /broadcasts and in the progress message."""

    id: int
    author_id: int
    audience: str
    audience_arg: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None
    progress_chat_id: int | None
    progress_message_id: int | None
    counts: Counts
    author_language: str | None = None


def check_audience(audience: str, argument: str | None) -> tuple[Audience, str | None]:
    """The audience and its argument, validated (callback data can be forged)."""
    try:
        kind = Audience(audience)
    except ValueError:
        raise BadAudience(audience) from None
    if kind not in NEEDS_ARGUMENT:
        return kind, None
    if kind == Audience.LANGUAGE and argument in LANGUAGES:
        return kind, argument
    if kind == Audience.REGION and argument in {region.value for region in Region}:
        return kind, argument
    raise BadAudience(f"{audience}:{argument}")


def _reachable() -> Select[int]:
    return select(User.id).where(User.blocked.is_(False), User.forgotten_at.is_(None))


async def recipients(
    session: AsyncSession,
    audience: str,
    argument: str | None = None,
    *,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
) -> list[int]:
    """User ids of the audience, sorted, each once; blocked and forgotten users excluded."""
    kind, argument = check_audience(audience, argument)
    query = _reachable()
    if kind == Audience.FAMILIES:
        query = query.where(User.id.in_(select(CaseContact.user_id)))
    elif kind == Audience.MONITORS:
        query = query.where(
            (User.monitor_status == MonitorStatus.APPROVED) | (User.role == Role.MONITOR)
        )
    elif kind == Audience.STAFF:
        query = query.where((User.role == Role.STAFF) | User.id.in_(list(admin_ids)))
    elif kind == Audience.LANGUAGE:
        if argument == default_language:
            query = query.where((User.language == argument) | User.language.is_(None))
        else:
            query = query.where(User.language == argument)
    elif kind == Audience.REGION:
        followers = select(Subscription.user_id).where(
            Subscription.scope == SubscriptionScope.REGION, Subscription.region == argument
        )
        families = (
            select(CaseContact.user_id)
            .join(Case, Case.id == CaseContact.case_id)
            .where(Case.region == argument)
        )
        query = query.where(User.id.in_(followers) | User.id.in_(families))
    return list(await session.scalars(query.order_by(User.id)))


async def audience_size(
    session: AsyncSession,
    audience: str,
    argument: str | None = None,
    *,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
) -> int:
    found = await recipients(
        session, audience, argument, admin_ids=admin_ids, default_language=default_language
    )
    return len(found)


def broadcast_key(broadcast_id: int, chat_id: int) -> str:
    return f"broadcast:{broadcast_id}:{chat_id}"


def announcement_params(broadcast: Broadcast, text: str) -> dict[str, object]:
    return {"id": broadcast.id, "text": text, "photo": broadcast.photo_file_id}


async def queue_broadcast(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    author_id: int,
    audience: str,
    audience_arg: str | None,
    text: str,
    photo_file_id: str | None = None,
    progress_chat_id: int | None = None,
    progress_message_id: int | None = None,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
    now: datetime | None = None,
) -> BroadcastView:
    """Create the broadcast and queue one outbox row per recipient, in the caller's transaction,
    with an audit row. The text must already be validated (handlers.broadcast does it)."""
    when = now or utcnow()
    kind, argument = check_audience(audience, audience_arg)
    broadcast = Broadcast(
        author_id=author_id,
        audience=kind,
        audience_arg=argument,
        text=cipher.seal(text),
        photo_file_id=photo_file_id,
        status=BroadcastStatus.SENDING,
        progress_chat_id=progress_chat_id,
        progress_message_id=progress_message_id,
        created_at=when,
    )
    session.add(broadcast)
    await session.flush()
    chats = await recipients(
        session, kind, argument, admin_ids=admin_ids, default_language=default_language
    )
    params = announcement_params(broadcast, text)
    queued = 0
    for start in range(0, len(chats), RECIPIENT_BATCH):
        queued += await enqueue(
            session,
            cipher,
            [
                Outgoing(
                    chat,
                    broadcast_key(broadcast.id, chat),
                    TEMPLATE,
                    params,
                    kind=OutboxKind.BROADCAST,
                    priority=PRIORITY_BROADCAST,
                    broadcast_id=broadcast.id,
                )
                for chat in chats[start : start + RECIPIENT_BATCH]
            ],
            now=when,
        )
    broadcast.total = queued
    if queued == 0:
        broadcast.status = BroadcastStatus.DONE
    audit.record(
        session,
        actor_id=author_id,
        action="broadcast.send",
        detail=f"broadcast {broadcast.id} to {kind}{':' + argument if argument else ''}: {queued}",
        at=when,
    )
    return await view(session, broadcast.id)


async def counts(session: AsyncSession, broadcast_id: int) -> Counts:
    rows = await session.execute(
        select(OutboxMessage.status, OutboxMessage.last_error, func.count())
        .where(OutboxMessage.broadcast_id == broadcast_id)
        .group_by(OutboxMessage.status, OutboxMessage.last_error)
    )
    found = {"sent": 0, "blocked": 0, "dead": 0, "cancelled": 0, "open": 0}
    for status, error, number in rows:
        if status == OutboxStatus.SENT:
            found["sent"] += number
        elif status == OutboxStatus.DEAD:
            found["blocked" if error == BLOCKED_REASON else "dead"] += number
        elif status == OutboxStatus.CANCELLED:
            found["cancelled"] += number
        else:
            found["open"] += number
    return Counts(
        total=sum(found.values()),
        delivered=found["sent"],
        blocked=found["blocked"],
        failed=found["dead"],
        cancelled=found["cancelled"],
        pending=found["open"],
    )


def _view(broadcast: Broadcast, numbers: Counts, language: str | None = None) -> BroadcastView:
    return BroadcastView(
        id=broadcast.id,
        author_id=broadcast.author_id,
        audience=broadcast.audience,
        audience_arg=broadcast.audience_arg,
        status=broadcast.status,
        created_at=broadcast.created_at,
        finished_at=broadcast.finished_at,
        progress_chat_id=broadcast.progress_chat_id,
        progress_message_id=broadcast.progress_message_id,
        counts=numbers,
        author_language=language,
    )


async def _get(session: AsyncSession, broadcast_id: int) -> Broadcast:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(str(broadcast_id))
    return broadcast


async def view(session: AsyncSession, broadcast_id: int) -> BroadcastView:
    broadcast = await _get(session, broadcast_id)
    language = await session.scalar(select(User.language).where(User.id == broadcast.author_id))
    return _view(broadcast, await counts(session, broadcast_id), language)


async def recent(session: AsyncSession, limit: int = 5) -> list[BroadcastView]:
    """The latest broadcasts, newest first, with their counts (for /broadcasts)."""
    found = await session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
    return [_view(item, await counts(session, item.id)) for item in found]


async def unfinished(session: AsyncSession) -> list[BroadcastView]:
    """Broadcasts whose progress message has not yet shown its final summary."""
    found = await session.execute(
        select(Broadcast, User.language)
        .outerjoin(User, User.id == Broadcast.author_id)
        .where(
            Broadcast.status != BroadcastStatus.DRAFT,
            Broadcast.finished_at.is_(None),
            Broadcast.progress_message_id.is_not(None),
        )
        .order_by(Broadcast.id)
    )
    return [_view(item, await counts(session, item.id), language) for item, language in found]


async def recent_rate(session: AsyncSession, broadcast_id: int, *, since: datetime) -> float:
    """Messages a second delivered since `since` (0.0 when none): for the time-left estimate."""
    row = (
        await session.execute(
            select(
                func.count(), func.min(OutboxMessage.sent_at), func.max(OutboxMessage.sent_at)
            ).where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status == OutboxStatus.SENT,
                OutboxMessage.sent_at >= since,
            )
        )
    ).one()
    number, first, last = row
    if number < 2 or first is None or last is None:
        return 0.0
    seconds = (last - first).total_seconds()
    return number / seconds if seconds > 0 else 0.0


async def mark_done_if_drained(
    session: AsyncSession, broadcast_id: int, *, now: datetime | None = None
) -> bool:
    """A sending broadcast with no open row left is done; True when it is (now or already)."""
    broadcast = await _get(session, broadcast_id)
    if broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
        return True
    if broadcast.status != BroadcastStatus.SENDING:
        return False
    if (await counts(session, broadcast_id)).pending:
        return False
    broadcast.status = BroadcastStatus.DONE
    return True


async def mark_summarised(
    session: AsyncSession, broadcast_id: int, *, now: datetime | None = None
) -> None:
    """The final summary is on the progress message: stop editing it."""
    broadcast = await _get(session, broadcast_id)
    broadcast.finished_at = now or utcnow()


async def _move_pending(session: AsyncSession, broadcast_id: int, not_before: datetime) -> int:
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.broadcast_id == broadcast_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(not_before=not_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def pause(
    session: AsyncSession, broadcast_id: int, actor_id: int, *, now: datetime | None = None
) -> BroadcastView:
    """Stop sending: pending rows are not due until resumed (rows in flight still finish)."""
    broadcast = await _get(session, broadcast_id)
    if broadcast.status != BroadcastStatus.SENDING:
        raise BadBroadcastState(broadcast.status)
    broadcast.status = BroadcastStatus.PAUSED
    moved = await _move_pending(session, broadcast_id, PAUSED_UNTIL)
    audit.record(
        session,
        actor_id=actor_id,
        action="broadcast.pause",
        detail=f"broadcast {broadcast_id}: {moved} held",
        at=now,
    )
    return await view(session, broadcast_id)


async def resume(
    session: AsyncSession, broadcast_id: int, actor_id: int, *, now: datetime | None = None
) -> BroadcastView:
    """Pending rows are due again now; the commit wakes the delivery job."""
    when = now or utcnow()
    broadcast = await _get(session, broadcast_id)
    if broadcast.status != BroadcastStatus.PAUSED:
        raise BadBroadcastState(broadcast.status)
    broadcast.status = BroadcastStatus.SENDING
    moved = await _move_pending(session, broadcast_id, when)
    wake_delivery_after_commit(session, moved)
    audit.record(
        session,
        actor_id=actor_id,
        action="broadcast.resume",
        detail=f"broadcast {broadcast_id}: {moved} due",
        at=when,
    )
    return await view(session, broadcast_id)


async def cancel(
    session: AsyncSession, broadcast_id: int, actor_id: int, *, now: datetime | None = None
) -> BroadcastView:
    """Every row not yet sent is cancelled (a row in flight may still arrive, and then counts
    as delivered: the delivery job marks it sent)."""
    broadcast = await _get(session, broadcast_id)
    if broadcast.status not in (BroadcastStatus.SENDING, BroadcastStatus.PAUSED):
        raise BadBroadcastState(broadcast.status)
    broadcast.status = BroadcastStatus.CANCELLED
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.broadcast_id == broadcast_id,
            OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
        )
        .values(status=OutboxStatus.CANCELLED, last_error="broadcast cancelled")
    )
    stopped = int(getattr(result, "rowcount", 0) or 0)
    audit.record(
        session,
        actor_id=actor_id,
        action="broadcast.cancel",
        detail=f"broadcast {broadcast_id}: {stopped} cancelled",
        at=now,
    )
    return await view(session, broadcast_id)
