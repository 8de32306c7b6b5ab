"""`describe_error`: the type and our code's place, never the exception's message."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from bot.logs import describe_error
from storage.enums import Role
from storage.users import set_role


def _caught(error_factory: object) -> BaseException:
    try:
        error_factory()  # type: ignore[operator]
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


def test_the_innermost_frame_in_our_packages_is_named() -> None:
    # set_role refuses before it touches the session: a real error raised in storage/.
    error = _caught(lambda: asyncio.run(set_role(None, 1, Role.ADMIN)))  # type: ignore[arg-type]
    text = describe_error(error)
    assert text.startswith("ValueError in storage.users.set_role (storage/users.py:"), text
    assert "HOTLINE_ADMIN_IDS" not in text  # the message is never logged


def test_an_error_raised_outside_our_code_is_placed_by_what_led_to_it() -> None:
    try:
        try:
            asyncio.run(set_role(None, 1, Role.ADMIN))  # type: ignore[arg-type]
        except ValueError as inner:
            json.loads("{ a secret the user typed")  # raised in a library, during handling
            raise AssertionError from inner
    except json.JSONDecodeError as error:
        text = describe_error(error)
    assert text.startswith("JSONDecodeError in storage.users.set_role"), text
    assert "secret" not in text


def test_without_our_frames_the_last_places_are_given() -> None:
    error = _caught(lambda: json.loads("{ the user's words"))
    text = describe_error(error)
    assert text.startswith("JSONDecodeError at "), text
    assert "decoder.py" in text and "words" not in text


def test_an_error_never_raised_is_its_type() -> None:
    assert describe_error(KeyError("Olena")) == "KeyError"


@pytest.mark.parametrize("message", ["Olena Bariieva", "+380675551234"])
def test_no_message_text_ever(message: str) -> None:
    error = _caught(lambda: {}[message])
    assert message not in describe_error(error)


async def test_a_job_a_stop_did_not_wait_for_is_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`stop_as_a_crash` shuts the scheduler down without waiting: APScheduler cancels its wait
    for the running job and logs that as an ERROR with a traceback (a standby test saw it in
    CI)."""
    from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
    from telegram.ext import ApplicationBuilder, ContextTypes

    from bot.logs import JOB_EXECUTOR_LOGGER, NOT_WAITED_LINE, name_unwaited_jobs_in_one_line

    name_unwaited_jobs_in_one_line()
    application = ApplicationBuilder().token("1:test").build()
    queue = application.job_queue
    assert queue is not None
    started, released, recorded = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_job(context: ContextTypes.DEFAULT_TYPE) -> None:
        started.set()
        await released.wait()

    def on_error(event: JobExecutionEvent) -> None:
        recorded.set()

    await queue.start()
    queue.scheduler.add_listener(on_error, EVENT_JOB_ERROR)
    queue.run_once(slow_job, 0, name="broadcast:progress")
    await started.wait()
    caplog.set_level("INFO", logger=JOB_EXECUTOR_LOGGER)
    queue.scheduler.shutdown(wait=False)
    await recorded.wait()  # dispatched after APScheduler logged the cancelled job
    released.set()
    records = [r for r in caplog.records if r.name == JOB_EXECUTOR_LOGGER and r.levelno > 20]
    assert [r.getMessage() for r in records] == [NOT_WAITED_LINE % "broadcast:progress"]
    assert records[0].levelname == "WARNING" and records[0].exc_info is None
    assert "Traceback" not in caplog.text


def test_other_job_errors_keep_their_traceback() -> None:
    from bot.logs import JOB_EXECUTOR_LOGGER, name_unwaited_jobs_in_one_line

    name_unwaited_jobs_in_one_line()
    logger = logging.getLogger(JOB_EXECUTOR_LOGGER)
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, 'Job "%s" raised an exception', ("x",), None
    )
    try:
        raise KeyError("k")
    except KeyError:
        record.exc_info = sys.exc_info()
    assert logger.filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None
