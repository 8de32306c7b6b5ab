"""The report form being filled in: where the relative is and their answers, moved as one.

One `report_forms` row per user (their user key) holds the form's state (consent, a question, the
summary), the question asked, whether an answer returns to the summary, the form's version and
the answers (sealed JSON, keyed by field key, with the message id of each typed answer so an edit
of it can be recognised). Every step writes that row in ONE transaction, committed before the
bot sends the next question: the state a user sees is never ahead of the state stored, and
answers and state cannot drift apart.

Each form has a data key of its own (`storage.data_keys`), destroyed when the form ends (filed,
cancelled, consent refused, /forget, retention), so its copies in the WAL or a backup die too.

A release that adds, removes, renames or reorders questions changes the form's version
(`storage.fields.Registry.version`); `carry_over` brings an open form to the current one:
answers of fields that still exist are kept (renamed keys mapped), the question asked is found
again by its key, or the first unanswered one is asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fields
from storage.crypto import FieldCipher
from storage.data_keys import destroy_keys, new_key
from storage.fields import Json, Registry
from storage.models import DataKey, ReportForm

LEGACY_VERSION = "ptb"
"""The version of a form converted from the PTB conversation of earlier releases."""


class State(StrEnum):
    CONSENT = "consent"
    QUESTION = "question"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Form:
    """An open report form. `answers` maps field keys to checked answers (None: skipped);
    `sources` maps a field key to the message id of its typed answer; `kept` holds the keys
    answered on the urgent path (`urgent_case`), which the form does not ask again."""

    version: str
    state: State = State.CONSENT
    step: str | None = None  # the question asked, in state QUESTION
    editing: bool = False  # the answer returns to the summary
    answers: dict[str, Json] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    kept: frozenset[str] = frozenset()
    urgent_case: int | None = None

    def from_urgent(self, case_id: int, answers: dict[str, Json]) -> Form:
        """Starting from an urgent report's answers (those the registry's form still asks)."""
        form_keys = {f.key for f in fields.REGISTRY.form}
        kept = {key: value for key, value in answers.items() if key in form_keys}
        return replace(
            self,
            answers={**self.answers, **kept},
            kept=frozenset(kept),
            urgent_case=case_id,
        )

    def at(self, step: str, *, editing: bool | None = None) -> Form:
        """Asking the question `step`."""
        return replace(
            self,
            state=State.QUESTION,
            step=step,
            editing=self.editing if editing is None else editing,
        )

    def at_summary(self) -> Form:
        return replace(self, state=State.SUMMARY, step=None, editing=False)

    def at_consent(self) -> Form:
        return replace(self, state=State.CONSENT, step=None, editing=False)

    def answered(self, key: str, answer: Json, source: int | None = None) -> Form:
        """With `answer` for `key` (the message id of a typed one, else none any more)."""
        sources = {k: v for k, v in self.sources.items() if k != key}
        if source is not None:
            sources[key] = source
        return replace(self, answers={**self.answers, key: answer}, sources=sources)

    def key_of_message(self, message_id: int) -> str | None:
        """The field whose current answer that message typed."""
        for key, source in self.sources.items():
            if source == message_id:
                return key
        return None


def new_form(registry: Registry | None = None) -> Form:
    return Form(version=(registry or fields.REGISTRY).version)


# -- moving between releases -------------------------------------------------------------------


def carry_over(form: Form, registry: Registry | None = None) -> Form:
    """The form under the current registry: answers of fields that still exist (renamed keys
    mapped, answers that no longer fit dropped), the question asked found again by its key, or
    the first unanswered question (the summary if none) when it is gone. After the next answer
    the relative is asked the questions still unanswered, in order, then sees the summary
    (`handlers.report`)."""
    registry = registry or fields.REGISTRY
    if form.version == registry.version:
        return form
    answers, sources = _carried_answers(form, registry)
    moved = replace(form, version=registry.version, answers=answers, sources=sources)
    if form.state != State.QUESTION:
        return moved
    # From here on, each answer leads to the next question not answered yet (`editing`): the
    # questions may have moved, and none answered before is asked again.
    step = registry.current_key(form.step or "")
    if step is not None and registry[step].in_form:
        return moved.at(step, editing=True)
    unanswered = [f.key for f in registry.form if f.key not in answers]
    return moved.at(unanswered[0], editing=True) if unanswered else moved.at_summary()


def _carried_answers(form: Form, registry: Registry) -> tuple[dict[str, Json], dict[str, int]]:
    """The answers (and the messages that typed them) under today's keys, where they still fit."""
    answers: dict[str, Json] = {}
    sources: dict[str, int] = {}
    for old, answer in form.answers.items():
        field = registry.get(registry.current_key(old))
        if field is None or not field.in_form or not field.kind.keeps(field, answer):
            continue
        answers[field.key] = answer
        if old in form.sources:
            sources[field.key] = form.sources[old]
    return answers, sources


