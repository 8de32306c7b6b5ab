"""The staff inbox pages by keyset through the real bot: forward and back, every waiting case
shown once and in order, also when cases leave or join the inbox between two presses; and the
query is index ranges, never OFFSET or a sort of every waiting case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, update

from bot.callbacks import CASE, INBOX
from bot.sandbox.state import BotMessage
from storage import case_views
from storage.enums import CaseStatus, Role
from storage.models import Case
from storage.users import set_language
from tests.support.case_factory import make_case
from tests.support.harness import BotHarness
from tests.support.identity import grant

STAFF = 3001
PAGE = 8
START = datetime(2026, 1, 1, tzinfo=UTC)


async def _seed(bot: BotHarness, statuses: list[CaseStatus]) -> list[str]:
    """Cases in inbox order: two share each creation time, so the id breaks the tie."""
    services = bot.services
    assert services is not None
    family = bot.sandbox.add_user(language_code="en").id
    codes = []
    async with services.sessions() as session, session.begin():
        await grant(session, services.keys, STAFF, Role.STAFF)
        await set_language(session, services.keys.key(STAFF), "en")
        for index, status in enumerate(statuses):
            codes.append(
                await make_case(
                    session,
                    services.cipher,
                    keys=services.keys,
                    reporter_id=family,
                    status=status,
                    created_at=START + timedelta(minutes=index // 2),
                )
            )
    return codes


def _shown(message: BotMessage) -> list[str]:
    return [
        data.removeprefix(CASE.head("show"))
        for row in message.buttons
        for _, data in row
        if data and data.startswith(CASE.head("show"))
    ]


def _paging(message: BotMessage, verb: str) -> str | None:
    found = [d for row in message.buttons for _, d in row if d and d.startswith(INBOX.head(verb))]
    return found[0] if found else None


class Inbox:
    """The staff member's inbox message, pressed page by page (each press edits it)."""

    def __init__(self, bot: BotHarness, message: BotMessage) -> None:
        self.bot, self.message, self.edits = bot, message, 0

    async def press(self, verb: str) -> BotMessage:
        data = _paging(self.message, verb)
        assert data is not None, f"no {verb} button"
        await self.bot.sandbox.press(STAFF, self.message.message_id, data)
        self.edits += 1
        self.message = await self.bot.sandbox.wait_for_edit(
            STAFF, self.message.message_id, edits=self.edits
        )
        return self.message


async def _set_status(bot: BotHarness, codes: list[str], status: CaseStatus) -> None:
    """Another staff member moves these cases meanwhile."""
    assert bot.services is not None
    async with bot.services.sessions() as session, session.begin():
        await session.execute(update(Case).where(Case.code.in_(codes)).values(status=status))


async def test_forward_and_back_show_each_case_once_in_order(running_bot: BotHarness) -> None:
    statuses = [CaseStatus.NEED_INFO if i % 3 == 0 else CaseStatus.NEW for i in range(27)]
    statuses[5] = statuses[11] = CaseStatus.VERIFIED  # not waiting: never listed
    codes = await _seed(running_bot, statuses)
    waiting = [c for c, s in zip(codes, statuses, strict=True) if s != CaseStatus.VERIFIED]
    await running_bot.sandbox.send_text(STAFF, "/inbox")
    first = await running_bot.sandbox.next_message(STAFF)
    assert "25 cases are waiting (page 1 of 4)" in first.plain
    assert _paging(first, "p") is None
    inbox = Inbox(running_bot, first)
    pages = [_shown(first)]
    while _paging(inbox.message, "n") is not None:
        pages.append(_shown(await inbox.press("n")))
    assert "(page 4 of 4)" in inbox.message.plain
    assert [code for page in pages for code in page] == waiting
    assert [len(page) for page in pages] == [PAGE, PAGE, PAGE, 1]

    backwards = [_shown(inbox.message)]
    while _paging(inbox.message, "p") is not None:
        backwards.append(_shown(await inbox.press("p")))
    assert backwards[::-1] == pages
    assert "(page 1 of 4)" in inbox.message.plain


