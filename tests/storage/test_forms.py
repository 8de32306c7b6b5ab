"""The stored report form (SQLite and PostgreSQL): one sealed row with a key of its own, gone
with its key when the form ends or is abandoned; carried over to a release's questions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from storage import fields, forms
from storage.fields import Registry
from storage.forms import Form, State, carry_over
from storage.models import DataKey, ReportForm
from storage.privacy import forget_user, purge_expired
from tests.support.case_factory import ensure_user
from tests.support.databases import Db

NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)
USER = 4242
VERSION = fields.REGISTRY.version


def _form(**answers: object) -> Form:
    return Form(version=VERSION, answers=dict(answers)).at("birth")


async def test_a_form_is_one_sealed_row_with_a_key_of_its_own(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, USER)
        form = _form(relation="parent", name="Petrenko").answered("name", "Petrenko", 17)
        await forms.save(session, db.cipher, USER, form, now=NOW)
    async with db.sessions() as session, session.begin():
        assert await forms.load(session, db.cipher, USER) == form
        row = await session.get(ReportForm, USER)
        assert row is not None and b"Petrenko" not in row.answers
        assert (row.state, row.step, row.version) == ("question", "birth", VERSION)
        first_key = row.data_key_id
        await forms.save(session, db.cipher, USER, form.at_summary(), now=NOW)
    async with db.sessions() as session, session.begin():
        loaded = await forms.load(session, db.cipher, USER)
        assert loaded is not None and loaded.state == State.SUMMARY
        assert loaded.key_of_message(17) == "name"
        assert await session.scalar(select(func.count()).select_from(ReportForm)) == 1
        await forms.start(session, db.cipher, USER, forms.new_form(), now=NOW)
        row = await session.get(ReportForm, USER)
        assert row is not None and row.data_key_id != first_key
        assert await session.get(DataKey, first_key) is None  # the replaced form's key is gone
        assert await forms.discard(session, db.cipher, USER)
        assert await session.get(DataKey, row.data_key_id) is None
        assert await forms.load(session, db.cipher, USER) is None


async def test_retention_and_forget_take_forms_and_their_keys(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        await ensure_user(session, USER)
        await ensure_user(session, USER + 1)
        await ensure_user(session, USER + 2)
        for user in (USER, USER + 1, USER + 2):
            await forms.save(session, db.cipher, user, _form(name="x"), now=NOW)
        # A form still in use whose key was made long ago: its key must stay.
        await session.execute(update(DataKey).values(created_at=NOW - timedelta(days=30)))
        await session.execute(
            update(ReportForm)
            .where(ReportForm.user_id == USER)
            .values(updated_at=NOW - timedelta(days=8))
        )
    async with db.sessions() as session, session.begin():
        result = await purge_expired(session, now=NOW, draft_days=7, outbox_days=30, audit_days=365)
    assert result.report_forms == 1
    async with db.sessions() as session, session.begin():
        assert await forms.load(session, db.cipher, USER) is None
        assert await forms.load(session, db.cipher, USER + 1) is not None
        await forget_user(session, db.cipher, USER + 2, now=NOW)
    async with db.sessions() as session:
        assert [row.user_id for row in await session.scalars(select(ReportForm))] == [USER + 1]
        keys = await session.scalar(select(func.count()).select_from(DataKey))
        assert keys == 1  # the one form left; the others' keys went with them


def test_carry_over_maps_renamed_keys_and_finds_the_question_again() -> None:
    earlier = Form(
        version="older",
        answers={"name": "Ivan", "place": "Simferopol", "held_at": "SIZO-1", "gone": "x"},
        sources={"place": 5},
    ).at("held_at")
    carried = carry_over(earlier)
    assert carried.version == VERSION
    assert carried.answers == {"name": "Ivan", "arrest_place": "Simferopol", "held_in": "SIZO-1"}
    assert carried.sources == {"arrest_place": 5}
    assert (carried.state, carried.step, carried.editing) == (State.QUESTION, "held_in", True)
    assert carry_over(carried) is carried  # the same version: nothing to do


def test_carry_over_of_a_question_that_is_gone_asks_the_first_unanswered() -> None:
    without_lawyer = Registry(f for f in fields.FIELDS if f.key != "lawyer")
    at_lawyer = Form(version=VERSION, answers={"relation": "parent", "lawyer": "yes"}).at("lawyer")
    carried = carry_over(at_lawyer, without_lawyer)
    assert carried.answers == {"relation": "parent"}
    assert (carried.step, carried.editing) == ("name", True)
    everything = {f.key: None for f in without_lawyer.form} | {"documents": []}
    done = carry_over(replace(at_lawyer, answers=everything), without_lawyer)
    assert done.state == State.SUMMARY


def test_carry_over_drops_an_answer_that_no_longer_fits() -> None:
    fewer_regions = [
        replace(f, choices={"crimea": "Crimea"}) if f.key == "region" else f for f in fields.FIELDS
    ]
    form = Form(version="older", answers={"region": "kherson", "name": "Ivan"}).at_summary()
    carried = carry_over(form, Registry(fewer_regions))
    assert carried.answers == {"name": "Ivan"} and carried.state == State.SUMMARY


def test_a_draft_of_the_ptb_conversation_becomes_a_form() -> None:
    legacy = {"relation": "parent", "birth": None, "age": 45, "place": "Yalta", "_at": "held_at"}
    form = carry_over(forms.from_legacy(legacy))
    assert form.answers == {"relation": "parent", "birth": {"age": 45}, "arrest_place": "Yalta"}
    assert (form.state, form.step) == (State.QUESTION, "held_in")
    summary = carry_over(forms.from_legacy({"name": "Ivan", "birth": "1985-03-21", "_at": None}))
    assert summary.state == State.SUMMARY and summary.answers["birth"] == {"date": "1985-03-21"}
    assert carry_over(forms.from_legacy({})).state == State.CONSENT
