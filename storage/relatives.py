"""Relatives waiting to be linked to a case, and what staff compare before linking them.

The adversary knows detainees' names and birth dates and can pose as a relative. So a report about
a person already on file is filed as its own case (`storage.reports`), with a staff-only hint
(`Case.duplicate_of`); whoever filed it is told exactly what a first reporter is told. Such a
person is a *candidate* relative of the earlier case:

- while their own (open) case is hinted as its duplicate, or once staff merged their case into it;
- or through an unapproved contact row, which older versions wrote when a report joined a case.

A candidate sees nothing of the earlier case (no code, no name, no update) until a staff member has
compared the two reports side by side, said how the person was verified, and approved them
(`storage.cases.link_contact`). A candidate who used /forget has no contact row and no reported
case any more, so a stale button finds nobody to link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import fields
from storage.crypto import FieldCipher
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, EventKind
from storage.models import Case, CaseContact, CaseEvent, CasePersonal

VERIFICATION_METHODS = ("call", "documents", "known", "other")
"""How staff verified a relative before linking them: a call to the reporter of the case,
documents, a person known to the hotline, or something else (the audit row keeps which)."""

COMPARED_FIELDS = tuple(f.stored.column for f in fields.REGISTRY.compared() if f.stored)
"""The columns of the facts staff compare between two reports (`storage.fields`)."""
_PERSONAL = fields.REGISTRY.columns(fields.PERSONAL)


@dataclass(frozen=True)
class Candidate:
    """Someone who may be family of a case, waiting for staff to approve them."""

    user_id: int
    contact_id: int  # the row their details come from: on their own case, or a legacy row here
    via_case_id: int | None  # their own case (merged into this one, or hinted as its duplicate)
    via_code: str | None


@dataclass(frozen=True)
class ReportFacts:
    """One report, opened, as staff compare it with another."""

    code: str
    status: str
    fields: dict[str, str | None]


@dataclass(frozen=True)
class Comparison:
    """The original case beside the candidate's own report, and who the candidate is."""

    code: str
    user_id: int
    relation: str | None
    phone: str | None
    telegram_name: str | None
    telegram_username: str | None
    original: ReportFacts
    theirs: ReportFacts | None  # None for an older joined report (see `earlier_summary`)
    earlier_summary: str | None  # what an older joined report said, as one text

    def differing(self) -> list[str]:
        """The compared fields whose values differ (a field blank on both sides matches)."""
        if self.theirs is None:
            return []
        return [
            name
            for name in COMPARED_FIELDS
            if _same(self.original.fields.get(name), self.theirs.fields.get(name)) is False
        ]


def _same(left: str | None, right: str | None) -> bool | None:
    """True when equal (ignoring case and spacing), False when different, None when one side
    is blank: nothing to compare."""
    if not left or not right:
        return None if (left or right) else True
    return " ".join(left.casefold().split()) == " ".join(right.casefold().split())


def field_match(comparison: Comparison, name: str) -> bool | None:
    if comparison.theirs is None:
        return None
    return _same(comparison.original.fields.get(name), comparison.theirs.fields.get(name))


def _is_family() -> ColumnElement[bool]:
    return or_(CaseContact.is_reporter.is_(True), CaseContact.approved.is_(True))


async def candidates(session: AsyncSession, case: Case) -> list[Candidate]:
    """Everyone waiting to be approved as family of `case`, oldest first, once each."""
    family = set(
        await session.scalars(
            select(CaseContact.user_id).where(CaseContact.case_id == case.id, _is_family())
        )
    )
    found: dict[int, Candidate] = {}
    legacy = await session.execute(
        select(CaseContact.id, CaseContact.user_id)
        .where(
            CaseContact.case_id == case.id,
            CaseContact.is_reporter.is_(False),
            CaseContact.approved.is_(False),
        )
        .order_by(CaseContact.id)
    )
    for contact_id, user_id in legacy:
        found.setdefault(user_id, Candidate(user_id, contact_id, None, None))
    sources = or_(
        Case.merged_into_id == case.id,
        (Case.duplicate_of == case.code)
        & Case.merged_into_id.is_(None)
        & (Case.status != CaseStatus.CLOSED),
    )
    rows = await session.execute(
        select(CaseContact.id, CaseContact.user_id, Case.id, Case.code)
        .join(Case, Case.id == CaseContact.case_id)
        .where(sources, Case.id != case.id, _is_family())
        .order_by(Case.created_at, Case.id, CaseContact.id)
    )
    for contact_id, user_id, via_id, via_code in rows:
        if user_id in family:
            continue
        previous = found.get(user_id)
        if previous is None or previous.via_case_id is None:
            # their own report is the better source of their details than an older joined row
            found[user_id] = Candidate(user_id, contact_id, via_id, via_code)
    return [found[user_id] for user_id in sorted(found, key=lambda u: found[u].contact_id)]


async def candidate(session: AsyncSession, case: Case, user_id: int) -> Candidate | None:
    for waiting in await candidates(session, case):
        if waiting.user_id == user_id:
            return waiting
    return None


async def _facts(session: AsyncSession, cipher: FieldCipher, case: Case) -> ReportFacts:
    cipher = await case_cipher(session, cipher, case.id)
    personal = await session.get(CasePersonal, case.id)
    facts: dict[str, str | None] = {
        name: cipher.open(getattr(personal, name)) if personal is not None else None
        for name in _PERSONAL
    }
    for name in fields.REGISTRY.columns(fields.CASES):
        value = getattr(case, name)
        facts[name] = value.isoformat() if isinstance(value, date) else value
    return ReportFacts(case.code, case.status, facts)


async def comparison(
    session: AsyncSession, cipher: FieldCipher, code: str, user_id: int
) -> Comparison | None:
    """What staff see before approving `user_id` as family of case `code`; None when there is
    no such case or the user is not (or no longer) waiting for approval on it."""
    case = await session.scalar(select(Case).where(Case.code == code))
    if case is None:
        return None
    waiting = await candidate(session, case, user_id)
    if waiting is None:
        return None
    contact = await session.get(CaseContact, waiting.contact_id)
    if contact is None:
        return None
    theirs: ReportFacts | None = None
    earlier: str | None = None
    if waiting.via_case_id is not None:
        own = await session.get(Case, waiting.via_case_id)
        if own is not None:
            theirs = await _facts(session, cipher, own)
    else:
        body = await session.scalar(
            select(CaseEvent.body)
            .where(
                CaseEvent.case_id == case.id,
                CaseEvent.kind == EventKind.CONTACT_LINKED,
                CaseEvent.actor_id == user_id,
            )
            .order_by(CaseEvent.id.desc())
            .limit(1)
        )
        earlier = (await case_cipher(session, cipher, case.id)).open(body)
    keyed = await case_cipher(session, cipher, contact.case_id)
    return Comparison(
        code=case.code,
        user_id=user_id,
        relation=contact.relation,
        phone=keyed.open(contact.contact_phone),
        telegram_name=keyed.open(contact.telegram_name),
        telegram_username=keyed.open(contact.telegram_username),
        original=await _facts(session, cipher, case),
        theirs=theirs,
        earlier_summary=earlier,
    )
