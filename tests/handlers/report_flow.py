"""Answers the report conversation through the sandbox, so report tests stay short.

`answers` maps a field key (`storage.fields`) to what the relative does: a string is typed,
`Tap(value)` taps the button with that value, `SKIP` taps Skip. Missing optional steps are
skipped. Buttons are pressed with the form's codec (`bot.callbacks.REPORT`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.callbacks import HIDE, REPORT
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import BotMessage


@dataclass(frozen=True)
class Tap:
    value: str


SKIP = Tap("__skip__")

FULL: dict[str, str | Tap] = {
    "relation": Tap("parent"),
    "name": "Petrenko Ivan Mykolaiovych",
    "birth": "21.03.1985",
    "detention_date": "05.12.2024",
    "region": Tap("crimea"),
    "arrest_place": "Simferopol, Kyivska 12",
    "detained_by": Tap("fsb"),
    "charges": "treason (art. 275)",
    "held_in": "SIZO-1 Simferopol",
    "lawyer": Tap("yes"),
    "health": "asthma, needs an inhaler",
    "documents": Tap("done"),
    "phone": "+380 67 123 45 67",
    "visibility": Tap("anonymous"),
}
ORDER = list(FULL)
REQUIRED = {"relation", "name", "detention_date", "region"}


async def begin(sandbox: SandboxServer, user: int, entry: str = "/report") -> BotMessage:
    """Start and consent; returns the first question."""
    await sandbox.send_text(user, entry)
    consent = await sandbox.next_message(user)
    await sandbox.press(user, consent.message_id, REPORT.build("consent", "yes"))
    return await sandbox.next_message(user)


async def answer(
    sandbox: SandboxServer, user: int, question: BotMessage, key: str, value: str | Tap
) -> BotMessage:
    """Answer one question; returns the bot's next message."""
    if isinstance(value, Tap):
        data = REPORT.build("skip", key) if value == SKIP else REPORT.build("a", key, value.value)
        assert data in question.callback_data, (data, question.callback_data)
        await sandbox.press(user, question.message_id, data)
    else:
        await sandbox.send_text(user, value)
    return await sandbox.next_message(user)


async def answer_from(
    sandbox: SandboxServer,
    user: int,
    question: BotMessage,
    answers: dict[str, str | Tap],
    start: str = "relation",
) -> BotMessage:
    """Answer the steps from `start` to the end; returns the summary."""
    for key in ORDER[ORDER.index(start) :]:
        value = answers.get(key, SKIP)
        question = await answer(sandbox, user, question, key, value)
    return question


async def file(
    sandbox: SandboxServer, user: int, answers: dict[str, str | Tap] = FULL
) -> BotMessage:
    """The whole conversation, confirmed; returns the bot's reply with the code."""
    summary = await answer_from(sandbox, user, await begin(sandbox, user), answers)
    await sandbox.press(user, summary.message_id, REPORT.build("confirm"))
    reply = await sandbox.next_message(user)
    if "code is" in reply.plain:  # then the offer to hide the chat (handlers.privacy)
        offer = await sandbox.next_message(user)
        assert HIDE.build("chat") in offer.callback_data
    return reply
