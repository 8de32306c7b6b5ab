"""A seized phone: discreet notifications, the family's PIN, and freezing an account.

The adversary may hold a relative's unlocked phone. Three defences live here:
- discreet mode (`users.discreet`, on by default): pushes carry no details; "Show" reveals the
  details of one outbox row, only to the chat it was sent to (`details_for`);
- a short PIN (`users.pin_hash`: a salted scrypt hash, itself sealed with the data key, so a
  stolen disk gives nothing to brute-force); five wrong PINs in a row freeze the account;
- freezing (`users.frozen_at`), by staff (/freeze, audited) or by the PIN: a frozen account gets
  no details and no updates, and staff hear when it writes (an outbox row to the staff desk).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import FieldCipher
from storage.data_keys import key_cipher
from storage.enums import AuditOutcome, OutboxKind, OutboxStatus
from storage.models import Case, CaseContact, OutboxMessage, User
from storage.outbox import PRIORITY_STAFF, Outgoing, enqueue, open_params
from storage.recipients import StaffContacts, staff_desk

PIN_MIN, PIN_MAX = 4, 8
MAX_PIN_FAILURES = 5
T_FROZEN_WROTE = "safety.frozen_user_wrote_staff"
T_FROZEN_BY_PIN = "safety.frozen_by_pin_staff"

# scrypt at n=2**14, r=8 (16 MiB, some 50 ms a try): slow for a guesser, quick for one person.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
_SCHEME = "scrypt1"


# -- the PIN -------------------------------------------------------------------------------------


def valid_pin(text: str) -> bool:
    """A PIN is 4 to 8 digits (ASCII: what every phone keyboard types)."""
    return PIN_MIN <= len(text) <= PIN_MAX and text.isascii() and text.isdigit()


def _scrypt(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        pin.encode("ascii"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_LEN,
        maxmem=64 * 1024 * 1024,
    )


def hash_pin(pin: str) -> str:
    """`scrypt1$<salt hex>$<hash hex>` with a fresh random salt (slow on purpose)."""
    salt = os.urandom(16)
    return f"{_SCHEME}${salt.hex()}${_scrypt(pin, salt).hex()}"


def pin_matches(stored: str, pin: str) -> bool:
    """Constant-time comparison of `pin` against a `hash_pin` result; False for anything odd."""
    try:
        scheme, salt, expected = stored.split("$")
        if scheme != _SCHEME or not valid_pin(pin):
            return False
        return hmac.compare_digest(_scrypt(pin, bytes.fromhex(salt)).hex(), expected)
    except ValueError:
        return False


async def set_pin(
    session: AsyncSession, cipher: FieldCipher, user_id: int, pin_hash: str | None
) -> None:
    """Store a `hash_pin` result (sealed), or remove the PIN with None."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(pin_hash=cipher.seal(pin_hash), pin_failures=0)
    )


@dataclass(frozen=True)
class PinCheck:
    ok: bool
    tries_left: int
    frozen_now: bool = False


async def check_pin(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    pin: str,
    *,
    now: datetime,
    staff: StaffContacts,
) -> PinCheck:
    """Check a PIN the user typed, in the caller's transaction. A right PIN resets the count; the
    fifth wrong one in a row freezes the account and alerts staff (audited, actor 0)."""
    user = await session.get(User, user_id)
    if user is None or user.pin_hash is None:
        return PinCheck(ok=True, tries_left=MAX_PIN_FAILURES)
    stored = cipher.open(user.pin_hash) or ""
    if await asyncio.to_thread(pin_matches, stored, pin):  # scrypt off the event loop
        user.pin_failures = 0
        return PinCheck(ok=True, tries_left=MAX_PIN_FAILURES)
    user.pin_failures = (user.pin_failures or 0) + 1
    if user.pin_failures < MAX_PIN_FAILURES or user.frozen_at is not None:
        return PinCheck(ok=False, tries_left=max(0, MAX_PIN_FAILURES - user.pin_failures))
    user.frozen_at = now
    audit.record(
        session,
        actor_id=0,
        action="user.freeze",
        target_user_id=user_id,
        detail=f"{MAX_PIN_FAILURES} wrong PINs",
        at=now,
    )
    params = {
        "user": user_id,
        "codes": await _codes_of(session, user_id),
        "count": MAX_PIN_FAILURES,
    }
    await _alert_desk(
        session,
        cipher,
        T_FROZEN_BY_PIN,
        f"pinfreeze:{user_id}:{now:%Y%m%d%H%M%S}",
        params,
        now=now,
        staff=staff,
    )
    return PinCheck(ok=False, tries_left=0, frozen_now=True)