def from_legacy(draft: dict[str, Any]) -> Form:
    """A draft of the PTB conversation of earlier releases (`user_data["report"]`: answers by
    step key, the age beside the birth date, `_at` the question asked or None at the summary,
    `_editing`), as a form of that release, for `carry_over`."""
    answers: dict[str, Json] = {}
    for key, value in draft.items():
        if key.startswith("_") or key == "age":
            continue
        if key == fields.BIRTH:
            if value is not None:
                answers[key] = {"date": value}
            elif draft.get("age") is not None:
                answers[key] = {"age": draft["age"]}
            else:
                answers[key] = None
            continue
        answers[key] = value
    at = draft.get("_at")
    form = Form(version=LEGACY_VERSION, answers=answers, editing=bool(draft.get("_editing")))
    if isinstance(at, str):
        return form.at(at)
    return form.at_summary() if answers else form.at_consent()


# -- the row -------------------------------------------------------------------------------------


def _unsealed(form: Form) -> str:
    return json.dumps(
        {
            "answers": form.answers,
            "sources": form.sources,
            "kept": sorted(form.kept),
            "urgent_case": form.urgent_case,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


async def load(session: AsyncSession, cipher: FieldCipher, user_id: int) -> Form | None:
    """The user's open form as it was stored (see `carry_over`), or None."""
    found = (
        await session.execute(
            select(ReportForm, DataKey.sealed)
            .join(DataKey, DataKey.id == ReportForm.data_key_id)
            .where(ReportForm.user_id == user_id)
        )
    ).first()
    if found is None:
        return None
    row, sealed_key = found
    opened = json.loads(cipher.for_data_key(row.data_key_id, sealed_key).open(row.answers) or "{}")
    return Form(
        version=row.version,
        state=State(row.state),
        step=row.step,
        editing=row.editing,
        answers=dict(opened.get("answers") or {}),
        sources={str(k): int(v) for k, v in (opened.get("sources") or {}).items()},
        kept=frozenset(str(key) for key in opened.get("kept") or ()),
        urgent_case=opened.get("urgent_case"),
    )


async def save(
    session: AsyncSession, cipher: FieldCipher, user_id: int, form: Form, *, now: datetime
) -> None:
    """Write the whole form (state and answers) in the caller's transaction; a new form gets a
    data key of its own."""
    found = (
        await session.execute(
            select(ReportForm, DataKey.sealed)
            .join(DataKey, DataKey.id == ReportForm.data_key_id)
            .where(ReportForm.user_id == user_id)
        )
    ).first()
    if found is None:
        keyed = await new_key(session, cipher)
        assert keyed.key_id is not None
        row = ReportForm(user_id=user_id, data_key_id=keyed.key_id)
        session.add(row)
    else:
        row, sealed_key = found
        keyed = cipher.for_data_key(row.data_key_id, sealed_key)
    sealed = keyed.seal(_unsealed(form))
    assert sealed is not None
    row.version = form.version
    row.state = form.state
    row.step = form.step
    row.editing = form.editing
    row.answers = sealed
    row.updated_at = now
    await session.flush()


async def start(
    session: AsyncSession, cipher: FieldCipher, user_id: int, form: Form, *, now: datetime
) -> None:
    """A new form, replacing an open one (whose key is destroyed: its answers die with it)."""
    await discard(session, cipher, user_id)
    await save(session, cipher, user_id, form, now=now)


async def discard(session: AsyncSession, cipher: FieldCipher, user_id: int) -> bool:
    """End the user's form: the row and its data key go. Call `shred_copies` after the commit
    where copies matter (retention, /forget do)."""
    deleted = await session.execute(
        delete(ReportForm).where(ReportForm.user_id == user_id).returning(ReportForm.data_key_id)
    )
    key_ids = list(deleted.scalars())
    await destroy_keys(session, cipher, key_ids)
    return bool(key_ids)


async def exists(session: AsyncSession, user_id: int) -> bool:
    return await session.get(ReportForm, user_id) is not None


async def purge_older_than(session: AsyncSession, *, now: datetime, days: int) -> int:
    """Forms nobody touched for `days` days go, with their keys (retention)."""
    deleted = await session.execute(
        delete(ReportForm)
        .where(ReportForm.updated_at < now - timedelta(days=days))
        .returning(ReportForm.data_key_id)
    )
    key_ids = list(deleted.scalars())
    if key_ids:
        await session.execute(delete(DataKey).where(DataKey.id.in_(key_ids)))
    return len(key_ids)
