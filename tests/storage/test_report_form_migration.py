"""Migration 0003's report-form section: `place` and `held_at` keep their values under the names
that say what they hold, `report_forms` comes and goes; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from storage.db import make_engine
from tests.storage.test_migration_keeps_data import _migrate, _seed


def _personal(connection: Connection, place: str, held: str) -> tuple[object, object]:
    row = connection.execute(text(f"SELECT {place}, {held} FROM case_personal")).one()
    return bytes(row[0]), bytes(row[1])


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_renamed_columns_keep_their_values_both_ways(database_url: str) -> None:
    engine = make_engine(database_url)
    url = engine.url.render_as_string(hide_password=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "0002")
            await connection.run_sync(_seed)
            await connection.execute(
                text("UPDATE case_personal SET place = :p, held_at = :h"),
                {"p": b"token-of-the-place", "h": b"token-of-the-prison"},
            )
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "head")
            assert await connection.run_sync(_personal, "arrest_place", "held_in") == (
                b"token-of-the-place",
                b"token-of-the-prison",
            )
            assert "report_forms" in await connection.run_sync(_tables)
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, url, "0002", down=True)
            assert await connection.run_sync(_personal, "place", "held_at") == (
                b"token-of-the-place",
                b"token-of-the-prison",
            )
            assert "report_forms" not in await connection.run_sync(_tables)
    finally:
        await engine.dispose()
