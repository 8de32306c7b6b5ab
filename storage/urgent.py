"""The urgent path: "a search or detention is happening now".

A family answers at most four questions (where, what, by whom, a contact), each skippable, and
`file_urgent` creates the case at once, in ONE transaction: the case (status new, an
`urgent_cases` row beside it), its own data key, the sealed answers where every case keeps them
(the place in `case_personal`, the phone on the reporter's contact row), the CREATED event, the
alert to the staff on call (outbox, top priority) and an audit row. The detainee's name is not
asked: the case works without it, and the full report can be completed later from the same
answers (`urgent_draft_for`).

Then, each a transaction of its own with its event, outbox rows and audit row:
- `take`: the first staff member who presses "I'll take it" owns the case. One conditional
  UPDATE (`taken_by IS NULL`) decides, so two presses at once give exactly one owner, on SQLite
  and PostgreSQL alike; the family is told someone is on it, the others who got the alert are
  told who took it.
- `post_step`: the owner (or an admin) tells the family a step in plain words ("a lawyer is on
  the way"), picked from buttons; it reaches the family through the outbox, in their language,
  discreetly if they chose so.
- `escalate_due`: the job of `jobs.urgent_escalation` sends an alert nobody took within
  HOTLINE_URGENT_ESCALATION_MINUTES again, to those on call and to every admin (at most
  MAX_ROUNDS times, once per period).

Alerts carry the case code, what is happening and by whom, never the place, a name or the phone:
those are shown to the one who takes it, in their private chat, protected from forwarding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher, new_key
from storage.enums import (
    AuditOutcome,
    CaseStatus,
    Detainer,
    EventKind,
    OutboxKind,
    OutboxStatus,
    Region,
    Role,
    UrgentKind,
    UrgentStep,
    Visibility,
)
from storage.fields import Json
from storage.models import (
    Case,
    CaseContact,
    CaseEvent,
    CasePersonal,
    OutboxMessage,
    UrgentCase,
)
from storage.oncall import Duty, on_call_now
from storage.outbox import PRIORITY_CASE_ALERT, PRIORITY_STAFF, Outgoing, enqueue, event_key
from storage.recipients import family_of
from storage.reports import reports_in_last_day, unused_code
from storage.users import users_with_role

T_ALERT = "urgent.alert"
T_TAKEN = "urgent.taken"
T_STEP = "urgent.step"
PRIORITY_URGENT = PRIORITY_CASE_ALERT - 5
"""Before every other outbox row: case alerts (0), staff notices (10), broadcasts (100)."""
MAX_ROUNDS = 3
"""How many times an alert nobody took is sent again (once per escalation period)."""
POSTED_STEPS = tuple(step for step in UrgentStep if step != UrgentStep.TAKEN)
"""The steps staff pick from buttons; TAKEN is said by itself."""


class UrgentLimitReached(Exception):
    """The user filed `reports_per_day` reports (urgent ones included) in the last 24 hours."""


class UrgentNotFound(LookupError):
    """No urgent case has this code."""


@dataclass(frozen=True)
class UrgentAnswers:
    """What the family answered (every field may be skipped); already checked by the handler."""

    place: str | None = None
    what: str | None = None
    detained_by: str | None = None
    phone: str | None = None
    contact_here: bool = False


@dataclass(frozen=True)
class UrgentFiled:
    code: str
    case_id: int
    alerted: int
    """How many staff chats the alert was queued to."""
    nobody_on_call: bool
    """The alert went to the admins (or all staff) at once: nobody was on call."""


@dataclass(frozen=True)
class UrgentDetails:
    """An urgent case as the staff member handling it sees it."""

    code: str
    case_id: int
    what: str | None
    detained_by: str | None
    place: str | None
    phone: str | None
    contact_here: bool
    created_at: datetime
    taken_by: int | None
    taker: str | None
    steps: tuple[tuple[str, datetime], ...]
    """The steps told to the family so far, oldest first (TAKEN included)."""


@dataclass(frozen=True)
class Taken:
    """What a press of "I'll take it" did."""

    won: bool
    """This press made the staff member the owner."""
    already_yours: bool
    """They had taken it already (a second press): nothing new was queued."""
    taken_by: int | None
    taker: str | None
    details: UrgentDetails | None
    """The case opened for its owner; None for the others."""
    told: int = 0


@dataclass(frozen=True)
class Stepped:
    """What a step button did: `refused` is None (the family is told), or why not."""

    refused: str | None
    details: UrgentDetails


@dataclass(frozen=True)
class UrgentDraft:
    """The urgent answers, for the report form to start from (`urgent_draft_for`)."""

    code: str
    case_id: int
    place: str | None
    what: str | None
    detained_by: str | None
    phone: str | None
    contact_here: bool
    created_at: datetime
    detention_date: date | None = None

    def form_answers(self) -> dict[str, Json]:
        """The answers the report form can start from, under its field keys (a skipped one
        is left out, so the form asks it)."""
        day = self.detention_date
        found: dict[str, Json] = {
            "arrest_place": self.place,
            "detained_by": self.detained_by,
            "phone": self.phone,
            "detention_date": None if day is None else day.isoformat(),
        }
        return {key: value for key, value in found.items() if value is not None}


# -- helpers -------------------------------------------------------------------------------------


async def _alert_chats(
    session: AsyncSession, duty: Duty, *, now: datetime, with_admins: bool
) -> tuple[list[int], bool]:
    """Who an alert goes to: those on call (and every admin, `with_admins`); nobody on call ->
    the admins; no admin either -> every staff member. Returns (chats, nobody on call)."""
    on_call = await on_call_now(session, duty, now=now)
    chats = list(on_call)
    if with_admins or not chats:
        chats += sorted(duty.admin_ids)
    if not chats:
        chats += await users_with_role(session, Role.STAFF)
    return list(dict.fromkeys(chats)), not on_call


def alert_key(case_id: int, round_: int, chat: int) -> str:
    return f"urgent:{case_id}:{round_}:{chat}"


def _alerts(
    case: Case, urgent: UrgentCase, chats: Iterable[int], *, round_: int, duty: Duty, now: datetime
) -> list[Outgoing]:
    """No place, name or phone in an alert: see the module's docstring."""
    params = {
        "code": case.code,
        "what": urgent.what,
        "by": case.detained_by,
        "round": round_,
        "since": case.created_at.astimezone(duty.timezone).isoformat(),
        "waited": int((now - case.created_at).total_seconds() // 60),
    }
    return [
        Outgoing(
            chat,
            alert_key(case.id, round_, chat),
            T_ALERT,
            params,
            kind=OutboxKind.STAFF_ALERT,
            priority=PRIORITY_URGENT,
        )
        for chat in chats
    ]


async def _urgent_case(session: AsyncSession, code: str) -> tuple[Case, UrgentCase]:
    row = (
        await session.execute(
            select(Case, UrgentCase)
            .join(UrgentCase, UrgentCase.case_id == Case.id)
            .where(Case.code == code)
        )
    ).first()
    if row is None:
        raise UrgentNotFound
    return row[0], row[1]


# -- filing --------------------------------------------------------------------------------------


async def file_urgent(
    session: AsyncSession,
    cipher: FieldCipher,
    reporter_id: int,
    answers: UrgentAnswers,
    *,
    now: datetime,
    duty: Duty,
    reports_per_day: int,
    telegram_name: str | None = None,
    telegram_username: str | None = None,
) -> UrgentFiled:
    """Create the urgent case and queue its alert, all in the caller's transaction."""
    if await reports_in_last_day(session, reporter_id, now=now) >= reports_per_day:
        raise UrgentLimitReached
    if answers.what is not None:
        UrgentKind(answers.what)  # re-checked: they came from buttons
    if answers.detained_by is not None:
        Detainer(answers.detained_by)
    local_day = now.astimezone(duty.timezone).date()
    case = Case(
        code=await unused_code(session),
        status=CaseStatus.NEW,
        visibility=Visibility.STAFF_ONLY,
        region=Region.OTHER,  # not asked on the urgent path; the full report says it
        detained_by=answers.detained_by,
        detention_date=local_day if answers.what != UrgentKind.SEARCH else None,
        reporter_id=reporter_id,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    sealer = await new_key(session, cipher, case_id=case.id)
    session.add(CasePersonal(case_id=case.id, arrest_place=sealer.seal(answers.place)))
    session.add(
        CaseContact(
            case_id=case.id,
            user_id=reporter_id,
            is_reporter=True,
            approved=True,
            contact_phone=sealer.seal(answers.phone),
            telegram_name=sealer.seal(telegram_name),
            telegram_username=sealer.seal(telegram_username),
            created_at=now,
        )
    )
    urgent = UrgentCase(
        case_id=case.id,
        what=answers.what,
        contact_here=answers.contact_here,
        rounds=0,
        last_alert_at=now,
    )
    session.add(urgent)
    session.add(
        CaseEvent(
            case_id=case.id,
            kind=EventKind.CREATED,
            new_status=CaseStatus.NEW,
            actor_id=reporter_id,
            created_at=now,
        )
    )
    await session.flush()
    chats, nobody = await _alert_chats(session, duty, now=now, with_admins=False)
    queued = await enqueue(
        session, sealer, _alerts(case, urgent, chats, round_=0, duty=duty, now=now), now=now
    )
    audit.record(
        session,
        actor_id=reporter_id,
        action="urgent.file",
        case_code=case.code,
        detail=f"alerted {queued}" + (", nobody on call" if nobody else ""),
        at=now,
    )
    return UrgentFiled(case.code, case.id, queued, nobody)


# -- what staff see and do -----------------------------------------------------------------------


async def details(session: AsyncSession, cipher: FieldCipher, code: str) -> UrgentDetails:
    """The urgent case, opened, for the staff member handling it (raises UrgentNotFound)."""
    case, urgent = await _urgent_case(session, code)
    return await _details(session, cipher, case, urgent)


async def _details(
    session: AsyncSession, cipher: FieldCipher, case: Case, urgent: UrgentCase
) -> UrgentDetails:
    opener = await case_cipher(session, cipher, case.id)
    personal = await session.get(CasePersonal, case.id)
    phone = None
    if case.reporter_id is not None:
        sealed = await session.scalar(
            select(CaseContact.contact_phone).where(
                CaseContact.case_id == case.id, CaseContact.user_id == case.reporter_id
            )
        )
        phone = opener.open(sealed)
    steps = []
    for event in await session.scalars(
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.kind.in_((EventKind.URGENT_TAKEN, EventKind.URGENT_STEP)),
        )
        .order_by(CaseEvent.id)
    ):
        step = UrgentStep.TAKEN if event.kind == EventKind.URGENT_TAKEN else opener.open(event.body)
        if step:
            steps.append((str(step), event.created_at))
    return UrgentDetails(
        code=case.code,
        case_id=case.id,
        what=urgent.what,
        detained_by=case.detained_by,
        place=opener.open(personal.arrest_place) if personal is not None else None,
        phone=phone,
        contact_here=urgent.contact_here,
        created_at=case.created_at,
        taken_by=urgent.taken_by,
        taker=cipher.master.open(urgent.taker_name),
        steps=tuple(steps),
    )


async def _tell_family(
    session: AsyncSession,
    sealer: FieldCipher,
    case: Case,
    event: CaseEvent,
    step: UrgentStep,
    *,
    now: datetime,
) -> int:
    await session.flush()
    params = {"code": case.code, "step": str(step)}
    return await enqueue(
        session,
        sealer,
        [
            Outgoing(chat, event_key(event.id, chat), T_STEP, params, event_id=event.id)
            for chat in await family_of(session, case)
        ],
        now=now,
    )


async def _withdraw_alerts(session: AsyncSession, case_id: int, taker: int) -> list[int]:
    """The case is taken: alerts not sent yet are cancelled; returns the other chats that got
    (or are getting) one, who are then told who took it."""
    mine = OutboxMessage.dedupe_key.like(f"urgent:{case_id}:%")
    await session.execute(
        update(OutboxMessage)
        .where(mine, OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.chat_id != taker)
        .values(status=OutboxStatus.CANCELLED, last_error="taken")
        .execution_options(synchronize_session=False)
    )
    alerted = await session.scalars(
        select(OutboxMessage.chat_id)
        .where(
            mine,
            OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.SENDING)),
            OutboxMessage.chat_id != taker,
        )
        .distinct()
    )
    return sorted(set(alerted))


