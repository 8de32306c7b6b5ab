"""Personal data is shown only in private chats (issue 12, point 8).

Every command the bot registers (found from the Application, so a new one is covered), sent in a
group by a family member and by an admin, gets the one "only in a private chat" line in the
sender's language and nothing else; so do the buttons that open a case, a family's cases and the
inbox. Nothing the bot writes in the group names the detainee, the case or the phone.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from telegram.ext import CommandHandler

from bot.callbacks import CASE, INBOX, MENU, STATUS
from bot.i18n import I18n
from bot.sandbox.server import SandboxServer
from handlers.middleware import ALLOWED_IN_GROUPS, ONLY_IN_PRIVATE
from tests.security.helpers import NAME, PHONE, seed_case
from tests.support.harness import BotHarness, harness_settings
from tests.support.identity import known_user
from tests.support.waiting import wait_until_idle

ADMIN = 9001
GROUP = -1001234567890


@pytest.fixture
async def bot(
    sandbox: SandboxServer, sqlite_database_url: str, data_key: str, i18n: I18n
) -> AsyncIterator[BotHarness]:
    harness = BotHarness(
        sandbox=sandbox,
        settings=harness_settings(sandbox, sqlite_database_url, data_key, messages_per_minute=1000),
        i18n=i18n,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _commands(bot: BotHarness) -> set[str]:
    assert bot.application is not None
    found: set[str] = set()
    for handlers in bot.application.handlers.values():
        stack = list(handlers)
        while stack:
            handler = stack.pop()
            stack.extend(
                [h for attr in ("entry_points", "fallbacks") for h in getattr(handler, attr, [])]
                + [h for hs in getattr(handler, "states", {}).values() for h in hs]
            )
            if isinstance(handler, CommandHandler):
                found |= set(handler.commands)
    return found


async def test_personal_commands_and_buttons_answer_only_in_a_private_chat(
    bot: BotHarness, i18n: I18n
) -> None:
    sandbox = bot.sandbox
    services = bot.services
    assert services is not None
    family = sandbox.add_user(language_code="uk").id
    sandbox.add_user(user_id=ADMIN, language_code="en")
    async with services.sessions() as session, session.begin():
        await known_user(session, services.keys, family, "uk")
        code = await seed_case(session, services.cipher, keys=services.keys, reporter_id=family)
    line = {"family": i18n.get("uk").gettext(ONLY_IN_PRIVATE)}  # in each one's language
    line["admin"] = i18n.get("en").gettext(ONLY_IN_PRIVATE)
    assert line["family"] != line["admin"]

    commands = _commands(bot)
    assert {"mydata", "status", "case", "inbox", "forget", "report"} <= commands
    refused = sorted(commands - ALLOWED_IN_GROUPS)
    groups = [GROUP - number for number in range(len(refused) + 2)]
    for group in groups:  # one group per command: Telegram lets a bot post 20 a minute in one
        sandbox.add_group(group, "Relatives and staff")
    for group, command in zip(groups, refused, strict=False):
        for sender, who in ((family, "family"), (ADMIN, "admin")):
            for text in (f"/{command}", f"/{command} {code}"):
                await sandbox.send_text(sender, text, chat_id=group)
                reply = await sandbox.next_message(group)
                assert reply.plain == line[who], (who, text, reply.plain)
    assert bot.application is not None  # addressed to the bot by name, as members type it
    await sandbox.send_text(family, f"/mydata@{bot.application.bot.username}", chat_id=groups[-2])
    assert (await sandbox.next_message(groups[-2])).plain == line["family"]

    for data in (
        CASE.build("show", code),
        STATUS.build("show", code),
        MENU.build("status"),
        INBOX.bare(0),
    ):
        for sender, who in ((family, "family"), (ADMIN, "admin")):
            query = await sandbox.press(sender, 1, data, chat_id=GROUP)
            answered = await sandbox.wait_for_callback_answer(query)
            assert (answered.text, answered.show_alert) == (line[who], True), data

    await sandbox.send_text(family, "/help", chat_id=groups[-1])  # /help is still answered there
    help_text = await sandbox.next_message(groups[-1])
    assert help_text.plain != line["family"]
    await wait_until_idle(bot)
    written = [m for group in groups for m in sandbox.messages(group)]
    assert len(written) == len(refused) * 4 + 2  # the replies awaited above, and nothing else
    shown = " ".join(m.plain for m in written)
    for secret in (NAME, "Бариєв", code, PHONE, "астма", "Бахчисарай"):
        assert secret not in shown
    assert [m for m in sandbox.messages(ADMIN) if code in m.plain] == []  # nothing went privately

    # the same command in the private chat does show the data: the group line was a refusal
    await sandbox.send_text(family, "/mydata")
    await sandbox.wait_for(lambda: any(NAME in m.plain for m in sandbox.messages(family)))
    assert re.search(re.escape(code), " ".join(m.plain for m in sandbox.messages(family)))
