"""Seed a database at the issue's scale: cases, family users, monitors, delivered outbox rows.

The cases are `benchmarks.find_stats_export.seed`'s (each with its own data key, a sealed name,
a record, a CREATED event, some status changes); on top of them this adds what the scale table
needs, in bulk inserts of a few thousand rows:

- `users` family members (user keys from the database's `UserKeys`, Telegram ids sealed), each
  the reporter of every `users`-th case, with a reporter contact row (what /status reads);
- `monitors` approved monitors with a daily digest due at the seed's `NOW`, following a mix of
  every public case, a region, a few cases, a group of co-defendants or a saved filter, and
  `events` public events (status changes, public notes sealed with the case's key) in the day
  before `NOW` for their digests to list;
- `delivered` sent outbox rows, `old_fraction` of them older than `RETENTION_DAYS`.

Other benchmarks call `seed(sessions, cipher, keys, cases=..., users=..., monitors=...,
delivered=...)` on a migrated database (`bot.app.open_services` gives all three); the CLI seeds
a SQLite file or a PostgreSQL URL and prints how long each part took:

    python -m benchmarks.seed_scale --url sqlite+aiosqlite:///scale.db [--cases 100000]
        [--users 50000] [--monitors 5000] [--delivered 1000000] [--events 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select, text, update

from benchmarks.find_stats_export import NOW
from benchmarks.find_stats_export import seed as seed_cases
from bot.app import open_services
from bot.settings import Settings
from storage.crypto import FieldCipher, generate_key
from storage.db import SessionFactory
from storage.enums import (
    AlertFilter,
    CaseStatus,
    EventKind,
    MonitorStatus,
    OutboxKind,
    OutboxStatus,
    Region,
    Role,
    SubscriptionScope,
)
from storage.identity import UserKeys
from storage.models import (
    Case,
    CaseContact,
    CaseEvent,
    CaseGroup,
    CaseRecord,
    DataKey,
    DigestSetting,
    OutboxMessage,
    Subscription,
    User,
)

BATCH = 5000
RETENTION_DAYS = 30
"""The outbox retention the seeded history is laid out around (the setting's default)."""
FIRST_TELEGRAM_ID = 10_000_000
GROUPS = 200
CASES_PER_GROUP = 5
CASES_FOLLOWED = 5
TIMEZONES = ("Europe/Kyiv", "Europe/Kyiv", "Europe/Kyiv", "Europe/Berlin", "Asia/Tbilisi")
LANGUAGES = ("uk", "uk", "crh", "en", "ru")


@dataclass(frozen=True)
class Seeded:
    """What was seeded, for the benchmarks to pick their subjects from."""

    now: datetime
    family: list[int]
    """User keys of the family members (each reporter of at least one case when cases >= users)."""
    monitors: list[int]
    delivered_old: int
    """Delivered rows older than `RETENTION_DAYS` at `now`: what retention removes."""


def _chunks(rows: list[dict[str, Any]], size: int = BATCH) -> list[list[dict[str, Any]]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


async def _insert(sessions: SessionFactory, model: Any, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        async with sessions() as session, session.begin():
            await session.execute(insert(model), chunk)


async def seed_users(
    sessions: SessionFactory, keys: UserKeys, count: int, *, first: int = FIRST_TELEGRAM_ID
) -> list[int]:
    """`count` family users (Telegram ids from `first`), Telegram ids sealed; their keys."""
    users = [
        {
            "id": keys.key(telegram_id),
            "telegram_id": keys.seal(telegram_id),
            "language": LANGUAGES[telegram_id % len(LANGUAGES)],
            "role": Role.FAMILY,
            "created_at": NOW - timedelta(days=400),
            "last_seen_at": NOW - timedelta(days=1),
        }
        for telegram_id in range(first, first + count)
    ]
    await _insert(sessions, User, users)
    return [row["id"] for row in users]


async def link_reporters(sessions: SessionFactory, family: list[int], cases: int) -> None:
    """Case i is reported by family[i % len(family)]: a reporter contact and `reporter_id`."""
    contacts = [
        {
            "case_id": case_id,
            "user_id": family[case_id % len(family)],
            "relation": "parent",
            "is_reporter": True,
            "approved": True,
            "created_at": NOW - timedelta(days=300),
        }
        for case_id in range(1, cases + 1)
    ]
    await _insert(sessions, CaseContact, contacts)
    reporter = (
        select(CaseContact.user_id)
        .where(CaseContact.case_id == Case.id, CaseContact.is_reporter.is_(True))
        .scalar_subquery()
    )
    async with sessions() as session, session.begin():
        await session.execute(update(Case).values(reporter_id=reporter))


async def seed_groups(sessions: SessionFactory, cipher: FieldCipher, cases: int) -> list[int]:
    """Groups of co-defendants: `CASES_PER_GROUP` consecutive cases each."""
    count = min(GROUPS, cases // CASES_PER_GROUP)
    groups = [
        {"id": n, "name": cipher.seal(f"Group {n}"), "created_at": NOW} for n in range(1, count + 1)
    ]
    await _insert(sessions, CaseGroup, groups)
    async with sessions() as session, session.begin():
        for group in range(1, count + 1):
            first = (group - 1) * CASES_PER_GROUP + 1
            await session.execute(
                update(CaseRecord)
                .where(CaseRecord.case_id.between(first, first + CASES_PER_GROUP - 1))
                .values(group_id=group)
            )
    return [row["id"] for row in groups]


async def seed_events(
    sessions: SessionFactory, cipher: FieldCipher, cases: int, count: int, rng: random.Random
) -> None:
    """`count` public events in the day before NOW: status changes, and public notes (a fifth)
    sealed with their case's data key."""
    case_ids = rng.sample(range(1, cases + 1), min(cases, count))
    async with sessions() as session:
        found = await session.execute(
            select(DataKey.case_id, DataKey.id, DataKey.sealed).where(DataKey.case_id.in_(case_ids))
        )
        sealed_keys = {case_id: (key_id, sealed) for case_id, key_id, sealed in found}
    statuses = list(CaseStatus)
    events = []
    for number in range(count):
        case_id = case_ids[number % len(case_ids)]
        at = NOW - timedelta(hours=3) - timedelta(seconds=rng.randrange(26 * 3600))
        if number % 5 == 4:
            keyed = cipher.for_data_key(*sealed_keys[case_id])
            body = keyed.seal(
                f"Note {number}: the hearing was moved <again> & the lawyer was let in."
            )
            events.append(
                {
                    "case_id": case_id, "kind": EventKind.PUBLIC_NOTE, "public": True,
                    "body": body, "created_at": at,
                }
            )  # fmt: skip
        else:
            events.append(
                {
                    "case_id": case_id, "kind": EventKind.STATUS_CHANGED, "public": True,
                    "old_status": CaseStatus.VERIFIED, "new_status": rng.choice(statuses),
                    "created_at": at,
                }
            )  # fmt: skip
    await _insert(sessions, CaseEvent, events)


async def seed_monitors(
    sessions: SessionFactory,
    keys: UserKeys,
    count: int,
    cases: int,
    groups: list[int],
    rng: random.Random,
) -> list[int]:
    """Approved monitors with a digest due at NOW, and their subscriptions (a tenth follow every
    public case, two fifths a region, a quarter five cases, a tenth a group, the rest a saved
    filter; a fifth of all with the "verdicts and returns" filter)."""
    first = FIRST_TELEGRAM_ID + 5_000_000
    users, settings, subscriptions = [], [], []
    regions = list(Region)
    for number in range(count):
        telegram_id = first + number
        key = keys.key(telegram_id)
        users.append(
            {
                "id": key,
                "telegram_id": keys.seal(telegram_id),
                "language": LANGUAGES[number % len(LANGUAGES)],
                "role": Role.MONITOR,
                "monitor_status": MonitorStatus.APPROVED,
                "created_at": NOW - timedelta(days=200),
                "last_seen_at": NOW - timedelta(days=1),
            }
        )
        # every send time in 00:00-08:00 local: all due at NOW (09:00 UTC)
        settings.append(
            {
                "user_id": key,
                "enabled": True,
                "send_at_minute": rng.randrange(8 * 60),
                "timezone": TIMEZONES[number % len(TIMEZONES)],
            }
        )
        alert = AlertFilter.VERDICTS_AND_RETURNS if number % 5 == 0 else AlertFilter.ALL_CHANGES
        share = number % 20
        base = {"user_id": key, "alert_filter": alert, "created_at": NOW - timedelta(days=100)}
        if share < 2:
            subscriptions.append({**base, "scope": SubscriptionScope.ALL, "target": "all"})
        elif share < 10:
            region = regions[number % len(regions)].value
            subscriptions.append(
                {
                    **base,
                    "scope": SubscriptionScope.REGION,
                    "target": f"region:{region}",
                    "region": region,
                }
            )
        elif share < 15:
            for case_id in rng.sample(range(1, cases + 1), min(cases, CASES_FOLLOWED)):
                subscriptions.append(
                    {
                        **base,
                        "scope": SubscriptionScope.CASE,
                        "target": f"case:{case_id}",
                        "case_id": case_id,
                    }
                )
        elif share < 17 and groups:
            group = rng.choice(groups)
            subscriptions.append(
                {
                    **base,
                    "scope": SubscriptionScope.GROUP,
                    "target": f"group:{group}",
                    "group_id": group,
                }
            )
        else:
            chosen = {"region": regions[number % len(regions)].value, "custody": "colony"}
            subscriptions.append(
                {
                    **base, "scope": SubscriptionScope.FILTER, "target": f"filter:{number}",
                    "case_filter": chosen,
                }
            )  # fmt: skip
    await _insert(sessions, User, users)
    await _insert(sessions, DigestSetting, settings)
    await _insert(sessions, Subscription, subscriptions)
    return [row["id"] for row in users]


async def seed_delivered(
    sessions: SessionFactory,
    cipher: FieldCipher,
    chats: list[int],
    count: int,
    old_fraction: float,
    rng: random.Random,
) -> int:
    """`count` sent outbox rows (one shared sealed payload, as a fan-out has), the first
    `old_fraction` of them older than RETENTION_DAYS; returns how many are old."""
    payload = cipher.seal('{"code": "K7M4-9XQ2", "kind": "status_changed", "status": "charged"}')
    old = int(count * old_fraction)
    for start in range(0, count, BATCH):
        rows = []
        for number in range(start, min(count, start + BATCH)):
            if number < old:
                created = NOW - timedelta(days=RETENTION_DAYS + 1, seconds=(old - number) * 5)
            else:
                created = NOW - timedelta(seconds=(count - number) * 2)
            rows.append(
                {
                    "dedupe_key": f"seed:{number}",
                    "chat_id": chats[rng.randrange(len(chats))] if chats else number + 1,
                    "kind": OutboxKind.CASE_ALERT,
                    "priority": 0,
                    "template": "monitors.alert",
                    "payload": payload,
                    "status": OutboxStatus.SENT,
                    "attempts": 1,
                    "not_before": created,
                    "created_at": created,
                    "sent_at": created + timedelta(seconds=1),
                    "telegram_message_id": number + 1,
                }
            )
        async with sessions() as session, session.begin():
            await session.execute(insert(OutboxMessage), rows)
    return old


async def reset_sequences(sessions: SessionFactory) -> None:
    """PostgreSQL: rows were inserted with explicit ids; move the id sequences past them."""
    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name != "postgresql":
            return
        for table in ("cases", "data_keys", "case_groups"):
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
        await session.execute(text("ANALYZE"))


async def seed(
    sessions: SessionFactory,
    cipher: FieldCipher,
    keys: UserKeys,
    *,
    cases: int,
    users: int,
    monitors: int,
    delivered: int,
    events: int = 1000,
    old_fraction: float = 0.5,
    report: bool = False,
) -> Seeded:
    """Seed an empty migrated database; see the module's docstring. With `report`, print how
    long each part took."""
    rng = random.Random(16)
    started = time.perf_counter()

    def done(what: str) -> None:
        nonlocal started
        if report:
            print(f"  seeded {what} in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()

    await seed_cases(sessions, cipher, cases)
    done(f"{cases} cases")
    family = await seed_users(sessions, keys, users)
    if cases and family:
        await link_reporters(sessions, family, cases)
    done(f"{users} family users")
    groups = await seed_groups(sessions, cipher, cases)
    await seed_events(sessions, cipher, cases, events if cases else 0, rng)
    done(f"{len(groups)} groups, {events} public events")
    watchers = await seed_monitors(sessions, keys, monitors, cases, groups, rng)
    done(f"{monitors} monitors")
    old = await seed_delivered(sessions, cipher, family + watchers, delivered, old_fraction, rng)
    done(f"{delivered} delivered outbox rows")
    await reset_sequences(sessions)
    return Seeded(NOW, family, watchers, old)


async def count_rows(sessions: SessionFactory) -> dict[str, int]:
    counts = {}
    async with sessions() as session:
        for model in (Case, User, Subscription, CaseEvent, OutboxMessage):
            counts[model.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return counts


def shown_arguments() -> list[str]:
    """The command line as run, with the data key left out."""
    shown, hide = [], False
    for argument in sys.argv[1:]:
        shown.append(
            "…"
            if hide
            else argument.split("=")[0] + "=…"
            if argument.startswith("--data-key=")
            else argument
        )
        hide = argument == "--data-key"
    return shown


async def main(options: argparse.Namespace) -> None:
    print("command: python -m benchmarks.seed_scale " + " ".join(shown_arguments()))
    settings = Settings(  # type: ignore[call-arg]
        database_url=options.url, data_key=SecretStr(options.data_key or generate_key())
    )
    services = await open_services(settings)
    try:
        await seed(
            services.sessions,
            services.cipher,
            services.keys,
            cases=options.cases,
            users=options.users,
            monitors=options.monitors,
            delivered=options.delivered,
            events=options.events,
            report=True,
        )
        print(await count_rows(services.sessions))
    finally:
        await services.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", required=True, help="an empty database (SQLite file or PostgreSQL)"
    )
    parser.add_argument("--data-key", help="HOTLINE_DATA_KEY to seal with (a new one if not given)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--monitors", type=int, default=5_000)
    parser.add_argument("--delivered", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