async def take(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    staff_id: int,
    *,
    now: datetime,
    taker_name: str | None = None,
) -> Taken:
    """ "I'll take it": the first press owns the case; the family and the other alerted staff
    are told. A later press by someone else is refused (and audited), naming who took it."""
    case, urgent = await _urgent_case(session, code)
    result = await session.execute(
        update(UrgentCase)
        .where(UrgentCase.case_id == case.id, UrgentCase.taken_by.is_(None))
        .values(taken_by=staff_id, taken_at=now, taker_name=cipher.master.seal(taker_name))
        .execution_options(synchronize_session=False)
    )
    await session.refresh(urgent)
    taker = cipher.master.open(urgent.taker_name)
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        if urgent.taken_by == staff_id:
            details = await _details(session, cipher, case, urgent)
            return Taken(False, True, staff_id, taker, details)
        audit.record(
            session,
            actor_id=staff_id,
            action="urgent.take",
            outcome=AuditOutcome.REFUSED,
            case_code=case.code,
            detail="taken already",
            at=now,
        )
        return Taken(False, False, urgent.taken_by, taker, None)
    sealer = await case_cipher(session, cipher, case.id)
    event = CaseEvent(
        case_id=case.id, kind=EventKind.URGENT_TAKEN, actor_id=staff_id, created_at=now
    )
    session.add(event)
    case.updated_at = now
    told = await _tell_family(session, sealer, case, event, UrgentStep.TAKEN, now=now)
    others = await _withdraw_alerts(session, case.id, staff_id)
    told += await enqueue(
        session,
        sealer,
        [
            Outgoing(
                chat,
                f"urgtaken:{case.id}:{chat}",
                T_TAKEN,
                {"code": case.code, "taker": taker_name},
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
            )
            for chat in others
        ],
        now=now,
    )
    audit.record(session, actor_id=staff_id, action="urgent.take", case_code=case.code, at=now)
    details = await _details(session, cipher, case, urgent)
    return Taken(True, False, staff_id, taker, details, told)


