"""/stats for staff: charts as PNG images in the reader's language, then the same figures as
text (for screen readers, and to copy). `/stats tag:NAME` narrows every figure to a tag.

The figures come from one read (`storage.stats`); the drawing runs in a worker thread
(`asyncio.to_thread`), so the bot keeps answering everyone else meanwhile.
"""

from __future__ import annotations

import asyncio
import html
import logging

from telegram import InputFile, Update
from telegram.ext import CommandHandler

from bot.context import HotlineApplication, HotlineContext
from bot.i18n import Translator
from bot.texts.statuses import status_word
from bot.texts.vocabulary import REGION_WORDS, word
from handlers.find_query import BadCriteria, pairs
from handlers.guard import require
from handlers.replies import reply_html
from jobs.stats_charts import month_label, render_charts
from storage import stats
from storage.access import Permission
from storage.tags import normalise_tag

log = logging.getLogger(__name__)
TEXT_LIMIT = 3500


def _days(tr: Translator, days: float | None) -> str:
    return "—" if days is None else tr.format_number(days)


def figures_text(tr: Translator, figures: stats.Figures) -> list[str]:
    """The charts' figures as lines of plain text (escape at use)."""
    n = tr.format_number
    lines = []
    if figures.tag:
        lines.append(tr.gettext("Cases tagged #{tag} only.").format(tag=figures.tag))
    lines.append(tr.gettext("Open cases: {count}").format(count=n(figures.open_total)))
    lines.append(tr.gettext("By status:"))
    lines += [f"  {status_word(tr, s)}: {n(c)}" for s, c in figures.open_by_status]
    lines.append(tr.gettext("By region:"))
    lines += [f"  {word(tr, REGION_WORDS, r)}: {n(c)}" for r, c in figures.open_by_region]
    if figures.open_by_tag:
        lines.append(tr.gettext("By tag:"))
        lines += [f"  #{name}: {n(c)}" for name, c in figures.open_by_tag]
    total = sum(count for _, count in figures.reports_per_week)
    lines.append(
        tr.gettext("Reports in the last 52 weeks: {count}; by week (weeks not listed: 0):").format(
            count=n(total)
        )
    )
    lines += [
        f"  {tr.format_date(monday)}: {n(count)}"
        for monday, count in figures.reports_per_week
        if count
    ]
    lines.append(
        tr.gettext("Median days from report to verified, last 12 months: {days}").format(
            days=_days(tr, figures.median_days_to_verified)
        )
    )
    lines += [
        f"  {month_label(tr, month)}: {_days(tr, days)}" for month, days in figures.days_to_verified
    ]
    lines.append(tr.gettext("Returns home per month:"))
    lines += [
        f"  {month_label(tr, month)}: {n(count)}" for month, count in figures.returns_per_month
    ]
    return lines


def chunks(lines: list[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Lines joined into messages under Telegram's length limit."""
    parts: list[str] = []
    current: list[str] = []
    for line in lines:
        if current and len("\n".join([*current, line])) > limit:
            parts.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        parts.append("\n".join(current))
    return parts


async def stats_command(update: Update, context: HotlineContext) -> None:
    if not await require(update, context, Permission.REVIEW_CASES, action="stats.view"):
        return
    tr, services = context.tr, context.services
    text = update.effective_message.text if update.effective_message else None
    try:
        found = pairs((text or "").partition(" ")[2], ("tag",))
    except BadCriteria:
        found = [("", "")]
    tags = [normalise_tag(value) if key == "tag" else None for key, value in found]
    if len(tags) > 1 or None in tags:
        await reply_html(update, html.escape(tr.gettext("Usage: /stats or /stats tag:NAME")))
        return
    tag = tags[0] if tags else None
    async with services.sessions() as session:
        figures = await stats.compute_figures(
            session, now=services.clock(), timezone=services.settings.timezone, tag=tag
        )
    charts = await asyncio.to_thread(render_charts, tr, figures)
    chat = update.effective_chat
    assert chat is not None
    for chart in charts:
        await chat.send_photo(
            InputFile(chart.png, filename=f"{chart.key}.png"),
            caption=html.escape(chart.title),
            parse_mode="HTML",
        )
    for part in chunks(figures_text(tr, figures)):
        await reply_html(update, html.escape(part))


def register(application: HotlineApplication) -> None:
    application.add_handler(CommandHandler("stats", stats_command))
