"""The /stats charts as PNG images, in the reader's language, with the same figures as text.

Matplotlib draws them (the Agg backend: no display, no GUI toolkit): it is the plotting library
the scientific Python world maintains, renders PNG without a browser or a server, and its
bundled DejaVu Sans has every letter of Ukrainian, Russian and Crimean Tatar. Drawing takes a
few hundred milliseconds of CPU, so `render_charts` is called in a worker thread
(`asyncio.to_thread`), never on the bot's event loop; one lock keeps one drawing at a time
(matplotlib's font cache is shared).

Each PNG carries the numbers it was drawn from, with their labels, as JSON in its "Description"
text chunk: what a reader's software can read out, and what tests compare with the database.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.i18n import N_, Translator
from bot.texts.statuses import status_word
from bot.texts.vocabulary import REGION_WORDS, word
from storage.stats import Figures

WIDTH, HEIGHT, DPI = 8.0, 4.5, 100
BAR = "#2f6f9f"
_LOCK = threading.Lock()

TITLES = {
    "status": N_("Open cases by status"),
    "region": N_("Open cases by region"),
    "tag": N_("Open cases by tag"),
    "weeks": N_("Reports per week, last 52 weeks"),
    "verified": N_("Median days from report to verified, by month"),
    "returns": N_("Returns home per month"),
}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    labels: list[str]
    values: list[float | None]
    png: bytes

    def description(self) -> dict[str, Any]:
        return {
            "chart": self.key,
            "title": self.title,
            "labels": self.labels,
            "values": self.values,
        }


def month_label(tr: Translator, first: date) -> str:
    """`03.2026` (uk, crh, ru, as their dates are written), `Mar 2026` (en)."""
    return first.strftime("%b %Y") if tr.lang == "en" else f"{first.month:02d}.{first.year}"


def series(tr: Translator, figures: Figures) -> list[tuple[str, list[str], list[float | None]]]:
    """(chart key, labels, values) of every chart, labels in the reader's language."""
    charts: list[tuple[str, list[str], list[float | None]]] = [
        (
            "status",
            [status_word(tr, status) for status, _ in figures.open_by_status],
            [float(count) for _, count in figures.open_by_status],
        ),
        (
            "region",
            [word(tr, REGION_WORDS, region) for region, _ in figures.open_by_region],
            [float(count) for _, count in figures.open_by_region],
        ),
    ]
    if figures.open_by_tag:
        charts.append(
            (
                "tag",
                [name for name, _ in figures.open_by_tag],
                [float(count) for _, count in figures.open_by_tag],
            )
        )
    charts += [
        (
            "weeks",
            [tr.format_date(monday) for monday, _ in figures.reports_per_week],
            [float(count) for _, count in figures.reports_per_week],
        ),
        (
            "verified",
            [month_label(tr, first) for first, _ in figures.days_to_verified],
            [days for _, days in figures.days_to_verified],
        ),
        (
            "returns",
            [month_label(tr, first) for first, _ in figures.returns_per_month],
            [float(count) for _, count in figures.returns_per_month],
        ),
    ]
    return charts


def _draw(key: str, title: str, labels: list[str], values: list[float | None]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn = [0.0 if value is None else value for value in values]
    if key in ("status", "region", "tag"):
        positions = list(range(len(labels)))[::-1]
        bars = axes.barh(positions, drawn, color=BAR)
        axes.set_yticks(positions, labels=labels, fontsize=8)
        axes.bar_label(bars, labels=[f"{v:g}" for v in drawn], fontsize=8, padding=2)
        axes.margins(x=0.12)
    else:
        positions = list(range(len(labels)))
        if key == "weeks":
            axes.plot(positions, drawn, color=BAR, linewidth=1.5)
            axes.fill_between(positions, drawn, color=BAR, alpha=0.2)
            step = max(1, len(labels) // 8)
            axes.set_xticks(positions[::step], labels=labels[::step], fontsize=7, rotation=30)
        else:
            bars = axes.bar(positions, drawn, color=BAR)
            shown = ["" if v is None else f"{v:g}" for v in values]
            axes.bar_label(bars, labels=shown, fontsize=7, padding=2)
            axes.set_xticks(positions, labels=labels, fontsize=7, rotation=45, ha="right")
        axes.set_ylim(bottom=0)
    counts = axes.xaxis if key in ("status", "region", "tag") else axes.yaxis
    if key != "verified":
        counts.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    out = io.BytesIO()
    description = json.dumps({"chart": key, "title": title, "labels": labels, "values": values})
    figure.savefig(out, format="png", metadata={"Title": key, "Description": description})
    return out.getvalue()


def render_charts(tr: Translator, figures: Figures) -> list[Chart]:
    """Every chart of `figures` as a PNG (blocking: call it in a worker thread)."""
    charts = []
    with _LOCK:
        for key, labels, values in series(tr, figures):
            title = tr.gettext(TITLES[key])
            charts.append(Chart(key, title, labels, values, _draw(key, title, labels, values)))
    return charts
