"""One send rate for every process on a PostgreSQL database (the bot and its `deliver` workers).

Telegram counts a message when it arrives, which no sender can see. What a sender can see is
that a request arrived after it was started and no later than its answer came back. So the
budget is `capacity` tokens (the rate: sends a second); a sender takes a slice of them before it
starts sends, uses each token for one send, and gives them back with the time each send was
answered; a token is free again a second (plus a margin) after that answer. Two sends on one
token then arrive at least a second apart, so no one-second window ever holds more than
`capacity` arrivals, whatever the scheduling delays of any process, and however many processes
share the budget.

A row of `send_budget` is a number of tokens unusable until `free_at`, the database clock's epoch
seconds: a slice in use is leased (`LEASE_SECONDS`, longer than any request may take) so the
tokens of a killed process come back by themselves; a returned slice is one row per group of
answers. Times come from the database's clock only (`clock_timestamp()`), so processes on other
machines need no synchronised clocks: an answer is dated by how long ago it came back when the
slice is returned.

When no token is free, a taker does not wait for one and then come back for it (a database round
trip after every freed token cost the shared rate a twentieth): it reserves the tokens that free
soonest, the group of answers given back first, and is told how long to wait before using them
(`Taken.usable_in`). Its sends then start no earlier than the group's `free_at`, as if it had
taken them then, so the reasoning above holds; the group's row gives those tokens to the slice.

Taking a slice locks the table for one short statement (all takers queue there; a slice is a
twentieth of a second's worth of sends, so that is a few statements a second). SQLite has no
`deliver` workers (one process sends), so this module is for PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import SessionFactory

LEASE_SECONDS = 30.0
"""How long a slice in use keeps its tokens unless returned: longer than any send request can
last (PTB's connect, write, read and pool timeouts), so a send still in flight never shares its
token; a killed process's tokens are free again after it."""

# `clock()` below is the database clock in epoch seconds (`extract(epoch FROM
# clock_timestamp())`): the one clock every process on the database shares.
_TAKE = text(
    """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
    gone AS (DELETE FROM send_budget WHERE free_at <= (SELECT now FROM clock))
    INSERT INTO send_budget (owner, tokens, free_at)
    SELECT :owner,
           LEAST(:want, :capacity - COALESCE(SUM(tokens), 0)),
           (SELECT now FROM clock) + CAST(:lease AS float8)
    FROM send_budget
    WHERE free_at > (SELECT now FROM clock)
    HAVING COALESCE(SUM(tokens), 0) < :capacity
    RETURNING id, tokens
    """
)
# No token free now: the soonest group of answers given back (not a slice in use, whose lease is
# far off) hands `:want` of its tokens to a new slice, usable once that group's tokens free.
_RESERVE = text(
    """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
    soonest AS (
        SELECT id, tokens, free_at FROM send_budget
        WHERE free_at > (SELECT now FROM clock)
          AND free_at <= (SELECT now FROM clock) + CAST(:ahead AS float8)
          AND tokens > 0
        ORDER BY free_at
        LIMIT 1
    ),
    handed AS (
        UPDATE send_budget SET tokens = send_budget.tokens - LEAST(soonest.tokens, :want)
        FROM soonest WHERE send_budget.id = soonest.id
    ),
    mine AS (
        INSERT INTO send_budget (owner, tokens, free_at)
        SELECT :owner, LEAST(tokens, :want), (SELECT now FROM clock) + CAST(:lease AS float8)
        FROM soonest
        RETURNING id, tokens
    )
    SELECT mine.id, mine.tokens, soonest.free_at - (SELECT now FROM clock)
    FROM mine, soonest
    """
)
RESERVE_AHEAD_SECONDS = 2.0
"""Given-back tokens free at most a second and a margin after an answer: a row freeing later is
a slice in use (its lease), never reserved."""
IN_USE_POLL_SECONDS = 0.1
"""Every token in slices still in use (their answers not back, a slow API): ask again this
soon, since a slice goes back as soon as its answers are in, long before its lease ends."""
_NEXT_FREE = text(
    """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)
    SELECT MIN(free_at) - (SELECT now FROM clock) FROM send_budget
    WHERE free_at > (SELECT now FROM clock)
    """
)
_GIVE_BACK = text(
    """
    INSERT INTO send_budget (owner, tokens, free_at)
    VALUES (:owner, :tokens, extract(epoch FROM clock_timestamp())::float8 + CAST(:after AS float8))
    """
)
_IN_USE = text(
    """
    SELECT COALESCE(SUM(tokens), 0) FROM send_budget
    WHERE free_at > extract(epoch FROM clock_timestamp())::float8
    """
)


@dataclass(frozen=True)
class Taken:
    """A slice: `tokens` sends may start in `usable_in` seconds (0: none free; the next frees
    in `wait` seconds)."""

    slice_id: int | None
    tokens: int
    wait: float = 0.0
    usable_in: float = 0.0


async def take(
    session: AsyncSession, *, owner: str, want: int, capacity: int, lease: float = LEASE_SECONDS
) -> Taken:
    """Up to `want` tokens of `capacity`, for `owner`, free now or (reserved) as soon as any
    frees; run it in its own short transaction (the table lock is held until it commits, and
    the sends may start only after the commit, and `usable_in` after the statement)."""
    await session.execute(text("LOCK TABLE send_budget IN SHARE ROW EXCLUSIVE MODE"))
    row = (
        await session.execute(
            _TAKE, {"owner": owner[:32], "want": want, "capacity": capacity, "lease": lease}
        )
    ).first()
    if row is not None:
        return Taken(int(row[0]), int(row[1]))
    reserved = (
        await session.execute(
            _RESERVE,
            {
                "owner": owner[:32],
                "want": want,
                "lease": lease,
                "ahead": RESERVE_AHEAD_SECONDS,
            },
        )
    ).first()
    if reserved is not None:
        return Taken(int(reserved[0]), int(reserved[1]), usable_in=max(0.0, float(reserved[2])))
    wait = float(await session.scalar(_NEXT_FREE) or 0.0)
    if wait > RESERVE_AHEAD_SECONDS:  # only slices in use: their lease is no measure
        wait = IN_USE_POLL_SECONDS
    return Taken(None, 0, max(0.0, wait))


async def give_back(
    session: AsyncSession, slice_id: int, *, owner: str, answered: Iterable[tuple[float, int]]
) -> None:
    """Return a slice: `answered` is (seconds the tokens stay unusable from now, how many tokens)
    per group of answers (a second plus the margin after each answer, minus how long ago it
    came back); tokens not used are free at once. One transaction: the slice's row becomes
    those rows."""
    await session.execute(text("DELETE FROM send_budget WHERE id = :id"), {"id": slice_id})
    rows = [
        {"owner": owner[:32], "tokens": tokens, "after": after}
        for after, tokens in answered
        if after > 0 and tokens > 0
    ]
    if rows:
        await session.execute(_GIVE_BACK, rows)


async def in_use(session: AsyncSession) -> int:
    """Tokens not free now (tests, and a look at a running system)."""
    value = await session.scalar(_IN_USE)
    return int(value or 0)


class DatabaseBudget:
    """The budget in the database, for `jobs.pacer.SharedBudget`: each call its own transaction."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def take(self, owner: str, want: int, capacity: int) -> Taken:
        async with self.sessions() as session, session.begin():
            return await take(session, owner=owner, want=want, capacity=capacity)

    async def give_back(self, slice_id: int, owner: str, answered: list[tuple[float, int]]) -> None:
        async with self.sessions() as session, session.begin():
            await give_back(session, slice_id, owner=owner, answered=answered)