async def post_step(
    session: AsyncSession,
    cipher: FieldCipher,
    code: str,
    staff_id: int,
    step: str,
    *,
    now: datetime,
    is_admin: bool = False,
) -> Stepped:
    """Tell the family a step. Only the one who took the case, or an admin, may: anyone else
    is refused ("taken", or "not_taken" before anyone took it), and the refusal audited."""
    case, urgent = await _urgent_case(session, code)
    refused = None
    if step not in POSTED_STEPS:
        refused = "bad_step"
    elif urgent.taken_by is None:
        refused = "not_taken"
    elif urgent.taken_by != staff_id and not is_admin:
        refused = "taken"
    if refused is not None:
        audit.record(
            session,
            actor_id=staff_id,
            action="urgent.step",
            outcome=AuditOutcome.REFUSED,
            case_code=case.code,
            detail=refused,
            at=now,
        )
        return Stepped(refused, await _details(session, cipher, case, urgent))
    chosen = UrgentStep(step)
    sealer = await case_cipher(session, cipher, case.id)
    event = CaseEvent(
        case_id=case.id,
        kind=EventKind.URGENT_STEP,
        body=sealer.seal(str(chosen)),
        actor_id=staff_id,
        created_at=now,
    )
    session.add(event)
    case.updated_at = now
    urgent.last_step = chosen
    urgent.last_step_at = now
    if chosen == UrgentStep.DONE:
        urgent.done_at = now
    await _tell_family(session, sealer, case, event, chosen, now=now)
    audit.record(
        session,
        actor_id=staff_id,
        action="urgent.step",
        case_code=case.code,
        detail=str(chosen),
        at=now,
    )
    return Stepped(None, await _details(session, cipher, case, urgent))


