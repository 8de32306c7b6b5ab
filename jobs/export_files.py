"""Export files: CSV, XLSX or JSON, written as the rows stream in, optionally encrypted.

Rows come from `storage.export.rows` a batch at a time; each batch is written in a worker thread
(`asyncio.to_thread`), so building a 100,000-case spreadsheet never blocks the bot's event loop,
and only one batch is in memory. XLSX is written by openpyxl in write-only mode (rows go to the
sheet as they come, the workbook is zipped at the end); openpyxl also reads it back in tests.
CSV is UTF-8 with a byte-order mark, which is what Excel needs to show Cyrillic letters.

With a passphrase, the bytes go through `jobs.export_crypto.EncryptingWriter` before they
reach the file. A CSV or JSON export then never exists in clear on disk; openpyxl keeps the
sheet in a temporary file of the system's until the workbook is saved, so for a full export on
a shared machine prefer CSV or JSON (README).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from enum import StrEnum
from typing import Any, BinaryIO, Protocol

from jobs.export_crypto import EncryptingWriter
from storage import export
from storage.crypto import FieldCipher
from storage.db import SessionFactory

BATCH = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what XLSX cells may not hold


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


MIME_TYPES = {
    Format.CSV: "text/csv",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.JSON: "application/json",
}


class RowWriter(Protocol):
    def write(self, rows: list[list[Any]]) -> None: ...

    def close(self) -> None: ...


class _Csv:
    def __init__(self, columns: tuple[str, ...], target: BinaryIO) -> None:
        self._text = io.TextIOWrapper(target, encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(columns)

    def write(self, rows: list[list[Any]]) -> None:
        self._csv.writerows(["" if value is None else value for value in row] for row in rows)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _Json:
    """A JSON array of objects, one line each."""

    def __init__(self, columns: tuple[str, ...], target: BinaryIO) -> None:
        self._columns = columns
        self._text = io.TextIOWrapper(target, encoding="utf-8", newline="\n")
        self._text.write("[")
        self._first = True

    def write(self, rows: list[list[Any]]) -> None:
        for row in rows:
            item = json.dumps(dict(zip(self._columns, row, strict=True)), ensure_ascii=False)
            self._text.write(("\n" if self._first else ",\n") + item)
            self._first = False

    def close(self) -> None:
        self._text.write("\n]\n")
        self._text.flush()
        self._text.detach()


class _Xlsx:
    def __init__(self, columns: tuple[str, ...], target: BinaryIO, title: str) -> None:
        from openpyxl import Workbook

        self._target = target
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title)
        self._sheet.append(list(columns))

    def write(self, rows: list[list[Any]]) -> None:
        for row in rows:
            self._sheet.append(
                [_CONTROL.sub("", value) if isinstance(value, str) else value for value in row]
            )

    def close(self) -> None:
        self._book.save(self._target)


def open_writer(
    file_format: Format, columns: tuple[str, ...], target: BinaryIO, title: str
) -> RowWriter:
    if file_format == Format.CSV:
        return _Csv(columns, target)
    if file_format == Format.JSON:
        return _Json(columns, target)
    return _Xlsx(columns, target, title)


def file_name(sheet: export.Sheet, file_format: Format, *, encrypted: bool, day: str) -> str:
    kind = "anonymised" if sheet.anonymised else "full"
    name = f"hotline-{sheet.what}-{kind}-{day}.{file_format}"
    return name + ".enc" if encrypted else name


async def write_export(
    sessions: SessionFactory,
    cipher: FieldCipher,
    sheet: export.Sheet,
    file_format: Format,
    target: BinaryIO,
    *,
    passphrase: str | None = None,
) -> int:
    """Stream `sheet` into `target` (encrypted to `passphrase` if given); returns the rows."""
    sink: Any = EncryptingWriter(target, passphrase) if passphrase else target
    writer = await asyncio.to_thread(open_writer, file_format, sheet.columns, sink, sheet.what)
    count = 0
    batch: list[list[Any]] = []
    async with sessions() as session:
        async for row in export.rows(session, cipher, sheet):
            batch.append(row)
            if len(batch) >= BATCH:
                await asyncio.to_thread(writer.write, batch)
                count += len(batch)
                batch = []
    if batch:
        await asyncio.to_thread(writer.write, batch)
        count += len(batch)
    await asyncio.to_thread(writer.close)
    if passphrase:
        await asyncio.to_thread(sink.close)
    return count
