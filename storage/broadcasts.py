"""Staff announcements to an audience: the Broadcast row, its recipients, and its outbox rows.

A broadcast is created in one transaction (`create_broadcast`: the Broadcast row, its texts, the
audit row) and its recipients are queued after it, a chunk per transaction (`queue_all`,
`QUEUE_CHUNK` recipients each, in user-key order): one outbox row per recipient (kind broadcast,
priority 100 so case alerts always go first, dedupe key ``broadcast:<id>:<chat>`` so no retry can
ever queue a person twice). Queuing 98,000 recipients in one transaction held SQLite's write lock
for 9 s, near the 10 s every other writer waits at most; a chunk holds it a fraction of a second.
The broadcast records the last recipient queued (`queued_through`) and whether any remain
(`queue_open`), so a process that dies between chunks is continued by the next start
(`jobs.broadcast_progress`), each recipient once. `queue_broadcast` does all of it in the
caller's one transaction, for small audiences and tests. The delivery job sends the rows;
nothing here talks to Telegram.

A broadcast has a Ukrainian text (required, `broadcasts.text`) and may have one per other
language (`broadcast_texts`), each sealed. Each recipient's row carries the one text they read
(`text_language`: the language they read the bot in if the broadcast has it, else Ukrainian),
chosen as the rows are queued: carrying every text in every row made a 3,000-recipient broadcast
in four languages write 4.7 times the payload bytes and take 2.4 times as long to queue. Rows of
one text share one payload, sealed once (`outbox.enqueue`). Someone who changes language while
the broadcast is under way still gets the text chosen at queuing.

Counts are never kept in counters that a crash could leave wrong: delivered / blocked / failed /
pending are counted from the outbox rows themselves, so progress is right after a restart. They
are counted from the index on (broadcast_id, status, sent_at) alone, so the progress job's cost
every few seconds is the broadcast's own rows, however long the outbox's history.

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

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import func, select, update
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
from storage.models import (
    Broadcast,
    BroadcastText,
    Case,
    CaseContact,
    OutboxMessage,
    Subscription,
    User,
    utcnow,
)
from storage.outbox import PRIORITY_BROADCAST, Outgoing, enqueue, wake_delivery_after_commit

TEMPLATE = "broadcasts.announcement"
RECIPIENT_BATCH = 1000
QUEUE_CHUNK = 2000
"""Recipients queued per transaction by `queue_all`."""
PAUSED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
"""`not_before` of a paused broadcast's rows: never due until resumed."""
BLOCKED_REASON = "Forbidden"
LANGUAGES = ("uk", "crh", "en", "ru")
REQUIRED_LANGUAGE = "uk"
"""Every broadcast has a Ukrainian text: whoever has no text in their language reads it."""
OPTIONAL_LANGUAGES = tuple(code for code in LANGUAGES if code != REQUIRED_LANGUAGE)


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


class BadTexts(ValueError):
    """No Ukrainian text, an empty text, or a language the bot does not speak."""


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
    languages: tuple[str, ...] = (REQUIRED_LANGUAGE,)
    """The languages it has a text in, Ukrainian first."""
    by_language: dict[str, Counts] = field(default_factory=dict)
    """Counts per text (which text each recipient reads), when it has more than one."""


def effective_language(user_language: str | None, default_language: str) -> str:
    """The language a user reads the bot in: their own, or the hotline's default for none or an
    unknown code (what `bot.i18n.I18n.get` gives them)."""
    return user_language if user_language in LANGUAGES else default_language


def text_language(
    user_language: str | None, available: Iterable[str], default_language: str
) -> str:
    """Which of a broadcast's texts a user reads: the language they read the bot in (their own,
    or the hotline's default for none or an unknown code) if the broadcast has it, else
    Ukrainian."""
    language = effective_language(user_language, default_language)
    return language if language in set(available) else REQUIRED_LANGUAGE


def check_texts(texts: Mapping[str, str]) -> dict[str, str]:
    """The texts in language order, Ukrainian first; refuses what a broadcast cannot carry."""
    if not (texts.get(REQUIRED_LANGUAGE) or "").strip():
        raise BadTexts("a broadcast needs its Ukrainian text")
    unknown = set(texts) - set(LANGUAGES)
    if unknown:
        raise BadTexts(f"unknown languages: {sorted(unknown)}")
    if any(not text.strip() for text in texts.values()):
        raise BadTexts("an empty text")
    return {code: texts[code] for code in LANGUAGES if code in texts}


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