# -- escalation ----------------------------------------------------------------------------------


async def escalate_due(
    session: AsyncSession, cipher: FieldCipher, *, now: datetime, minutes: int, duty: Duty
) -> list[str]:
    """Send again, to those on call and every admin, each alert nobody took within `minutes` of
    its last sending; returns the codes. A case is sent again at most once per period and
    MAX_ROUNDS times in all; one taken meanwhile is left alone (the update checks again)."""
    due = (
        await session.execute(
            select(Case, UrgentCase)
            .join(UrgentCase, UrgentCase.case_id == Case.id)
            .where(
                UrgentCase.taken_by.is_(None),
                UrgentCase.done_at.is_(None),
                UrgentCase.rounds < MAX_ROUNDS,
                UrgentCase.last_alert_at <= now - timedelta(minutes=minutes),
            )
            .order_by(UrgentCase.last_alert_at)
        )
    ).all()
    escalated = []
    for case, urgent in due:
        round_ = urgent.rounds + 1
        result = await session.execute(
            update(UrgentCase)
            .where(
                UrgentCase.case_id == case.id,
                UrgentCase.taken_by.is_(None),
                UrgentCase.rounds == urgent.rounds,
            )
            .values(rounds=round_, last_alert_at=now)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            continue
        await session.refresh(urgent)
        sealer = await case_cipher(session, cipher, case.id)
        chats, _ = await _alert_chats(session, duty, now=now, with_admins=True)
        await enqueue(
            session,
            sealer,
            _alerts(case, urgent, chats, round_=round_, duty=duty, now=now),
            now=now,
        )
        session.add(CaseEvent(case_id=case.id, kind=EventKind.URGENT_ESCALATED, created_at=now))
        audit.record(
            session,
            actor_id=0,
            action="urgent.escalate",
            case_code=case.code,
            detail=f"round {round_}, {len(chats)} chats",
            at=now,
        )
        escalated.append(case.code)
    return escalated


# -- the kept draft: the full report starts from these answers ----------------------------------


async def urgent_draft_for(
    session: AsyncSession, cipher: FieldCipher, user_id: int
) -> UrgentDraft | None:
    """The user's latest urgent case whose full report was not filed yet, opened; None if none.

    The report form calls this when it starts, fills its draft from it (place, detained_by,
    phone; `what` tells whether a detention date of that day fits), and, once filed, calls
    `mark_draft_used`."""
    row = (
        await session.execute(
            select(Case, UrgentCase)
            .join(UrgentCase, UrgentCase.case_id == Case.id)
            .where(Case.reporter_id == user_id, UrgentCase.report_code.is_(None))
            .order_by(Case.created_at.desc(), Case.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    case, urgent = row
    found = await _details(session, cipher, case, urgent)
    return UrgentDraft(
        code=case.code,
        case_id=case.id,
        place=found.place,
        what=urgent.what,
        detained_by=case.detained_by,
        phone=found.phone,
        contact_here=urgent.contact_here,
        created_at=case.created_at,
        detention_date=case.detention_date,
    )


async def mark_draft_used(
    session: AsyncSession, case_id: int, report_code: str, *, user_id: int, now: datetime
) -> None:
    """The full report `report_code` was filed from the urgent case's answers (it may be the
    urgent case itself, completed). An earlier-case hint tells staff the two belong together."""
    urgent = await session.get(UrgentCase, case_id)
    case = await session.get(Case, case_id)
    if urgent is None or case is None or case.reporter_id != user_id:
        return
    urgent.report_code = report_code
    if report_code != case.code:
        await session.execute(
            update(Case)
            .where(Case.code == report_code, Case.duplicate_of.is_(None))
            .values(duplicate_of=case.code)
        )
    audit.record(session, actor_id=user_id, action="urgent.report", case_code=case.code, at=now)
