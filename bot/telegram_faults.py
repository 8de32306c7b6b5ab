"""What a failed Bot API request tells us: may it be tried again, and may Telegram have acted?

PTB raises `NetworkError` for a connection refused or dropped and for a 5xx answer, and its
subclass `TimedOut` for every timeout; but they differ in what Telegram did. A connection that
was refused, a connection (or pool) timeout, or a 5xx answer mean the request was not carried
out: sending it again is safe. A dropped connection (no answer at all) is taken the same way,
as Telegram's front end drops a request before the Bot API acts on it. A read (or write)
timeout is different: the request reached Telegram, which may be acting on it right now (a slow
API), so sending it again blindly can deliver a message twice. `RetryAfter` (429) is a refusal
for now, with the time to wait; the other errors (bad request, blocked, not found...) are
definite answers, never retried.

Used by the replies' rate limiter (`bot.pacing`) and the delivery job (`jobs.delivery`).
"""

from __future__ import annotations

import enum

import httpx
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

SEND_READ_TIMEOUT = 30.0
"""Seconds a request waits for Telegram's answer (PTB's default is 5). Telegram answers in well
under a second; a slower answer means a struggling API that is still carrying the request out,
and giving up on it early is what turns one message into several (the sender tries again)."""


class Failure(enum.Enum):
    RATE_LIMITED = "rate limited"
    """429: wait `retry_after`, then try again."""
    NOT_SENT = "not sent"
    """Telegram did not carry it out (5xx, no connection, dropped): safe to try again."""
    MAYBE_SENT = "maybe sent"
    """Timed out waiting for the answer: Telegram may have acted; not to be repeated blindly."""
    REFUSED = "refused"
    """A definite answer (bad request, forbidden, ...): trying again changes nothing."""


_NOT_SENT_TIMEOUTS = (httpx.ConnectTimeout, httpx.PoolTimeout)
_DROPPED = (httpx.NetworkError, httpx.RemoteProtocolError)


def failure_of(error: BaseException) -> Failure:
    """Sort a failed request's error (see the module's docstring)."""
    if isinstance(error, RetryAfter):
        return Failure.RATE_LIMITED
    if isinstance(error, TimedOut):
        cause = error.__cause__
        return Failure.NOT_SENT if isinstance(cause, _NOT_SENT_TIMEOUTS) else Failure.MAYBE_SENT
    if isinstance(error, BadRequest) or not isinstance(error, NetworkError):
        return Failure.REFUSED
    cause = error.__cause__
    # No cause: PTB raised it for an HTTP status (a 5xx, or an answer it could not parse).
    if cause is None or isinstance(cause, (TelegramError, *_DROPPED)):
        return Failure.NOT_SENT
    return Failure.REFUSED  # our own HTTP stack failed (closed client...): not Telegram's fault


def talking_to_telegram_failed(error: BaseException) -> bool:
    """The error is Telegram's availability, not an answer: a 429, a 5xx, no connection, a
    timeout."""
    return isinstance(error, TelegramError) and failure_of(error) is not Failure.REFUSED
