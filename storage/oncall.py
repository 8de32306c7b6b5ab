"""The on-call roster: which staff members an urgent alert goes to right now.

A staff member is on call when they switched themselves on (`/oncall on`), or when a weekly shift
an admin set for them covers this moment and they did not switch off for it (`/oncall off`
during a shift means "not this shift": the schedule takes over again when it ends). Shifts are in
the hotline's time zone (HOTLINE_TIMEZONE), so "mon-fri 09-18" means office hours in Kyiv all
year, summer time included. Only members who still hold a staff role (or are admins) count: a
revoked member's switch and shifts fall silent with the role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.enums import Role
from storage.models import OnCall, OnCallShift, User

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = 0b1111111
MINUTES_IN_DAY = 24 * 60
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


class ShiftError(ValueError):
    """A shift could not be read; the message is a short English reason (for logs and tests)."""


class NotStaff(LookupError):
    """The user named for a shift holds no staff role."""


@dataclass(frozen=True)
class Duty:
    """What deciding "on call now" needs besides the tables: the admins (named in settings, so
    never stored as a role) and the hotline's time zone."""

    admin_ids: frozenset[int]
    timezone: tzinfo

    @classmethod
    def of(cls, admin_ids: Iterable[int], timezone: str) -> Duty:
        """From the settings: the admins' user keys and HOTLINE_TIMEZONE (an IANA name)."""
        return cls(frozenset(admin_ids), ZoneInfo(timezone))


@dataclass(frozen=True)
class Shift:
    days: int  # bit 0 Monday ... bit 6 Sunday: the days the shift STARTS on
    start_minute: int
    end_minute: int

    def end_if_covering(self, local: datetime) -> datetime | None:
        """The (local) moment this shift ends if it covers `local`, else None."""
        minute = local.hour * 60 + local.minute
        today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        weekday = local.weekday()
        if self.start_minute < self.end_minute:  # within one day
            if self.days >> weekday & 1 and self.start_minute <= minute < self.end_minute:
                return today + timedelta(minutes=self.end_minute)
            return None
        # overnight (or a whole day when start == end): from start today to end tomorrow
        if self.days >> weekday & 1 and minute >= self.start_minute:
            return today + timedelta(days=1, minutes=self.end_minute)
        if self.days >> ((weekday - 1) % 7) & 1 and minute < self.end_minute:
            return today + timedelta(minutes=self.end_minute)
        return None


@dataclass(frozen=True)
class MemberDuty:
    """One staff member's place in the roster, for /oncall."""

    user_id: int
    on_call: bool
    switched_on: bool
    off_until: datetime | None
    shifts: tuple[Shift, ...]


# -- reading a shift ------------------------------------------------------------------------------


def _day(token: str) -> int:
    try:
        return WEEKDAYS.index(token[:3].lower())
    except ValueError:
        raise ShiftError(f"unknown day {token[:12]!r}") from None


def parse_days(text: str) -> int:
    """`mon-fri`, `sat,sun`, `mon,wed-fri`, `daily` -> a bit mask of start days."""
    text = text.strip().lower()
    if text in ("daily", "all", "every", "mon-sun"):
        return EVERY_DAY
    mask = 0
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        start = _day(first)
        end = _day(last) if dash else start
        day = start
        while True:
            mask |= 1 << day
            if day == end:
                break
            day = (day + 1) % 7
    if not mask:
        raise ShiftError("no days")
    return mask


def _minute(text: str, *, end: bool) -> int:
    found = _TIME.match(text.strip())
    if found is None:
        raise ShiftError(f"unreadable time {text[:12]!r}")
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    if hour == 24 and minute == 0 and end:
        return MINUTES_IN_DAY
    if hour > 23 or minute > 59:
        raise ShiftError(f"no such time {text[:12]!r}")
    return hour * 60 + minute


def parse_hours(text: str) -> tuple[int, int]:
    """`09-18`, `9:30-17`, `22-06` (overnight), `00-24` (the whole day)."""
    first, dash, last = text.strip().partition("-")
    if not dash:
        raise ShiftError("hours must be a range like 09-18")
    start, end = _minute(first, end=False), _minute(last, end=True)
    if end == MINUTES_IN_DAY and start == 0:
        return 0, 0  # a whole day: start == end
    return start, end % MINUTES_IN_DAY


def parse_shift(days: str, hours: str) -> Shift:
    start, end = parse_hours(hours)
    return Shift(parse_days(days), start, end)


def describe_days(mask: int) -> str:
    """The mask back in the form admins type: `mon-fri`, `sat,sun`, `daily`."""
    if mask == EVERY_DAY:
        return "daily"
    runs: list[str] = []
    day = 0
    while day < 7:
        if mask >> day & 1:
            end = day
            while end + 1 < 7 and mask >> (end + 1) & 1:
                end += 1
            runs.append(WEEKDAYS[day] if end == day else f"{WEEKDAYS[day]}-{WEEKDAYS[end]}")
            day = end + 1
        else:
            day += 1
    return ",".join(runs)