async def recipients(
    session: AsyncSession,
    audience: str,
    argument: str | None = None,
    *,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
) -> list[int]:
    """User ids of the audience, sorted, each once; blocked and forgotten users excluded."""
    found = await _recipients_with_language(
        session, audience, argument, admin_ids=admin_ids, default_language=default_language
    )
    return [user_id for user_id, _ in found]


async def _recipients_with_language(
    session: AsyncSession,
    audience: str,
    argument: str | None,
    *,
    admin_ids: Iterable[int],
    default_language: str,
    after: int | None = None,
    limit: int | None = None,
) -> list[tuple[int, str | None]]:
    """The audience in user-key order; with `after` and `limit`, the next `limit` of them."""
    kind, argument = check_audience(audience, argument)
    query = select(User.id, User.language).where(
        User.blocked.is_(False), User.forgotten_at.is_(None)
    )
    if after is not None:
        query = query.where(User.id > after)
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
    rows = await session.execute(query.order_by(User.id).limit(limit))
    return [(user_id, language) for user_id, language in rows]


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


async def audience_by_language(
    session: AsyncSession,
    audience: str,
    argument: str | None,
    languages: Iterable[str],
    *,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
) -> dict[str, int]:
    """How many of the audience would read each of these texts (for the preview), in order."""
    available = [code for code in LANGUAGES if code in set(languages)]
    sizes = dict.fromkeys(available, 0)
    found = await _recipients_with_language(
        session, audience, argument, admin_ids=admin_ids, default_language=default_language
    )
    for _, language in found:
        sizes[text_language(language, available, default_language)] += 1
    return sizes


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
    translations: Mapping[str, str] | None = None,
    photo_file_id: str | None = None,
    progress_chat_id: int | None = None,
    progress_message_id: int | None = None,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
    now: datetime | None = None,
) -> BroadcastView:
    """Create the broadcast and queue every recipient's row in the caller's ONE transaction
    (a small audience, or a test); a large one is `create_broadcast` then `queue_all`."""
    broadcast_id = await create_broadcast(
        session,
        cipher,
        author_id=author_id,
        audience=audience,
        audience_arg=audience_arg,
        text=text,
        translations=translations,
        photo_file_id=photo_file_id,
        progress_chat_id=progress_chat_id,
        progress_message_id=progress_message_id,
        now=now,
    )
    while (
        await queue_chunk(
            session,
            cipher,
            broadcast_id,
            limit=RECIPIENT_BATCH,
            admin_ids=admin_ids,
            default_language=default_language,
            now=now,
        )
    ).more:
        pass
    return await view(session, broadcast_id)


async def create_broadcast(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    author_id: int,
    audience: str,
    audience_arg: str | None,
    text: str,
    translations: Mapping[str, str] | None = None,
    photo_file_id: str | None = None,
    progress_chat_id: int | None = None,
    progress_message_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """The broadcast, its texts and the audit row, in the caller's transaction, with every
    recipient still to queue (`queue_chunk`). `text` is the Ukrainian text, `translations` the
    others by language code; each is sealed. Texts must already be valid Telegram HTML
    (handlers.broadcast checks)."""
    when = now or utcnow()
    kind, argument = check_audience(audience, audience_arg)
    texts = check_texts({**(translations or {}), REQUIRED_LANGUAGE: text})
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
        total=0,
        queue_open=True,
    )
    session.add(broadcast)
    await session.flush()
    session.add_all(
        BroadcastText(broadcast_id=broadcast.id, language=code, text=cipher.seal(value))
        for code, value in texts.items()
        if code != REQUIRED_LANGUAGE
    )
    audit.record(
        session,
        actor_id=author_id,
        action="broadcast.send",
        detail=(
            f"broadcast {broadcast.id} to {kind}{':' + argument if argument else ''}"
            f" ({','.join(texts)})"
        ),
        at=when,
    )
    return broadcast.id