# -- discreet mode -------------------------------------------------------------------------------


async def set_discreet(session: AsyncSession, user_id: int, discreet: bool) -> None:
    await session.execute(update(User).where(User.id == user_id).values(discreet=discreet))


@dataclass(frozen=True)
class Details:
    """What a discreet notification stood for: its template and parameters, opened."""

    template: str
    params: dict[str, Any]


async def details_for(
    session: AsyncSession,
    cipher: FieldCipher,
    row_id: int,
    chat_id: int,
    *,
    family_facing: frozenset[str],
) -> Details | None:
    """The details behind a "Show" button: only a family-facing row that was sent to this very
    chat. None when it is gone (retention, /forget), was someone else's, or is not one of them."""
    row = await session.get(OutboxMessage, row_id)
    if (
        row is None
        or row.chat_id != chat_id
        # SENDING too: the push is on the phone before its row is marked sent, and a Show
        # button exists only in a push that was delivered (to this very chat, checked above).
        or row.status not in (OutboxStatus.SENT, OutboxStatus.SENDING)
        or row.template not in family_facing
        or row.payload is None  # dropped when the case's details were erased
    ):
        return None
    keyed = await key_cipher(session, cipher, row.data_key_id)
    return Details(row.template, open_params(keyed, row.payload))


# -- freezing ------------------------------------------------------------------------------------


async def freeze(
    session: AsyncSession, user_id: int, *, actor_id: int, now: datetime, frozen: bool = True
) -> bool:
    """Freeze (or unfreeze) an account, audited; False (audited as refused) for an unknown id.
    Unfreezing also clears the count of wrong PINs."""
    action = "user.freeze" if frozen else "user.unfreeze"
    user = await session.get(User, user_id)
    if user is None:
        audit.record(
            session,
            actor_id=actor_id,
            action=action,
            target_user_id=user_id,
            outcome=AuditOutcome.REFUSED,
            detail="no such user",
            at=now,
        )
        return False
    if frozen:
        user.frozen_at = user.frozen_at or now
    else:
        user.frozen_at = None
        user.pin_failures = 0
    audit.record(session, actor_id=actor_id, action=action, target_user_id=user_id, at=now)
    return True


async def alert_frozen_wrote(
    session: AsyncSession,
    cipher: FieldCipher,
    user_id: int,
    *,
    now: datetime,
    staff: StaffContacts,
) -> int:
    """Tell the staff desk a frozen account wrote: at most once an hour per account (the outbox
    key carries the hour), so whoever holds the phone cannot flood the desk."""
    params = {"user": user_id, "codes": await _codes_of(session, user_id)}
    key = f"frozenwrote:{user_id}:{now:%Y%m%d%H}"
    return await _alert_desk(session, cipher, T_FROZEN_WROTE, key, params, now=now, staff=staff)


async def _codes_of(session: AsyncSession, user_id: int) -> list[str]:
    """The codes of the user's cases, so staff know whom to call (never the name)."""
    codes = await session.scalars(
        select(Case.code)
        .join(CaseContact, CaseContact.case_id == Case.id)
        .where(CaseContact.user_id == user_id)
        .order_by(Case.id)
        .limit(10)
    )
    return list(codes)


async def _alert_desk(
    session: AsyncSession,
    cipher: FieldCipher,
    template: str,
    key: str,
    params: dict[str, Any],
    *,
    now: datetime,
    staff: StaffContacts,
) -> int:
    return await enqueue(
        session,
        cipher,
        [
            Outgoing(
                chat,
                f"{key}:{chat}",
                template,
                params,
                kind=OutboxKind.STAFF_ALERT,
                priority=PRIORITY_STAFF,
            )
            for chat in staff_desk(staff)
        ],
        now=now,
    )