async def test_cases_changing_status_between_pages_are_neither_skipped_nor_repeated(
    running_bot: BotHarness,
) -> None:
    codes = await _seed(running_bot, [CaseStatus.NEW] * 20)
    await running_bot.sandbox.send_text(STAFF, "/inbox")
    inbox = Inbox(running_bot, await running_bot.sandbox.next_message(STAFF))
    assert _shown(inbox.message) == codes[:PAGE]
    # Three cases of the page just read are verified: OFFSET would now skip three unread cases.
    await _set_status(running_bot, codes[1:4], CaseStatus.VERIFIED)
    # One unread case leaves, and one of the page read asks the family something (still waiting).
    await _set_status(running_bot, [codes[9]], CaseStatus.VERIFIED)
    await _set_status(running_bot, [codes[0]], CaseStatus.NEED_INFO)
    second = await inbox.press("n")
    assert _shown(second) == [c for c in codes[PAGE : 2 * PAGE + 1] if c != codes[9]]
    assert "16 cases are waiting (page 2 of 3)" in second.plain  # three more follow
    # Back: fewer than a page waits before the first row shown now, so the first page again.
    await _set_status(running_bot, [codes[1]], CaseStatus.NEW)  # back in the inbox
    back = await inbox.press("p")
    assert _shown(back) == [codes[0], codes[1], *codes[4 : PAGE + 1], codes[10]]
    assert "17 cases are waiting (page 1 of 3)" in back.plain and _paging(back, "p") is None
    # The rest of the inbox leaves: forward from the last row shown ends on the last page.
    await _set_status(running_bot, codes[PAGE:], CaseStatus.VERIFIED)
    last = await inbox.press("n")
    assert _shown(last) == [codes[0], codes[1], *codes[4:PAGE]]
    assert "6 cases are waiting (page 1 of 1)" in last.plain


async def test_an_old_or_forged_page_button_is_answered(running_bot: BotHarness) -> None:
    codes = await _seed(running_bot, [CaseStatus.NEW] * 10)
    sandbox = running_bot.sandbox
    await sandbox.send_text(STAFF, "/inbox")
    message = await sandbox.next_message(STAFF)
    inbox = Inbox(running_bot, message)
    for data in (INBOX.build("n", 9, 10**18, 10**18), INBOX.bare(3)):  # far beyond; old form
        query = await sandbox.press(STAFF, message.message_id, data)
        await sandbox.wait_for_callback_answer(query)
        inbox.edits += 1
        inbox.message = await sandbox.wait_for_edit(STAFF, message.message_id, edits=inbox.edits)
        shown = codes[:PAGE] if data == INBOX.bare(3) else codes[-PAGE:]  # first; last
        assert _shown(inbox.message) == shown, data
    for data in ("inbox:n:1:x:2", "inbox:n:1:2", "inbox:p:1:2:3:4", "inbox:q:1:2:3"):
        query = await sandbox.press(STAFF, message.message_id, data)
        answered = await sandbox.wait_for_callback_answer(query)  # the fallback answers it
        assert answered.answered, data
    assert len(sandbox.message(STAFF, message.message_id).edits) == inbox.edits


def _statements(
    bot: BotHarness,
) -> tuple[list[tuple[str, tuple[object, ...]]], Callable[..., None]]:
    assert bot.services is not None
    engine = bot.services.engine.sync_engine
    seen: list[tuple[str, tuple[object, ...]]] = []

    def before(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        seen.append((statement, tuple(params) if isinstance(params, tuple | list) else ()))

    event.listen(engine, "before_cursor_execute", before)
    return seen, before


async def test_a_page_is_index_ranges_without_offset(running_bot: BotHarness) -> None:
    codes = await _seed(running_bot, [CaseStatus.NEW, CaseStatus.NEED_INFO] * 12)
    services = running_bot.services
    assert services is not None
    seen, listener = _statements(running_bot)
    try:
        async with services.sessions() as session:
            first = await case_views.inbox(session)
            assert first.last is not None
            middle = await case_views.inbox(session, after=first.last, page=1)
            assert middle.first is not None
            await case_views.inbox(session, before=middle.first, page=0)
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", listener)
    assert [item.code for item in middle.items] == codes[PAGE : 2 * PAGE]
    reads = [(s, p) for s, p in seen if "FROM cases" in s]
    # SQLite's dialect writes "LIMIT ? OFFSET ?" for any limit: the offset must be 0, always.
    offsets = [p[-1] for s, p in reads if "OFFSET" in s.upper()]
    assert reads and all(s.upper().endswith("LIMIT ? OFFSET ?") for s, _ in reads if "OFFSET" in s)
    assert set(offsets) <= {0}, offsets
    async with services.engine.connect() as connection:
        for statement in {s for s, _ in reads if "ORDER BY" in s}:
            params = _example_params(statement)
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            details = " ".join(str(row[-1]) for row in plan)
            assert "ix_cases_inbox" in details, details
            assert "TEMP B-TREE" not in details, details  # no sort of every waiting case


def _example_params(statement: str) -> tuple[object, ...]:
    """Placeholder values for a plan: the status, a key (if any), the limit."""
    key: list[object] = ["2026-01-01 00:00:00.000000", 1] if statement.count("?") > 3 else []
    return (CaseStatus.NEW.value, *key, PAGE + 1, 0)