@dataclass(frozen=True)
class Chunk:
    """What one `queue_chunk` did: rows added, and whether recipients remain."""

    added: int
    more: bool


async def queue_chunk(
    session: AsyncSession,
    cipher: FieldCipher,
    broadcast_id: int,
    *,
    limit: int = QUEUE_CHUNK,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
    now: datetime | None = None,
) -> Chunk:
    """Queue the next `limit` recipients after `queued_through`, in the caller's transaction,
    and move the mark past them. A paused broadcast's rows are queued paused; a cancelled one
    queues nothing more. The audience is read as each chunk is queued: someone who joins it
    meanwhile is queued if their key comes after the mark."""
    when = now or utcnow()
    broadcast = await _get(session, broadcast_id)
    if not broadcast.queue_open:
        return Chunk(0, more=False)
    if broadcast.status == BroadcastStatus.CANCELLED:
        broadcast.queue_open = False
        return Chunk(0, more=False)
    texts = await texts_of(session, cipher, broadcast_id)
    found = await _recipients_with_language(
        session,
        broadcast.audience,
        broadcast.audience_arg,
        admin_ids=admin_ids,
        default_language=default_language,
        after=broadcast.queued_through,
        limit=limit,
    )
    params = {code: announcement_params(broadcast, value) for code, value in texts.items()}
    due = PAUSED_UNTIL if broadcast.status == BroadcastStatus.PAUSED else when
    added = await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                broadcast_key(broadcast.id, chat),
                TEMPLATE,
                params[text_language(language, texts, default_language)],
                kind=OutboxKind.BROADCAST,
                priority=PRIORITY_BROADCAST,
                broadcast_id=broadcast.id,
                not_before=due,
            )
            for chat, language in found
        ],
        now=when,
    )
    broadcast.total += added
    if found:
        broadcast.queued_through = found[-1][0]
    more = len(found) >= limit
    if not more:
        broadcast.queue_open = False
        if broadcast.total == 0 and broadcast.status == BroadcastStatus.SENDING:
            broadcast.status = BroadcastStatus.DONE
    return Chunk(added, more)


async def queue_all(
    sessions: Callable[[], AsyncSession],
    cipher: FieldCipher,
    broadcast_id: int,
    *,
    chunk: int | None = None,
    admin_ids: Iterable[int] = (),
    default_language: str = "uk",
    clock: Callable[[], datetime] = utcnow,
    after_chunk: Callable[[Chunk], Awaitable[None]] | None = None,
) -> int:
    """Queue what remains of the broadcast's recipients, `chunk` (`QUEUE_CHUNK`) per
    transaction, each committed before the next; `after_chunk` is told of each (tests and
    benchmarks count them). Returns the rows added; safe to run again after a crash."""
    admins = list(admin_ids)
    added = 0
    while True:
        async with sessions() as session, session.begin():
            done = await queue_chunk(
                session,
                cipher,
                broadcast_id,
                limit=chunk or QUEUE_CHUNK,
                admin_ids=admins,
                default_language=default_language,
                now=clock(),
            )
        added += done.added
        if after_chunk is not None:
            await after_chunk(done)
        if not done.more:
            return added


async def open_queues(session: AsyncSession) -> list[int]:
    """Broadcasts with recipients still to queue (a process died between chunks), oldest first."""
    found = await session.scalars(
        select(Broadcast.id).where(Broadcast.queue_open.is_(True)).order_by(Broadcast.id)
    )
    return list(found)


async def counts(session: AsyncSession, broadcast_id: int) -> Counts:
    """The broadcast's rows by status, from `ix_outbox_broadcast_progress` alone (its cost is the
    broadcast's size, not the outbox's history); only dead rows are read, for their reason."""
    by_status = {
        status: number
        for status, number in await session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(OutboxMessage.status)
        )
    }
    rows: list[tuple[str, str | None, int]] = [
        (status, None, number)
        for status, number in by_status.items()
        if status != OutboxStatus.DEAD
    ]
    if by_status.get(OutboxStatus.DEAD):
        rows += [
            (OutboxStatus.DEAD, error, number)
            for error, number in await session.execute(
                select(OutboxMessage.last_error, func.count())
                .where(
                    OutboxMessage.broadcast_id == broadcast_id,
                    OutboxMessage.status == OutboxStatus.DEAD,
                )
                .group_by(OutboxMessage.last_error)
            )
        ]
    return _tally(rows)


