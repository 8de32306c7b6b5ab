"""Never silent: whatever kind of private message or button press arrives, exactly one answer.

Hypothesis draws message kinds (text, photo, document, voice, video, audio, animation, video
note, sticker, location, contact), unknown commands, edits and meaningless buttons; after each,
the bot has answered once: a message, or an answer to the button press. One running bot serves
every example (see tests/security/test_bad_input.py for why the health check is suppressed).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sandbox.server import SandboxServer
from tests.support.harness import BotHarness
from tests.support.waiting import wait_until_idle

USER_ID = 78_001
words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80)
Action = tuple[str, Any]
actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(st.just("text"), words.filter(lambda t: t.strip() and not t.startswith("/"))),
    st.tuples(st.just("unknown_command"), st.from_regex(r"/x[a-z_]{1,15}", fullmatch=True)),
    st.tuples(st.sampled_from(["photo", "voice", "video", "audio", "animation"]), words),
    st.tuples(st.sampled_from(["document", "sticker", "video_note"]), st.none()),
    st.tuples(st.just("location"), st.tuples(st.floats(-80, 80), st.floats(-170, 170))),
    st.tuples(st.just("contact"), st.from_regex(r"\+380[0-9]{9}", fullmatch=True)),
    st.tuples(st.just("edited"), words.filter(str.strip)),
    st.tuples(st.just("button"), st.text(min_size=1, max_size=64)),
)


async def _act(sandbox: SandboxServer, kind: str, value: Any) -> str | None:
    """Do it; returns the callback query id for a button press."""
    caption = value or None
    if kind in ("text", "unknown_command"):
        await sandbox.send_text(USER_ID, value)
    elif kind == "photo":
        await sandbox.send_photo(USER_ID, caption=caption)
    elif kind == "document":
        await sandbox.send_document(USER_ID)
    elif kind == "sticker":
        await sandbox.send_sticker(USER_ID)
    elif kind == "video_note":
        await sandbox.send_video_note(USER_ID)
    elif kind in ("voice", "video", "audio", "animation"):
        await getattr(sandbox, f"send_{kind}")(USER_ID, caption=caption)
    elif kind == "location":
        await sandbox.send_location(USER_ID, value[0], value[1])
    elif kind == "contact":
        await sandbox.send_contact(USER_ID, value, "Olena")
    elif kind == "edited":
        sent = await sandbox.send_text(USER_ID, "first words")
        await wait_for_replies(sandbox, 1)  # the message itself is acknowledged first
        await sandbox.edit_text(USER_ID, sent, value)
    elif kind == "button":
        return await sandbox.press(USER_ID, 1, value)
    return None


async def wait_for_replies(sandbox: SandboxServer, count: int) -> None:
    start = len(sandbox.messages(USER_ID))
    await sandbox.wait_for(lambda: len(sandbox.messages(USER_ID)) >= start + count)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(action=actions)
async def test_every_private_message_and_press_gets_exactly_one_answer(
    running_bot: BotHarness, action: Action
) -> None:
    sandbox = running_bot.sandbox
    sandbox.user(USER_ID).language_code = "en"
    assert running_bot.services is not None
    running_bot.services.message_limiter.limit = 1_000_000  # the flood limit is tested elsewhere
    kind, value = action
    before = len(sandbox.messages(USER_ID))
    query = await _act(sandbox, kind, value)
    if query is not None:
        answered = await sandbox.wait_for_callback_answer(query)
        assert answered.text  # said in words, not a silent spinner stop
        await wait_until_idle(running_bot)
        assert len(sandbox.messages(USER_ID)) == before
        return
    expected = 2 if kind == "edited" else 1
    await sandbox.wait_for(lambda: len(sandbox.messages(USER_ID)) >= before + expected)
    await wait_until_idle(running_bot)
    replies = sandbox.messages(USER_ID)[before:]
    assert len(replies) == expected, [m.plain for m in replies]
    assert all(m.plain for m in replies)
