"""Logging that never carries personal data.

Log records name case codes and internal ids only. Exception messages can quote user input (a
ValueError about a date someone typed), so errors are logged as their type and the code locations
of the traceback, never their message. httpx logs every request URL, which contains the bot token,
so it is kept at WARNING. A job a stop did not wait for is one line, not an error with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from pathlib import Path


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
    name_unwaited_jobs_in_one_line()


JOB_EXECUTOR_LOGGER = "apscheduler.executors.default"
"""Where APScheduler logs a job's exception (PTB's JobQueue runs jobs on the "default" executor)."""
NOT_WAITED_LINE = "job %s was still running when the instance stopped; it was not waited for"


class _UnwaitedJobsInOneLine(logging.Filter):
    """`stop_as_a_crash` shuts the scheduler down without waiting for running jobs, by design:
    APScheduler cancels its wait for them (PTB shields the job itself) and logs that as an ERROR
    with a traceback. It is not an error: the record becomes one WARNING line naming the job
    (not its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            job = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg, record.args = NOT_WAITED_LINE, (getattr(job, "name", None) or "?",)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_UNWAITED_JOBS_FILTER = _UnwaitedJobsInOneLine()


def name_unwaited_jobs_in_one_line() -> None:
    """Install the filter on the executor's logger (once: `addFilter` ignores a repeat)."""
    logging.getLogger(JOB_EXECUTOR_LOGGER).addFilter(_UNWAITED_JOBS_FILTER)


OUR_PACKAGES = ("bot", "handlers", "storage", "jobs")
_ROOT = Path(__file__).resolve().parent.parent


def _our_place(frame: traceback.FrameSummary) -> str | None:
    """`handlers.report.ask_name (handlers/report.py:88)` for a frame in our packages, else None."""
    try:
        relative = Path(frame.filename).resolve().relative_to(_ROOT)
    except ValueError:
        return None
    if len(relative.parts) < 2 or relative.parts[0] not in OUR_PACKAGES:
        return None
    module = ".".join(relative.with_suffix("").parts)
    return f"{module}.{frame.name} ({relative.as_posix()}:{frame.lineno})"


def _place(frame: traceback.FrameSummary) -> str:
    return f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} in {frame.name}"


def _our_places(error: BaseException) -> list[str]:
    """Our frames of the error's traceback, outermost first; those of the exception it was
    raised from (or during) when it has none (an error re-raised by a library)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        places = [_our_place(frame) for frame in traceback.extract_tb(link.__traceback__)]
        ours = [place for place in places if place is not None]
        if ours:
            return ours
        link = link.__cause__ or link.__context__
    return []


def describe_error(error: BaseException) -> str:
    """`KeyError in storage.reports.file_report (storage/reports.py:88) via
    handlers.report.confirm (handlers/report.py:401), raised at dict.py:3 in get`: the type, the
    innermost frame in our packages (what failed) and the outermost (the handler or job that
    called it), and where it was raised; never the message, which can quote what a user typed."""
    name = type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)
    ours = _our_places(error)
    if not ours:
        if not frames:
            return name
        return f"{name} at " + " <- ".join(_place(frame) for frame in reversed(frames[-4:]))
    text = f"{name} in {ours[-1]}"
    if ours[0] != ours[-1]:
        text += f" via {ours[0]}"
    if frames:
        text += f", raised at {_place(frames[-1])}"
    return text