def describe_hours(shift: Shift) -> str:
    def clock(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    if shift.start_minute == shift.end_minute == 0:
        return "00:00-24:00"
    return f"{clock(shift.start_minute)}-{clock(shift.end_minute)}"


# -- who is on call ------------------------------------------------------------------------------


def _is_staff(role: str, user_id: int, admin_ids: Iterable[int]) -> bool:
    return role == Role.STAFF or user_id in admin_ids


async def _members(session: AsyncSession, duty: Duty, now: datetime) -> list[MemberDuty]:
    switches = {
        row.user_id: row for row in await session.scalars(select(OnCall).order_by(OnCall.user_id))
    }
    shifts: dict[int, list[Shift]] = {}
    for row in await session.scalars(select(OnCallShift).order_by(OnCallShift.id)):
        shifts.setdefault(row.user_id, []).append(Shift(row.days, row.start_minute, row.end_minute))
    ids = sorted(set(switches) | set(shifts))
    if not ids:
        return []
    users = {
        user_id: role
        for user_id, role in await session.execute(
            select(User.id, User.role).where(
                User.id.in_(ids), User.blocked.is_(False), User.forgotten_at.is_(None)
            )
        )
    }
    local = now.astimezone(duty.timezone)
    members = []
    for user_id in ids:
        if user_id not in users or not _is_staff(users[user_id], user_id, duty.admin_ids):
            continue
        switch = switches.get(user_id)
        own = tuple(shifts.get(user_id, ()))
        off_until = switch.off_until if switch is not None else None
        in_shift = any(shift.end_if_covering(local) is not None for shift in own)
        switched_off = off_until is not None and now < off_until
        switched_on = switch is not None and switch.on_now
        members.append(
            MemberDuty(
                user_id,
                switched_on or (in_shift and not switched_off),
                switched_on,
                off_until if switched_off else None,
                own,
            )
        )
    return members


async def on_call_now(session: AsyncSession, duty: Duty, *, now: datetime) -> list[int]:
    """The user keys of the staff members on call at `now`."""
    return [member.user_id for member in await _members(session, duty, now) if member.on_call]


async def roster(session: AsyncSession, duty: Duty, *, now: datetime) -> list[MemberDuty]:
    """Every staff member with a switch or a shift, on call or not."""
    return await _members(session, duty, now)


async def member_duty(
    session: AsyncSession, duty: Duty, user_id: int, *, now: datetime
) -> MemberDuty:
    for member in await _members(session, duty, now):
        if member.user_id == user_id:
            return member
    return MemberDuty(user_id, False, False, None, ())


# -- changing it ---------------------------------------------------------------------------------


async def switch(
    session: AsyncSession, duty: Duty, user_id: int, on: bool, *, now: datetime
) -> MemberDuty:
    """`/oncall on` (until switched off) or `/oncall off` (and, during a shift, off until it
    ends). The user row exists: the member is talking to the bot."""
    row = await session.get(OnCall, user_id)
    if row is None:
        row = OnCall(user_id=user_id, on_now=False)
        session.add(row)
    row.on_now = on
    row.off_until = None
    row.updated_at = now
    if not on:
        local = now.astimezone(duty.timezone)
        shifts = await session.scalars(select(OnCallShift).where(OnCallShift.user_id == user_id))
        ends = [
            end
            for shift in shifts
            if (
                end := Shift(shift.days, shift.start_minute, shift.end_minute).end_if_covering(
                    local
                )
            )
            is not None
        ]
        if ends:
            row.off_until = max(ends).astimezone(UTC)
    await session.flush()
    audit.record(session, actor_id=user_id, action="oncall.on" if on else "oncall.off", at=now)
    return await member_duty(session, duty, user_id, now=now)


async def _ensure_staff_row(
    session: AsyncSession, duty: Duty, user_id: int, sealed_telegram_id: bytes | None
) -> None:
    user = await session.get(User, user_id)
    if user is None and user_id in duty.admin_ids:
        # An admin (named in settings) who has not written to the bot yet: the row their
        # shift refers to, with the sealed id to reach them, as a granted role makes it.
        session.add(User(id=user_id, telegram_id=sealed_telegram_id))
        await session.flush()
        return
    if user is None or not _is_staff(user.role, user_id, duty.admin_ids):
        raise NotStaff
    if user.telegram_id is None and sealed_telegram_id is not None:
        user.telegram_id = sealed_telegram_id


async def add_shift(
    session: AsyncSession,
    duty: Duty,
    *,
    actor_id: int,
    user_id: int,
    shift: Shift,
    now: datetime,
    sealed_telegram_id: bytes | None = None,
) -> Sequence[Shift]:
    """An admin adds a weekly shift for a staff member (raises `NotStaff` for anyone else);
    returns the member's shifts."""
    await _ensure_staff_row(session, duty, user_id, sealed_telegram_id)
    session.add(
        OnCallShift(
            user_id=user_id,
            days=shift.days,
            start_minute=shift.start_minute,
            end_minute=shift.end_minute,
            created_at=now,
        )
    )
    await session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="oncall.schedule",
        target_user_id=user_id,
        detail=f"{describe_days(shift.days)} {describe_hours(shift)}",
        at=now,
    )
    return (await member_duty(session, duty, user_id, now=now)).shifts


async def clear_shifts(session: AsyncSession, *, actor_id: int, user_id: int, now: datetime) -> int:
    """An admin removes every weekly shift of a member; returns how many there were."""
    result = await session.execute(delete(OnCallShift).where(OnCallShift.user_id == user_id))
    removed = int(getattr(result, "rowcount", 0) or 0)
    audit.record(
        session,
        actor_id=actor_id,
        action="oncall.unschedule",
        target_user_id=user_id,
        detail=f"{removed} shifts",
        at=now,
    )
    return removed
