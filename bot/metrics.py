"""Prometheus metrics of one bot process (prometheus-client), served on /metrics by `bot/health.py`.

What an operator needs to see: how much waits (the outbox by kind and status, the inbox), how
fast it goes out (`hotline_outbox_sends_total`: its rate() is sends per second), Telegram's 429s,
dead rows, how long an update takes, and whether this process is the leader, a standby or the
only one.

All of it lives in `REGISTRY`, a registry of our own rather than prometheus-client's global
one, so nothing another library registers leaks into /metrics and tests read only ours.

Labels are closed sets (a kind of message, an outcome, a status, a role): never a chat, a user,
a case code or a template parameter, so a scrape (or a monitoring system the adversary reads)
learns volumes, not people.

Counters and the histogram are updated in memory where things happen (one call in
`jobs/delivery.py`, `bot/pacing.py`, `bot/inbox.py`). The database figures are NOT read at
scrape time: a scrape runs on the bot's event loop, and five counts on a database busy with a
broadcast (or locked by another program) could hold it for as long as the lock lasts. Instead
`bot/health.py` refreshes a `Snapshot` every `REFRESH_SECONDS` in a task of its own, and the
collector below only copies the last one (with its age, so stale figures are visible). That
task belongs to the health server rather than to the JobQueue because a standby runs no jobs and
must still report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter, Enum, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage.enums import OutboxKind
from storage.health import OPEN_STATUSES, Figures

T = TypeVar("T")
Role = Literal["single", "leader", "standby"]
ROLES: tuple[Role, ...] = ("single", "leader", "standby")
Outcome = Literal["sent", "retry", "429", "dead"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "retry", "429", "dead")
REFRESH_SECONDS = 15.0
"""How often the database figures are read (bot/health.py)."""

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU seconds, resident memory, open files of this process

SENDS = Counter(
    "hotline_outbox_sends",
    "Outbox sends by kind of message and outcome: sent; retry (network error or 5xx, backing "
    "off); 429 (Telegram's flood limit, rescheduled); dead (refused for good, or past the "
    "retry horizon). rate() of outcome=sent is the delivery rate.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
REPLIES = Counter(
    "hotline_replies",
    "Messages sent in answer to a person (replies, edits) by outcome: sent, or 429.",
    ["outcome"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "hotline_telegram_429",
    "Telegram's 429 (RetryAfter) answers, by what was being sent: outbox or reply.",
    ["source"],
    registry=REGISTRY,
)
UPDATE_SECONDS = Histogram(
    "hotline_update_handling_seconds",
    "From an update taken from the inbox to its handlers done (waiting for the same person's "
    "earlier updates included).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
ROLE = Enum(
    "hotline_role",
    "This process: single (the only one), leader (holds the lock, polls, runs jobs) or standby.",
    states=list(ROLES),
    registry=REGISTRY,
)
for _kind in OutboxKind:  # every series exists from the start: rate() needs a first sample
    for _outcome in OUTCOMES:
        SENDS.labels(kind=_kind.value, outcome=_outcome)
for _source in ("outbox", "reply"):
    RATE_LIMITED.labels(source=_source)
for _reply in ("sent", "429"):
    REPLIES.labels(outcome=_reply)

_role: Role = "single"


def set_role(role: str) -> None:
    """Called by the leadership code when this process becomes leader or standby."""
    global _role
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    _role = role
    ROLE.state(role)


def current_role() -> Role:
    return _role


def outbox_send(kind: str, outcome: Outcome) -> None:
    """One outbox row's send came to `outcome` (jobs/delivery.py)."""
    SENDS.labels(kind=kind, outcome=outcome).inc()
    if outcome == "429":
        RATE_LIMITED.labels(source="outbox").inc()


def reply_sent(result: T) -> T:
    """A reply went out (bot/pacing.py); returns what it is given, to wrap the send's result."""
    REPLIES.labels(outcome="sent").inc()
    return result


def reply_rate_limited() -> None:
    REPLIES.labels(outcome="429").inc()
    RATE_LIMITED.labels(source="reply").inc()


def update_handled(seconds: float) -> None:
    UPDATE_SECONDS.observe(seconds)


# -- the database figures, read by bot/health.py and copied at scrape time ------------------------


@dataclass(frozen=True)
class Snapshot:
    """The last reading of the database (`storage.health.Figures`) and when it was taken."""

    figures: Figures = field(default_factory=Figures)
    taken_at: float | None = None
    """time.monotonic() of the reading; None before the first."""
    ok: bool = False
    """Whether the last attempt to read succeeded (figures are from the last success)."""

    def age(self) -> float | None:
        return None if self.taken_at is None else time.monotonic() - self.taken_at


_snapshot = Snapshot()


def publish(figures: Figures | None) -> Snapshot:
    """Record a reading; None: the database could not be read (the old figures stay, marked)."""
    global _snapshot
    if figures is None:
        _snapshot = Snapshot(_snapshot.figures, _snapshot.taken_at, ok=False)
    else:
        _snapshot = Snapshot(figures, time.monotonic(), ok=True)
    return _snapshot


def snapshot() -> Snapshot:
    return _snapshot


class DatabaseFigures(Collector):
    """Gauges from the last `Snapshot`: nothing here touches the database."""

    def collect(self) -> Iterator[Metric]:
        shot = _snapshot
        figures = shot.figures
        queue = GaugeMetricFamily(
            "hotline_outbox_queue_rows",
            "Outbox rows waiting (pending) or being sent (sending), by kind of message.",
            labels=["kind", "status"],
        )
        for kind in OutboxKind:
            for status in OPEN_STATUSES:
                count = figures.queue.get((kind.value, status.value), 0)
                queue.add_metric([kind.value, status.value], count)
        yield queue
        yield GaugeMetricFamily(
            "hotline_outbox_dead_rows",
            "Outbox rows given up for good, still in the table (retention removes them).",
            value=figures.dead,
        )
        yield GaugeMetricFamily(
            "hotline_outbox_dead_unreported_rows",
            "Dead outbox rows staff have not yet had in a summary.",
            value=figures.dead_unreported,
        )
        yield GaugeMetricFamily(
            "hotline_outbox_oldest_due_seconds",
            "How long the longest-waiting due outbox row has been due (0: none is).",
            value=figures.outbox_oldest_due_seconds,
        )
        yield GaugeMetricFamily(
            "hotline_inbox_waiting_updates",
            "Updates stored in the inbox and not yet handled.",
            value=figures.inbox_waiting,
        )
        yield GaugeMetricFamily(
            "hotline_inbox_oldest_waiting_seconds",
            "How long the oldest unhandled update has waited (0: none does).",
            value=figures.inbox_oldest_seconds,
        )
        yield GaugeMetricFamily(
            "hotline_database_up",
            "1 if the last reading of the database succeeded, else 0.",
            value=1.0 if shot.ok else 0.0,
        )
        age = shot.age()
        yield GaugeMetricFamily(
            "hotline_database_figures_age_seconds",
            "Seconds since the database figures above were read (-1: never).",
            value=-1.0 if age is None else age,
        )


REGISTRY.register(DatabaseFigures())
