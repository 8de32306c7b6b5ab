"""/healthz and /metrics of the real bot (issue 16, operators' view): started with the
Application on a free port, read over HTTP, parsed with prometheus-client's own parser.

Counters are process-wide (one registry per process, as in production), so each test compares
a scrape after the events with one taken before them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.health import HEALTH_KEY, HealthServer, stop_health
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from storage import outbox
from storage.enums import OutboxKind, OutboxStatus
from storage.outbox import PRIORITY_BROADCAST, Outgoing
from tests.support.databases import fresh_postgres_database, postgres_url, sqlite_url
from tests.support.harness import BotHarness, free_port, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import eventually, outbox_counts, settled, wait_until_idle

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
NOTE = "cases.public_note"


async def _bot(sandbox: SandboxServer, database_url: str, data_key: str, i18n: I18n) -> BotHarness:
    settings = harness_settings(
        sandbox,
        database_url,
        data_key,
        metrics_port=free_port(),
        dead_summary_seconds=3600,  # dead rows stay unreported while the test reads them
    )
    return BotHarness(sandbox=sandbox, settings=settings, i18n=i18n)


@pytest.fixture
async def metered_bot(
    sandbox: SandboxServer, tmp_path: Path, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    """The real bot on a SQLite file with HOTLINE_METRICS_PORT set; started."""
    bot = await _bot(sandbox, sqlite_url(tmp_path), data_key, i18n)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.close()


def health_of(bot: BotHarness) -> HealthServer:
    assert bot.application is not None
    server = bot.application.bot_data[HEALTH_KEY]
    assert isinstance(server, HealthServer)
    return server


async def get(bot: BotHarness, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{bot.settings.metrics_port}{path}"
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        return response.status, await response.text()


async def scrape(bot: BotHarness) -> Samples:
    status, text = await get(bot, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def queue_notes(
    bot: BotHarness, chats: list[int], *, kind: OutboxKind = OutboxKind.CASE_ALERT, **extra: Any
) -> None:
    """One committed transaction queuing a note to each chat (it wakes the delivery job)."""
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        keys = bot.services.keys
        for chat in chats:
            await known_user(session, keys, chat, "en", discreet=False)
        await outbox.enqueue(
            session,
            bot.services.cipher,
            [
                Outgoing(
                    keys.key(chat),
                    f"test:{kind}:{chat}",
                    NOTE,
                    {"code": "N1", "note": "1"},
                    kind=kind,
                    **extra,
                )
                for chat in chats
            ],
            now=bot.services.clock(),
        )


async def test_metrics_count_what_happened(metered_bot: BotHarness) -> None:
    bot, sandbox = metered_bot, metered_bot.sandbox
    before = await scrape(bot)

    # three people write: three updates handled, their replies counted
    talkers = [sandbox.add_user(language_code="en").id for _ in range(3)]
    for user in talkers:
        await sandbox.send_text(user, "/start")
    await wait_until_idle(bot)
    replies = sum(len(sandbox.stats.sends_to(user)) for user in talkers)
    assert replies >= 3

    # four notifications: one refused once with 429 (then sent), one to a person who blocked
    # the bot (dead); one broadcast row not yet due (waits in the queue)
    ok = [sandbox.add_user(language_code="en").id for _ in range(3)]
    blocked = sandbox.add_user(language_code="en").id
    later = sandbox.add_user(language_code="en").id
    sandbox.block_bot(blocked)
    sandbox.force_retry_after(1, retry_after=1)
    assert bot.services is not None
    not_yet = bot.services.clock() + timedelta(days=1)
    await queue_notes(
        bot, [later], kind=OutboxKind.BROADCAST, priority=PRIORITY_BROADCAST, not_before=not_yet
    )
    await queue_notes(bot, [*ok, blocked])
    await sandbox.wait_for(lambda: all(sandbox.messages(chat) for chat in ok), timeout=20)
    await sandbox.wait_for(lambda: sandbox.stats.status_403 >= 1)
    await settled_but(bot, pending=1)  # the blocked row is marked dead after its 403
    await health_of(bot).refresh()
    after = await scrape(bot)

    assert sandbox.stats.status_429 == 1
    kind = OutboxKind.CASE_ALERT.value
    assert grew(before, after, "hotline_outbox_sends_total", kind=kind, outcome="sent") == 3
    assert grew(before, after, "hotline_outbox_sends_total", kind=kind, outcome="429") == 1
    assert grew(before, after, "hotline_outbox_sends_total", kind=kind, outcome="dead") == 1
    assert grew(before, after, "hotline_outbox_sends_total", kind=kind, outcome="retry") == 0
    assert grew(before, after, "hotline_telegram_429_total", source="outbox") == 1
    assert grew(before, after, "hotline_telegram_429_total", source="reply") == 0
    assert grew(before, after, "hotline_replies_total", outcome="sent") == replies
    assert grew(before, after, "hotline_update_handling_seconds_count") == 3

    # the database figures: the queue by kind, the dead row, an empty inbox
    broadcast = OutboxKind.BROADCAST.value
    assert value(after, "hotline_outbox_queue_rows", kind=broadcast, status="pending") == 1
    assert value(after, "hotline_outbox_queue_rows", kind=kind, status="pending") == 0
    assert value(after, "hotline_outbox_queue_rows", kind=kind, status="sending") == 0
    assert value(after, "hotline_outbox_dead_rows") == 1
    assert value(after, "hotline_outbox_dead_unreported_rows") == 1
    assert value(after, "hotline_outbox_oldest_due_seconds") == 0  # the waiting row is not due
    assert value(after, "hotline_inbox_waiting_updates") == 0
    assert value(after, "hotline_database_up") == 1
    assert value(after, "hotline_role", hotline_role="single") == 1

    # no label carries a person: only the closed sets of kinds, outcomes, statuses and roles
    people = {str(chat) for chat in [*talkers, *ok, blocked, later]}
    people |= {str(bot.key(chat)) for chat in [*talkers, *ok, blocked, later]}
    for _, labels in after:
        assert not {label for _, label in labels} & people


async def settled_but(bot: BotHarness, *, pending: int) -> dict[OutboxStatus, int]:
    """The outbox once nothing is in flight and only `pending` rows (not yet due) wait."""

    async def done() -> bool:
        counts = await outbox_counts(bot)
        return counts[OutboxStatus.PENDING] == pending and counts[OutboxStatus.SENDING] == 0

    await eventually(done, f"an outbox with {pending} rows pending and none in flight")
    return await outbox_counts(bot)


async def test_role_is_reported(metered_bot: BotHarness) -> None:
    try:
        metrics.set_role("standby")
        samples = await scrape(metered_bot)
        assert value(samples, "hotline_role", hotline_role="standby") == 1
        assert value(samples, "hotline_role", hotline_role="single") == 0
        status, body = await get(metered_bot, "/healthz")
        assert status == 200 and '"role": "standby"' in body
        with pytest.raises(ValueError, match="unknown role"):
            metrics.set_role("boss")
    finally:
        metrics.set_role("single")


async def test_healthz_answers_and_says_503_when_the_sqlite_file_is_gone(
    metered_bot: BotHarness, tmp_path: Path
) -> None:
    bot, sandbox = metered_bot, metered_bot.sandbox
    user = sandbox.add_user(language_code="en").id
    await sandbox.send_text(user, "/start")
    await wait_until_idle(bot)
    await settled(bot)
    await health_of(bot).refresh()
    status, body = await get(bot, "/healthz")
    assert status == 200
    health = _json(body)
    assert health["role"] == "single"
    assert health["database_reachable"] is True
    assert health["inbox_waiting_updates"] == 0
    assert health["outbox_oldest_due_seconds"] == 0
    assert health["figures_age_seconds"] is not None

    # the file deleted under the running bot (it would write into a ghost gone at restart)
    _delete_database_files(tmp_path)
    status, body = await get(bot, "/healthz")
    assert status == 503
    assert _json(body)["database_reachable"] is False


@pytest.mark.postgres
async def test_healthz_says_503_when_the_postgres_database_is_gone(
    sandbox: SandboxServer, data_key: str, i18n: I18n
) -> None:
    async with fresh_postgres_database() as url:
        bot = await _bot(sandbox, url, data_key, i18n)
        await bot.start()
        try:
            await health_of(bot).refresh()
            status, body = await get(bot, "/healthz")
            assert status == 200 and _json(body)["database_reachable"] is True

            name = url.rpartition("/")[2]
            admin = await asyncpg.connect(postgres_url().replace("+asyncpg", "", 1))
            try:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            status, body = await get(bot, "/healthz")
            assert status == 503 and _json(body)["database_reachable"] is False
            await health_of(bot).refresh()
            samples = await scrape(bot)
            assert value(samples, "hotline_database_up") == 0
        finally:
            assert bot.application is not None
            await stop_health(bot.application)
            await bot.kill()  # a clean stop would write to the database that is gone


def _delete_database_files(directory: Path) -> None:
    for path in directory.glob("hotline.db*"):
        path.unlink()


def _json(body: str) -> dict[str, Any]:
    parsed = json.loads(body)
    assert isinstance(parsed, dict)
    return parsed
