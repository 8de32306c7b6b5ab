"""Polling errors, said once and plainly.

Telegram gives a token's updates to one poller: a second instance started by mistake gets
`409 Conflict: terminated by other getUpdates request`. PTB would retry forever and log a
traceback each time; this bot instead stops, says so in one line (no traceback, no token, no
update content) and exits with EXIT_CONFLICT, so a supervisor shows the mistake. Other polling
errors (the network, Telegram's 5xx) are retried by PTB, each logged as one line.
"""

from __future__ import annotations

import asyncio
import logging

from telegram.error import Conflict, TelegramError

log = logging.getLogger(__name__)

EXIT_CONFLICT = 3
CONFLICT_LINE = (
    "another instance of this bot is polling Telegram with the same token (409 Conflict): "
    "this one stops; run one instance per token"
)
PTB_LOGGERS = ("telegram.ext", "telegram.ext.Updater")
"""Where PTB logs polling failures with their tracebacks (its retry loop, its final poll)."""


class _WithoutConflictTracebacks(logging.Filter):
    """PTB's own record of a Conflict (with a traceback) is replaced by our one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, Conflict)


class PollingGuard:
    """The `error_callback` of `start_polling`: a Conflict sets `stop` (logged once)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.conflict = False
        self._filter = _WithoutConflictTracebacks()
        for name in PTB_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def __call__(self, error: TelegramError) -> None:
        if isinstance(error, Conflict):
            if not self.conflict:
                self.conflict = True
                log.error(CONFLICT_LINE)
            self.stop.set()
            return
        # The message of a network error can carry the request URL, with the token: type only.
        log.warning("polling for updates failed (%s); retrying", type(error).__name__)

    def close(self) -> None:
        for name in PTB_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    @property
    def exit_code(self) -> int:
        return EXIT_CONFLICT if self.conflict else 0
