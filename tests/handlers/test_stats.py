"""/stats through the real bot on a seeded database and a fixed clock, in the four languages:
every chart arrives as a valid PNG whose embedded figures (what it was drawn from) and labels
are the seeded counts in the reader's words; the same figures follow as text."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from bot.i18n import I18n
from bot.texts.statuses import status_word
from bot.texts.vocabulary import REGION_WORDS, word
from jobs.stats_charts import TITLES
from storage import tags
from storage.enums import CaseStatus, EventKind, Region, Role
from storage.lifecycle import OPEN
from storage.models import Case, CaseEvent
from storage.users import set_language
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant

NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # a Wednesday
STAFF = {"uk": 3301, "crh": 3302, "en": 3303, "ru": 3304}
SEEDED: list[tuple[Region, CaseStatus, int]] = [  # region, status, days before NOW reported
    (Region.CRIMEA, CaseStatus.NEW, 1),
    (Region.CRIMEA, CaseStatus.NEW, 2),
    (Region.CRIMEA, CaseStatus.NEW, 9),
    (Region.KHERSON, CaseStatus.VERIFIED, 30),
    (Region.KHERSON, CaseStatus.VERIFIED, 60),
    (Region.CRIMEA, CaseStatus.SENTENCED, 200),
    (Region.SEVASTOPOL, CaseStatus.CLOSED, 100),
    (Region.CRIMEA, CaseStatus.RETURNED, 300),
    (Region.CRIMEA, CaseStatus.NEW, 400),  # before the 52 weeks: open, not in the weekly series
]
VERIFIED_AFTER_DAYS = {30: 4, 60: 10}  # reported N days back -> verified that many days later
RETURNED_DAYS_BACK = 40


async def seed(bot: BotHarness) -> None:
    services = bot.services
    assert services is not None
    services.clock = lambda: NOW
    async with services.sessions() as session, session.begin():
        for lang, user in STAFF.items():
            key = await grant(session, services.keys, user, Role.STAFF)
            await set_language(session, key, lang)
        await tags.define_tag(session, "journalist", actor_id=0, now=NOW)
        for n, (region, status, back) in enumerate(SEEDED):
            reported = NOW - timedelta(days=back)
            code = await make_case(
                session, services.cipher, keys=services.keys, reporter_id=6000 + n,
                region=region, status=status, created_at=reported,
            )  # fmt: skip
            case_id = await session.scalar(select(Case.id).where(Case.code == code))
            if back in VERIFIED_AFTER_DAYS:
                session.add(
                    CaseEvent(
                        case_id=case_id, kind=EventKind.STATUS_CHANGED,
                        old_status=CaseStatus.UNDER_REVIEW, new_status=CaseStatus.VERIFIED,
                        created_at=reported + timedelta(days=VERIFIED_AFTER_DAYS[back]),
                    )
                )  # fmt: skip
            if status == CaseStatus.RETURNED:
                session.add(
                    CaseEvent(
                        case_id=case_id, kind=EventKind.STATUS_CHANGED,
                        old_status=CaseStatus.RELEASED, new_status=CaseStatus.RETURNED,
                        created_at=NOW - timedelta(days=RETURNED_DAYS_BACK),
                    )
                )  # fmt: skip
            if n == 0:
                await tags.set_tag(session, code, "journalist", True, actor_id=0, now=NOW)


def expected(lang: str) -> dict[str, tuple[list[str], list[float | None]]]:
    tr = I18n().get(lang)
    open_cases = [(r, s) for r, s, _ in SEEDED if s in OPEN]
    statuses = [s for s in CaseStatus if s in OPEN]
    weeks: dict[date, int] = {}
    monday = date(2027, 3, 8)
    for n in range(52):
        weeks[monday - timedelta(weeks=51 - n)] = 0
    for _, _, back in SEEDED:
        day = (NOW - timedelta(days=back)).astimezone(ZoneInfo("Europe/Kyiv")).date()
        start = day - timedelta(days=day.weekday())
        if start in weeks:
            weeks[start] += 1
    return {
        "status": (
            [status_word(tr, s) for s in statuses],
            [float(sum(1 for _, st in open_cases if st == s)) for s in statuses],
        ),
        "region": (
            [word(tr, REGION_WORDS, r) for r in Region],
            [float(sum(1 for rg, _ in open_cases if rg == r)) for r in Region],
        ),
        "tag": (["journalist"], [1.0]),
        "weeks": ([tr.format_date(d) for d in weeks], [float(c) for c in weeks.values()]),
    }


def png_figures(data: bytes) -> dict[str, Any]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (800, 450)
    description = json.loads(image.text["Description"])
    Image.open(io.BytesIO(data)).verify()  # the whole file is a well-formed PNG
    return dict(description)


@pytest.mark.parametrize("lang", list(STAFF))
async def test_stats_charts_carry_the_seeded_figures_in_the_readers_language(
    running_bot: BotHarness, lang: str
) -> None:
    await seed(running_bot)
    sandbox, user = running_bot.sandbox, STAFF[lang]
    tr = I18n().get(lang)
    await sandbox.send_text(user, "/stats")
    messages = await sandbox.wait_for_messages(user, 7)
    photos = [m for m in messages if m.photo is not None]
    assert len(photos) == 6
    charts = {}
    for message in photos:
        assert message.photo is not None
        data, _ = sandbox.world.files[message.photo[-1]["file_id"]]
        figures = png_figures(data)
        charts[figures["chart"]] = figures
        assert message.plain == tr.gettext(TITLES[figures["chart"]]) == figures["title"]
    for key, (labels, values) in expected(lang).items():
        assert charts[key]["labels"] == labels, key
        assert charts[key]["values"] == values, key
    verified = charts["verified"]["values"]
    assert [v for v in verified if v is not None] == [10.0, 4.0]  # in the months they happened
    assert sum(charts["returns"]["values"]) == 1
    text = await sandbox.wait_for_messages(user, 7)
    summary = text[-1].plain
    assert tr.gettext("Open cases: {count}").format(count=7) in summary
    assert (
        tr.gettext("Median days from report to verified, last 12 months: {days}").format(
            days=tr.format_number(7.0)
        )
        in summary
    )
