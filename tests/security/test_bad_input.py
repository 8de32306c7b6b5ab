"""Bad input: hypothesis feeds random text, control characters, long strings, malformed commands,
forged callback data and unexpected update types to the running bot; it never crashes, never
answers with a traceback or an error, and the database stays consistent.

Pattern: pytest-asyncio runs a `@given` `async def` test's examples in the test's event loop, and
function-scoped fixtures are built once per test, so one bot (`running_bot`) serves every example
(hence the suppressed `function_scoped_fixture` health check: sharing the bot is the point).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.callbacks import FAMILIES
from bot.i18n import LANGUAGES
from handlers.errors import NOT_SAVED, SOMETHING_WENT_WRONG
from storage.models import Case, CasePersonal
from tests.security.helpers import sqlite_consistency
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle

USER_ID = 77_001
nasty_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300
)
control_text = st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=50)
long_text = st.text(min_size=4000, max_size=4096)
command = st.builds(
    lambda name, arg: f"/{name} {arg}", st.from_regex(r"[a-z_]{1,20}", fullmatch=True), nasty_text
)
callback_data = st.one_of(
    st.text(max_size=64),
    st.builds(
        lambda p, x: p + x,
        st.sampled_from([family.head() for family in FAMILIES]),
        st.text(max_size=20),
    ),
)
Action = tuple[str, Any]
actions = st.one_of(
    st.tuples(st.just("text"), st.one_of(nasty_text, control_text, long_text, command)),
    st.tuples(st.just("callback"), callback_data),
    st.tuples(st.just("edited"), nasty_text),
    st.tuples(st.just("channel_post"), nasty_text),
    st.tuples(st.just("callback_without_message"), callback_data),
    st.tuples(st.just("sticker"), st.none()),
    st.tuples(st.just("photo"), st.one_of(st.none(), nasty_text)),
)


async def _act(bot: BotHarness, action: Action) -> None:
    sandbox = bot.sandbox
    kind, value = action
    if kind == "text":
        await sandbox.send_text(USER_ID, value or ".")
    elif kind == "callback":
        await sandbox.press(USER_ID, 1, value)
    elif kind == "edited":
        await sandbox.edit_text(USER_ID, 1, value or ".")
    elif kind == "sticker":
        await sandbox.send_sticker(USER_ID)
    elif kind == "photo":
        await sandbox.send_photo(USER_ID, caption=value)
    elif kind == "channel_post":
        chat = {"id": -100_555, "type": "channel", "title": "c"}
        await sandbox.send_update(
            {"channel_post": {"message_id": 1, "date": 0, "chat": chat, "text": value or "."}}
        )
    elif kind == "callback_without_message":
        user = sandbox.user(USER_ID).to_api()
        await sandbox.send_update(
            {
                "callback_query": {
                    "id": "999",
                    "from": user,
                    "chat_instance": "1",
                    "inline_message_id": "x",
                    "data": value,
                }
            }
        )


def error_replies(bot: BotHarness) -> set[str]:
    """The error handler's replies, in every language: the user's own is among them (the
    sandbox user writes in Ukrainian, and a forged language button can switch them)."""
    return {
        bot.i18n.get(language).gettext(text)
        for language in LANGUAGES
        for text in (SOMETHING_WENT_WRONG, NOT_SAVED)
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(actions, min_size=1, max_size=4))
async def test_bot_survives_random_input(running_bot: BotHarness, batch: list[Action]) -> None:
    sandbox = running_bot.sandbox
    sandbox.user(USER_ID)
    assert running_bot.services is not None
    running_bot.services.message_limiter.limit = 1_000_000  # the flood limit is tested elsewhere
    seen = len(sandbox.messages(USER_ID))
    for action in batch:
        await _act(running_bot, action)
    await wait_until_idle(running_bot)
    application = running_bot.application
    assert application is not None and application.running
    assert application.updater is not None and application.updater.running
    assert running_bot.services is not None
    async with running_bot.services.sessions() as session:
        assert await sqlite_consistency(session) == []
        orphans = await session.scalar(
            select(func.count())
            .select_from(Case)
            .outerjoin(CasePersonal, CasePersonal.case_id == Case.id)
            .where(CasePersonal.case_id.is_(None))
        )
        assert orphans == 0
    # the bot still answers: a reply to THIS /help, not an earlier one
    before_help = len(sandbox.messages(USER_ID))
    await sandbox.send_text(USER_ID, "/help")
    await sandbox.wait_for(
        lambda: any("/privacy" in m.plain for m in sandbox.messages(USER_ID)[before_help:])
    )
    await wait_until_idle(running_bot)
    errors = error_replies(running_bot)
    for message in sandbox.messages(USER_ID)[seen:]:
        assert "Traceback" not in message.plain and "Error" not in message.plain
        assert not any(error in message.plain for error in errors), message.plain
