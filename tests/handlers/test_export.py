"""/export through the real bot: the files arrive protected, read back (CSV, XLSX, JSON) equal to
the database, and the anonymised ones hold no sealed field's plaintext, no user key and no
Telegram id. The command line's export encrypted to a passphrase decrypts to the same rows."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.__main__ import main
from bot.app import open_services
from bot.callbacks import EXPORT
from bot.settings import load_settings
from storage.data_keys import case_cipher
from storage.enums import CaseStatus, Custody, Region, Visibility
from storage.models import AuditEntry, Case, CaseEvent, CasePersonal, CaseRecord
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness

ADMIN = 9001
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
REPORTERS = [7101, 7102, 7103, 7104]
CASES = [  # name, visibility, custody, articles
    ("Ablyaziz Veliev", Visibility.PUBLIC, Custody.COLONY, [{"number": "205.5", "part": 2}]),
    ("Server Mustafayev", Visibility.ANONYMOUS, Custody.PRE_TRIAL, [{"number": "278"}]),
    ("Nariman Dzhelyal", Visibility.STAFF_ONLY, None, None),
    ("Iryna Danylovych", Visibility.PUBLIC, Custody.COLONY, None),
]
SEALED_WORDS = ["Ablyaziz", "Mustafayev", "Dzhelyal", "Danylovych", "SIZO-1", "asthma"]


async def seed(services: object) -> list[str]:
    from bot.services import Services

    assert isinstance(services, Services)
    codes = []
    async with services.sessions() as session, session.begin():
        for n, (name, visibility, custody, articles) in enumerate(CASES):
            code = await make_case(
                session, services.cipher, keys=services.keys, reporter_id=REPORTERS[n],
                name=name, visibility=visibility, status=CaseStatus.VERIFIED,
                region=Region.CRIMEA if n % 2 else Region.KHERSON,
                created_at=NOW - timedelta(days=n + 1),
            )  # fmt: skip
            case = await session.scalar(select(Case).where(Case.code == code))
            assert case is not None
            case.custody = custody
            case.detention_date = date(2019, 3, 27)
            keyed = await case_cipher(session, services.cipher, case.id)
            personal = await session.get(CasePersonal, case.id)
            assert personal is not None
            personal.held_in = keyed.seal("SIZO-1 Simferopol")
            personal.health = keyed.seal("asthma")
            session.add(CaseRecord(case_id=case.id, articles=articles, updated_at=NOW))
            codes.append(code)
    return codes


async def database_cases(bot: BotHarness) -> dict[str, dict[str, str | None]]:
    services = bot.services
    assert services is not None
    found: dict[str, dict[str, str | None]] = {}
    async with services.sessions() as session:
        for case in await session.scalars(select(Case)):
            keyed = await case_cipher(session, services.cipher, case.id)
            personal = await session.get(CasePersonal, case.id)
            assert personal is not None
            found[case.code] = {
                "status": case.status,
                "region": case.region,
                "visibility": case.visibility,
                "custody": case.custody,
                "detainee_name": keyed.open(personal.detainee_name),
                "held_in": keyed.open(personal.held_in),
            }
    return found


async def exported(bot: BotHarness, command: str) -> tuple[bytes, bool]:
    sandbox = bot.sandbox
    before = len(sandbox.messages(ADMIN))
    await sandbox.send_text(ADMIN, command)
    messages = await sandbox.wait_for_messages(ADMIN, before + 2)
    documents = [m for m in messages[before:] if m.document is not None]
    assert len(documents) == 1, [m.plain for m in messages[before:]]
    data, _ = sandbox.world.files[documents[0].document["file_id"]]  # type: ignore[index]
    return data, documents[0].protect_content


def assert_nothing_identifying(bot: BotHarness, text: str) -> None:
    for word in SEALED_WORDS:
        assert word not in text
    for telegram_id in REPORTERS:
        assert str(telegram_id) not in text
        assert str(bot.key(telegram_id)) not in text


async def test_full_csv_reads_back_as_the_database(running_bot: BotHarness) -> None:
    assert running_bot.services is not None
    await seed(running_bot.services)
    data, protected = await exported(running_bot, "/export cases csv full")
    assert protected
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    stored = await database_cases(running_bot)
    assert {row["code"] for row in rows} == set(stored)
    for row in rows:
        expected = stored[row["code"]]
        for column in ("status", "region", "visibility", "detainee_name", "held_in"):
            assert row[column] == (expected[column] or ""), column
        assert row["custody"] == (expected["custody"] or "")
    assert "205.5 p.2" in {row["articles"] for row in rows}
    async with running_bot.services.sessions() as session:
        audited = await session.scalar(
            select(AuditEntry.detail).where(AuditEntry.action == "export.cases")
        )
    assert audited == "full csv: 4 rows"


async def test_anonymised_xlsx_by_buttons_has_only_publishable_cases_and_nothing_identifying(
    running_bot: BotHarness,
) -> None:
    assert running_bot.services is not None
    await seed(running_bot.services)
    sandbox = running_bot.sandbox
    await sandbox.send_text(ADMIN, "/export")
    menu = await sandbox.next_message(ADMIN)
    await sandbox.press(ADMIN, menu.message_id, EXPORT.build("what", "cases"))
    formats = await sandbox.next_message(ADMIN)
    go = EXPORT.build("go", "cases", "xlsx", "anonymised")
    assert go in formats.callback_data
    await sandbox.press(ADMIN, formats.message_id, go)
    sent = await sandbox.next_message(ADMIN)
    assert sent.document is not None and sent.protect_content
    data, _ = sandbox.world.files[sent.document["file_id"]]
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    assert sheet is not None
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header == [
        "code", "region", "status", "custody", "articles", "detention_date", "reported_at",
        "updated_at",
    ]  # fmt: skip
    stored = await database_cases(running_bot)
    publishable = {
        code for code, case in stored.items() if case["visibility"] != Visibility.STAFF_ONLY
    }
    assert {row[0] for row in rows} == publishable
    for row in rows:
        assert row[1:4] == [stored[row[0]]["region"], "verified", stored[row[0]]["custody"]]
        assert row[5] == "2019-03-27"
    cells = " ".join(str(cell) for row in rows for cell in row)
    assert_nothing_identifying(running_bot, cells)


@pytest.mark.parametrize("what", ["events", "audit"])
async def test_anonymised_json_and_csv_of_history_and_audit(
    running_bot: BotHarness, what: str
) -> None:
    assert running_bot.services is not None
    await seed(running_bot.services)
    await exported(running_bot, "/export cases csv full")  # something in the audit log
    data, _ = await exported(running_bot, f"/export {what} json anonymised")
    text = data.decode("utf-8")
    items = json.loads(text)
    assert_nothing_identifying(running_bot, text)
    async with running_bot.services.sessions() as session:
        if what == "events":
            count = await session.scalar(
                select(func.count())
                .select_from(CaseEvent)
                .join(Case, Case.id == CaseEvent.case_id)
                .where(Case.visibility != Visibility.STAFF_ONLY)
            )
            assert {tuple(item) for item in items} == {
                ("code", "kind", "old_status", "new_status", "at")
            }
        else:
            count = await session.scalar(select(func.count()).select_from(AuditEntry)) - 1
            assert all(set(item) == {"at", "action", "outcome"} for item in items)
    assert len(items) == count
    raw, _ = await exported(running_bot, f"/export {what} csv anonymised")
    assert_nothing_identifying(running_bot, raw.decode("utf-8-sig"))


def test_command_line_export_encrypted_to_a_passphrase(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HOTLINE_DATA_KEY", data_key)
    monkeypatch.setenv("HOTLINE_EXPORT_PASSPHRASE", "correct horse battery staple")

    async def prepare() -> None:
        services = await open_services(load_settings())
        try:
            await seed(services)
        finally:
            await services.engine.dispose()

    asyncio.run(prepare())
    sealed, opened = tmp_path / "cases.json.enc", tmp_path / "cases.json"
    args = ["export", "--what", "cases", "--format", "json", "--encrypt", "--out", str(sealed)]
    assert main(args) == 0
    assert sealed.stat().st_mode & 0o077 == 0
    assert b"Veliev" not in sealed.read_bytes()
    assert main(["decrypt-export", str(sealed), str(opened)]) == 0
    items = json.loads(opened.read_text("utf-8"))
    assert {item["detainee_name"] for item in items} == {name for name, *_ in CASES}
    monkeypatch.setenv("HOTLINE_EXPORT_PASSPHRASE", "wrong")
    opened.unlink()
    assert main(["decrypt-export", str(sealed), str(opened)]) == 1
    assert not opened.exists()
    cut = tmp_path / "cut.enc"
    cut.write_bytes(sealed.read_bytes()[:-10])
    monkeypatch.setenv("HOTLINE_EXPORT_PASSPHRASE", "correct horse battery staple")
    assert main(["decrypt-export", str(cut), str(opened)]) == 1
    assert "4 rows" in capsys.readouterr().out