async def counts_by_language(
    session: AsyncSession,
    broadcast_id: int,
    languages: Iterable[str],
    *,
    default_language: str = "uk",
) -> dict[str, Counts]:
    """Counts per text, in language order: each row is counted under the text its recipient
    reads by their language now (which chose the text as the row was queued, unless they changed
    it since: the row's own text is sealed)."""
    available = [code for code in LANGUAGES if code in set(languages)]
    rows = await session.execute(
        select(User.language, OutboxMessage.status, OutboxMessage.last_error, func.count())
        .select_from(OutboxMessage)
        .outerjoin(User, User.id == OutboxMessage.chat_id)
        .where(OutboxMessage.broadcast_id == broadcast_id)
        .group_by(User.language, OutboxMessage.status, OutboxMessage.last_error)
    )
    buckets: dict[str, list[tuple[str, str | None, int]]] = {code: [] for code in available}
    for language, status, error, number in rows:
        buckets[text_language(language, available, default_language)].append(
            (status, error, number)
        )
    return {code: _tally(found) for code, found in buckets.items()}


def _tally(rows: Iterable[tuple[str, str | None, int]]) -> Counts:
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


async def languages_of(session: AsyncSession, ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Each broadcast's languages, Ukrainian first, then in the bot's language order."""
    wanted = list(ids)
    found: dict[int, set[str]] = {broadcast_id: {REQUIRED_LANGUAGE} for broadcast_id in wanted}
    rows = await session.execute(
        select(BroadcastText.broadcast_id, BroadcastText.language).where(
            BroadcastText.broadcast_id.in_(wanted)
        )
    )
    for broadcast_id, language in rows:
        found[broadcast_id].add(language)
    return {key: tuple(c for c in LANGUAGES if c in codes) for key, codes in found.items()}


async def texts_of(session: AsyncSession, cipher: FieldCipher, broadcast_id: int) -> dict[str, str]:
    """A broadcast's texts, opened, Ukrainian first."""
    broadcast = await _get(session, broadcast_id)
    texts = {REQUIRED_LANGUAGE: cipher.open(broadcast.text) or ""}
    rows = await session.scalars(
        select(BroadcastText).where(BroadcastText.broadcast_id == broadcast_id)
    )
    texts.update({row.language: cipher.open(row.text) or "" for row in rows})
    return {code: texts[code] for code in LANGUAGES if code in texts}


def _view(
    broadcast: Broadcast,
    numbers: Counts,
    language: str | None = None,
    languages: tuple[str, ...] = (REQUIRED_LANGUAGE,),
) -> BroadcastView:
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
        languages=languages,
    )


async def _get(session: AsyncSession, broadcast_id: int) -> Broadcast:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(str(broadcast_id))
    return broadcast


async def view(session: AsyncSession, broadcast_id: int) -> BroadcastView:
    broadcast = await _get(session, broadcast_id)
    language = await session.scalar(select(User.language).where(User.id == broadcast.author_id))
    languages = (await languages_of(session, [broadcast_id]))[broadcast_id]
    return _view(broadcast, await counts(session, broadcast_id), language, languages)


async def recent(session: AsyncSession, limit: int = 5) -> list[BroadcastView]:
    """The latest broadcasts, newest first, with their counts (for /broadcasts)."""
    found = list(
        await session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
    )
    languages = await languages_of(session, [item.id for item in found])
    return [
        _view(item, await counts(session, item.id), languages=languages[item.id]) for item in found
    ]


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
    rows = list(found)
    languages = await languages_of(session, [item.id for item, _ in rows])
    return [
        _view(item, await counts(session, item.id), language, languages[item.id])
        for item, language in rows
    ]


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
    if broadcast.status != BroadcastStatus.SENDING or broadcast.queue_open:
        return False
    open_row = await session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.broadcast_id == broadcast_id,
            OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
        )
        .limit(1)
    )
    if open_row is not None:
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
    broadcast.queue_open = False  # recipients not queued yet never will be
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
