"""The replies' retry rules (`bot.pacing.SharedPacerLimiter`), with Telegram scripted: what is
tried again, after how long, and what never is. The real thing is in
tests/e2e/test_reply_faults.py; these pin each rule down on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.pacing import BACKOFF_CAP, SharedPacerLimiter
from bot.telegram_faults import Failure, failure_of
from jobs.pacer import Pacer

OK = {"ok": True}


class Time:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bad_gateway() -> TelegramError:
    return NetworkError("Bad Gateway")  # how PTB reports a 502


def caused(error: TelegramError, cause: Exception) -> Callable[[], TelegramError]:
    def make() -> TelegramError:
        try:
            raise error from cause
        except TelegramError as raised:
            return raised

    return make


dropped = caused(NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("gone"))
read_timeout = caused(TimedOut(), httpx.ReadTimeout("slow"))
connect_timeout = caused(TimedOut(), httpx.ConnectTimeout("no route"))


class Telegram:
    """Answers each call with the next scripted outcome: an error factory, or OK."""

    def __init__(self, *script: Callable[[], TelegramError] | dict[str, bool]) -> None:
        self.script = list(script)
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else OK
        if callable(outcome):
            raise outcome()
        return outcome


async def call(
    telegram: Telegram,
    endpoint: str = "sendMessage",
    data: dict[str, Any] | None = None,
    *,
    horizon: float = 30.0,
    time: Time | None = None,
) -> Any:
    time = time or Time()
    pacer = Pacer(30, clock=time.clock, sleep=time.sleep)
    limiter = SharedPacerLimiter(pacer, horizon, clock=time.clock, sleep=time.sleep)
    return await limiter.process_request(
        telegram, (), {}, endpoint, {"chat_id": 42} if data is None else data, None
    )


def test_failures_are_sorted_by_what_telegram_may_have_done() -> None:
    assert failure_of(RetryAfter(3)) is Failure.RATE_LIMITED
    assert failure_of(bad_gateway()) is Failure.NOT_SENT
    assert failure_of(dropped()) is Failure.NOT_SENT
    assert failure_of(connect_timeout()) is Failure.NOT_SENT
    assert failure_of(read_timeout()) is Failure.MAYBE_SENT
    assert failure_of(BadRequest("chat not found")) is Failure.REFUSED
    assert failure_of(caused(NetworkError("closed"), RuntimeError("ours"))()) is Failure.REFUSED


async def test_a_reply_rides_out_502s_drops_and_a_429() -> None:
    time = Time()
    telegram = Telegram(bad_gateway, dropped, connect_timeout, lambda: RetryAfter(3))
    assert await call(telegram, time=time) == OK
    assert telegram.calls == 5
    backoffs, retry_after = time.slept[:3], time.slept[3:]
    assert all(0 < wait <= BACKOFF_CAP for wait in backoffs)
    assert sum(retry_after) >= 3  # at least what Telegram asked for


async def test_a_reply_that_timed_out_is_not_sent_again() -> None:
    telegram = Telegram(read_timeout)
    with pytest.raises(TimedOut):
        await call(telegram)
    assert telegram.calls == 1


async def test_a_read_that_timed_out_is_repeated() -> None:
    telegram = Telegram(read_timeout)
    assert await call(telegram, "getChat") == OK
    assert telegram.calls == 2


async def test_retries_stop_at_the_horizon() -> None:
    time = Time()
    telegram = Telegram(*[bad_gateway] * 1000)
    with pytest.raises(NetworkError):
        await call(telegram, horizon=10, time=time)
    assert 3 < telegram.calls < 1000
    assert sum(time.slept) <= 10


async def test_a_retry_after_beyond_the_horizon_is_not_waited_for() -> None:
    telegram = Telegram(lambda: RetryAfter(60))
    with pytest.raises(RetryAfter):
        await call(telegram, horizon=30)
    assert telegram.calls == 1


async def test_a_definite_answer_and_a_request_to_nobody_are_not_retried() -> None:
    refused = Telegram(lambda: BadRequest("chat not found"))
    with pytest.raises(BadRequest):
        await call(refused)
    at_start = Telegram(bad_gateway)  # getMe at start: fail at once, one line
    with pytest.raises(NetworkError):
        await call(at_start, "getMe", {})
    assert refused.calls == at_start.calls == 1


async def test_a_button_answered_too_late_after_retries_is_dropped() -> None:
    press = {"callback_query_id": "7"}
    late = Telegram(bad_gateway, lambda: BadRequest("Query is too old"))
    assert await call(late, "answerCallbackQuery", press) is True
    # At the first try too: a press replayed after a crash was answered before it (bot/inbox.py)
    first = Telegram(lambda: BadRequest("Query is too old"))
    assert await call(first, "answerCallbackQuery", press) is True
    other = Telegram(lambda: BadRequest("Message text is empty"))
    with pytest.raises(BadRequest):  # any other refusal at the first try: the handler's business
        await call(other, "answerCallbackQuery", press)
