"""Telegram-HTML validation: what Telegram refuses must be refused here too."""

from __future__ import annotations

import pytest

from bot.sandbox.html import EntityParseError, parse_html, parse_text


def test_valid_nested_tags_give_plain_text_and_entities() -> None:
    parsed = parse_html('<b>bold <i>both</i></b> <a href="https://x.org">link</a>')
    assert parsed.plain == "bold both link"
    assert {e["type"] for e in parsed.entities} == {"bold", "italic", "text_link"}
    assert '<a href="https://x.org"' in parsed.safe_html


@pytest.mark.parametrize(
    "text",
    [
        "<u>u</u><ins>i</ins><s>s</s><strike>s</strike><del>d</del><em>e</em><strong>s</strong>",
        '<code>x</code><pre><code class="language-python">y</code></pre>',
        '<tg-spoiler>a</tg-spoiler><span class="tg-spoiler">b</span>',
        "<blockquote>q</blockquote><blockquote expandable>q</blockquote>",
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    ],
)
def test_every_allowed_tag(text: str) -> None:
    assert parse_html(text).plain


@pytest.mark.parametrize(
    "text",
    ["<div>x</div>", "<b>open", "a < b", "a & b", "<b>x</i>", "x</b>", "<span>x</span>", "&foo;"],
)
def test_refused_like_telegram(text: str) -> None:
    with pytest.raises(EntityParseError, match=r"^Bad Request: can't parse entities: "):
        parse_html(text)


def test_entities_are_unescaped() -> None:
    assert parse_html("&lt;&gt;&amp;&quot;&#39;&#x41;").plain == "<>&\"'A"
    assert parse_html("1 &lt; 2").safe_html == "1 &lt; 2"


def test_unsafe_links_and_scripts_do_not_reach_the_browser() -> None:
    safe = parse_html('<a href="javascript:alert(1)">x</a>&lt;script&gt;').safe_html
    assert "javascript" not in safe and "<script>" not in safe


def test_offsets_are_utf16() -> None:
    parsed = parse_html("👍 <b>x</b>")
    assert parsed.entities == [{"type": "bold", "offset": 3, "length": 1}]


def test_other_parse_modes_pass_through() -> None:
    assert parse_text("*a* < b", "MarkdownV2").plain == "*a* < b"
    assert parse_text("<b>", None).safe_html == "&lt;b&gt;"
