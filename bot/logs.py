"""Logging that never carries personal data.

Log records name case codes and internal ids only. Exception messages can quote user input (a
ValueError about a date someone typed), so errors are logged as their type and the code locations
of the traceback, never their message. httpx logs every request URL, which contains the bot token,
so it is kept at WARNING.
"""

from __future__ import annotations

import logging
import traceback


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # PTB logs whole updates and Bot API parameters (users' words) at DEBUG: never below INFO.
    logging.getLogger("telegram").setLevel(max(logging.INFO, logging.getLogger().level))


def describe_error(error: BaseException) -> str:
    """`KeyError at handlers/report.py:88 in ask_name <- ...`: type and places, no message text."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    places = " <- ".join(
        f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
    return f"{type(error).__name__} at {places}" if places else type(error).__name__
