"""The `send_budget` statements on a real PostgreSQL (the only engine with `deliver` workers):
tokens are never more than the capacity, and a taker finding none free reserves the soonest
given-back group, told how long to wait, instead of coming back for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import send_budget
from tests.support.databases import Db, fresh_postgres_database, migrated_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg(data_key: str) -> AsyncIterator[Db]:
    async with fresh_postgres_database() as url, migrated_database(url, data_key) as database:
        yield database


async def take(db: Db, owner: str, want: int, capacity: int = 10) -> send_budget.Taken:
    async with db.sessions() as session, session.begin():
        return await send_budget.take(session, owner=owner, want=want, capacity=capacity)


async def in_use(db: Db) -> int:
    async with db.sessions() as session:
        return await send_budget.in_use(session)


async def test_free_tokens_are_taken_at_once_up_to_the_capacity(pg: Db) -> None:
    first = await take(pg, "a", 6)
    second = await take(pg, "b", 6)
    assert (first.tokens, first.usable_in) == (6, 0.0)
    assert (second.tokens, second.usable_in) == (4, 0.0)  # what is left of 10
    assert await in_use(pg) == 10


async def test_none_free_reserves_the_soonest_given_back_group(pg: Db) -> None:
    slice_a = await take(pg, "a", 10)
    assert slice_a.slice_id is not None
    async with pg.sessions() as session, session.begin():  # answered: free in 0.6 s and 0.9 s
        await send_budget.give_back(
            session, slice_a.slice_id, owner="a", answered=[(0.9, 3), (0.6, 7)]
        )
    reserved = await take(pg, "b", 4)
    assert reserved.slice_id is not None and reserved.tokens == 4
    assert 0.3 < reserved.usable_in <= 0.6  # the group freeing soonest, not the later one
    assert await in_use(pg) == 10  # handed over, not added

    rest = await take(pg, "c", 5)
    assert rest.tokens == 3 and 0.3 < rest.usable_in <= 0.6  # the group's other 3
    later = await take(pg, "d", 5)
    assert later.tokens == 3 and 0.6 < later.usable_in <= 0.9
    assert await in_use(pg) == 10


async def test_only_slices_in_use_nothing_is_reserved_ask_again_soon(pg: Db) -> None:
    """Their lease (30 s) is no measure of when they come back: as soon as their answers do
    (a slow API held every token for seconds, and the taker then waited out the lease)."""
    await take(pg, "a", 10)  # leased, not given back
    none = await take(pg, "b", 1)
    assert (none.slice_id, none.tokens) == (None, 0)
    assert none.wait == send_budget.IN_USE_POLL_SECONDS
    assert await in_use(pg) == 10
