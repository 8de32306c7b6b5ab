"""An update from the inbox is marked handled in the same transaction as its first write.

Marking an update only after its handlers finish would leave a window, between a handler's
commit (a family's message filed, a status changed, an answer saved) and the mark, in which a
crash has the update handled again at the next start: a message filed twice, or an answer
taken as the answer to the next question. So the mark rides in the first transaction that
writes something while the update is handled (storage does one transaction per operation): a
crash before it replays the update, which had no effect yet; a crash after it does not, and the
effect is there once. An update that writes nothing (/help, a refused sticker) is marked after
its handlers; a crash before that repeats its reply, nothing else.

The writes of the profile middleware (group -100: the user's row, every update) do not count:
`arm` runs right after it. Only the task handling the update carries its mark; jobs, other
users' updates and tasks it starts do not. Each session that writes is seen through SQLAlchemy's
session events, so no storage function needs to know about the inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from storage.inbox import mark_handled_in

ARM_GROUP = -99
"""The handler group of `arm`: right after the profile middleware (-100)."""
_WROTE = "inbox.wrote"
_MARKING = "inbox.marking"


@dataclass
class Handling:
    """The update the current task handles, and whether its mark is committed."""

    update_id: int
    forget_keys: Callable[[list[bytes]], None]
    task: asyncio.Task[Any] | None = field(default_factory=asyncio.current_task)
    armed: bool = False
    marked: bool = False


_HANDLING: ContextVar[Handling | None] = ContextVar("inbox_handling", default=None)


@contextmanager
def handling(update_id: int, forget_keys: Callable[[list[bytes]], None]) -> Any:
    """While the current task handles `update_id`; yields its `Handling`."""
    current = Handling(update_id, forget_keys)
    token = _HANDLING.set(current)
    try:
        yield current
    finally:
        _HANDLING.reset(token)


def committed() -> bool:
    """Whether the update the current task handles has committed a write (its mark rode in
    it): what the person did is stored, whatever fails after it (the error handler asks)."""
    current = _HANDLING.get()
    return current is not None and current.marked


async def arm(update: object, context: object) -> None:
    """A handler (group `ARM_GROUP`): from here on, a write carries the update's mark."""
    current = _HANDLING.get()
    if current is not None:
        current.armed = True


def _waiting_mark() -> Handling | None:
    current = _HANDLING.get()
    if current is None or not current.armed or current.marked:
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop: not the handling task
        return None
    return current if task is current.task else None


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and _waiting_mark() is not None:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context: UOWTransaction) -> None:
    if _waiting_mark() is not None:
        session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _carry_mark(session: Session) -> None:
    current = _waiting_mark()
    if current is None:
        return
    pending = bool(session.new or session.deleted or session.dirty)
    if session.info.pop(_WROTE, False) or pending:
        session.info[_MARKING] = (current, mark_handled_in(session, [current.update_id]))


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    session.info.pop(_WROTE, None)
    marking = session.info.pop(_MARKING, None)
    if marking is not None:
        current, destroyed = marking
        current.marked = True
        current.forget_keys(destroyed)


@event.listens_for(Session, "after_rollback")
def _mark_rolled_back(session: Session) -> None:
    session.info.pop(_WROTE, None)
    session.info.pop(_MARKING, None)
