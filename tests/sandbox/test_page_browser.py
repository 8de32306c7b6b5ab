"""The web chat page in a real browser (Debian's chromium driven by Playwright): a person sends a
photo and a document from the page, sees the bot's answers with their attachments, and a message
the bot deletes while the page is open disappears without a reload."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot

from bot.sandbox.server import SandboxServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAMILY = 1001


def _missing(reason: str) -> None:
    """Skip where the browser is not installed; in CI (CI=true) that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


def _require_browser() -> None:
    if not CHROMIUM.exists():
        _missing(f"no {CHROMIUM}: `apt-get install chromium` to test the page in a browser")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")


def png(width: int, height: int) -> bytes:
    """A real PNG (a colour gradient), so the page has a picture to show."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((40 + x % 200, 90 + y % 160, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def page(server: SandboxServer) -> AsyncIterator[Any]:
    _require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            opened = await browser.new_page(viewport={"width": 520, "height": 900})
            await opened.goto(server.web_url)
            yield opened
        finally:
            await browser.close()


async def test_page_sends_files_shows_attachments_and_drops_deleted_messages(
    server: SandboxServer, bot: Bot, page: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await expect(page.locator("#who")).to_have_text(f"user id {FAMILY}")

    async def attach_and_send(name: str, mime: str, data: bytes, caption: str) -> None:
        await page.set_input_files(
            "#file", files=[{"name": name, "mimeType": mime, "buffer": data}]
        )
        await expect(page.locator("#attach")).to_be_visible()
        await page.fill("#text", caption)
        await page.click("#form button[type=submit]")
        await expect(page.locator("#attach")).to_be_hidden()

    await attach_and_send("son.png", "image/png", png(160, 120), "my son")
    await attach_and_send("letter.pdf", "application/pdf", b"%PDF-1.4 letter", "the letter")
    await server.wait_for(lambda: len(server.world.user_messages.get(FAMILY, [])) == 2)
    photo_message, document_message = server.world.user_messages[FAMILY]
    assert photo_message.kind == "photo" and photo_message.text == "my son"
    assert document_message.kind == "document"
    assert document_message.raw["document"]["file_name"] == "letter.pdf"

    # The bot answers with the family's own files, a voice message and a text it then deletes.
    photo_id = photo_message.raw["photo"][-1]["file_id"]
    photo = await bot.send_photo(
        FAMILY, photo_id, caption="We received the photo", protect_content=True
    )
    document = await bot.send_document(
        FAMILY, document_message.raw["document"]["file_id"], caption="and the letter"
    )
    voice = await bot.send_voice(FAMILY, b"OggS\x00\x02" + bytes(40), caption="A word from us")
    secret = await bot.send_message(FAMILY, "Your case code is K7M4-9XQ2")

    def bubble(message_id: int) -> Any:
        return page.locator(f'[data-id="bot{message_id}"]')

    await expect(bubble(secret.message_id)).to_contain_text("K7M4-9XQ2")
    await expect(bubble(photo.message_id).locator("img.thumb")).to_be_visible()
    await page.wait_for_function(
        "sel => { const i = document.querySelector(sel);"
        " return i !== null && i.complete && i.naturalWidth > 0; }",
        arg=f'[data-id="bot{photo.message_id}"] img.thumb',
    )
    await expect(bubble(photo.message_id).locator(".protected")).to_contain_text("protected")
    await expect(bubble(document.message_id)).not_to_contain_text("protected")
    await expect(bubble(document.message_id).locator("a.file")).to_have_text("📄 letter.pdf")
    await expect(bubble(voice.message_id).locator("audio")).to_have_count(1)
    await expect(
        page.locator(f'[data-id="user{photo_message.message_id}"] img.thumb')
    ).to_be_visible()

    await bot.delete_message(FAMILY, secret.message_id)
    await expect(bubble(secret.message_id)).to_have_text("message deleted")
    await expect(page.get_by_text("K7M4-9XQ2")).to_have_count(0)
    await page.screenshot(path=str(tmp_path / "sandbox-page.png"), full_page=True)
    await expect(bubble(photo.message_id).locator("img.thumb")).to_be_visible()
