"""Every family of buttons (bot/callbacks.py): a malformed or stale press of any of them, by a
family member or by staff, is answered in words by the one fallback, and changes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bot.callbacks import FAMILIES, CallbackFamily
from storage.enums import Role
from storage.models import AuditEntry, CaseEvent, OutboxMessage
from tests.support.harness import BotHarness
from tests.support.identity import grant, known_user
from tests.support.waiting import wait_until_idle

STAFF = 3101
FAMILY_USER = 3102
STALE = "This button is no longer valid."


def malformed(family: CallbackFamily) -> list[str]:
    """Data that starts like the family's but is none of its buttons: an unknown verb, a known
    verb with a missing or extra argument, an argument of the wrong kind."""
    presses = [family.head(), family.head("no-such-verb"), family.head() + "x:" * 5]
    for verb, kinds in family.verbs.items():
        start = family.head(verb) if verb else family.head()
        presses.append(start + ":".join(["zz!"] * max(len(kinds), 1)))  # wrong kind
        presses.append(start + ":".join(["1"] * (len(kinds) + 1)))  # one argument too many
    return [data[:64] for data in dict.fromkeys(presses) if family.parse(data[:64]) is None]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.prefix)
def test_the_codec_builds_what_it_parses_and_routes_only_that(family: CallbackFamily) -> None:
    for data in malformed(family):
        assert re.match(family.pattern, data) is None, data
    for verb, kinds in family.verbs.items():
        args = [kind.example for kind in kinds]
        data = family.build(verb, *args)
        assert re.match(family.pattern, data)
        pressed = family.parse(data)
        assert pressed is not None and (pressed.verb, list(pressed.args)) == (verb, args)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.prefix)
async def test_a_malformed_press_of_every_family_is_answered(
    running_bot: BotHarness, family: CallbackFamily
) -> None:
    sandbox = running_bot.sandbox
    services = running_bot.services
    assert services is not None
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        await known_user(session, services.keys, STAFF, "en")
        await known_user(session, services.keys, FAMILY_USER, "en")
    services.message_limiter.limit = 1_000_000  # the flood limit is tested elsewhere
    sandbox.user(STAFF).language_code = "en"
    sandbox.user(FAMILY_USER).language_code = "en"
    async with services.sessions() as session:
        before = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (CaseEvent, OutboxMessage)
        ]
    presses = malformed(family)
    assert presses
    for user in (FAMILY_USER, STAFF):
        for data in presses:
            query = await sandbox.press(user, 1, data)
            answered = await sandbox.wait_for_callback_answer(query)
            assert answered.text == STALE, (user, data)
    await wait_until_idle(running_bot)
    assert sandbox.messages(FAMILY_USER) == [] and sandbox.messages(STAFF) == []
    async with services.sessions() as session:
        after = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (CaseEvent, OutboxMessage)
        ]
        audits = await session.scalar(select(func.count()).select_from(AuditEntry))
    assert after == before and audits == 0
