"""The field registry: it agrees with the schema, its words are in every catalog, its version
follows the questions, and each kind checks, stores and shows its values."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import LargeBinary

from bot.i18n import I18n, catalog_path, default_locales_dir, load_catalog
from storage import fields
from storage.field_checks import Invalid
from storage.fields import (
    BIRTH_OR_AGE,
    CASES,
    CONTACTS,
    DETENTION_DATE,
    FILES,
    FILES_LIMIT,
    PERSONAL,
    PHONE,
    RECORDS,
    Date,
    Field,
    ListOf,
    Registry,
    Text,
    Typing,
)
from storage.models import Base

REGISTRY = fields.REGISTRY
TODAY = Typing(date(2025, 6, 15), {"today": ["today"], "yesterday": ["yesterday"]})
NOT_FIELDS = {
    PERSONAL: {"case_id", "kept_for_case"},
    CONTACTS: {"id", "case_id", "user_id", "is_reporter", "approved", "telegram_name",
               "telegram_username", "created_at"},
    RECORDS: {"case_id", "group_id", "transfers", "updated_at"},  # membership, history, time
}  # fmt: skip


def test_every_stored_field_has_its_column_and_every_personal_column_its_field() -> None:
    tables = Base.metadata.tables
    for field in REGISTRY.fields:
        if field.stored is None:
            continue
        column = tables[field.stored.table].c[field.stored.column]
        assert isinstance(column.type, LargeBinary) == field.stored.sealed, field.key
    for table in (PERSONAL, CONTACTS, RECORDS):
        columns = {c.name for c in tables[table].c} - NOT_FIELDS[table]
        assert columns == set(REGISTRY.columns(table)), table
    assert set(REGISTRY.columns(CASES)) == {
        "detention_date", "region", "detained_by", "visibility", "custody",
    }  # fmt: skip


def test_the_form_asks_its_questions_in_registry_order_and_names_renamed_keys() -> None:
    assert [f.key for f in REGISTRY.form] == [
        "relation", "name", "birth", "detention_date", "region", "arrest_place", "detained_by",
        "charges", "held_in", "lawyer", "health", "documents", "phone", "visibility",
    ]  # fmt: skip
    assert REGISTRY.current_key("place") == "arrest_place"
    assert REGISTRY.current_key("held_at") == "held_in"
    assert REGISTRY.current_key("gone") is None


@pytest.mark.parametrize("lang", ["uk", "crh", "ru"])
def test_every_label_question_and_choice_is_translated(lang: str) -> None:
    catalog = load_catalog(catalog_path(default_locales_dir(), lang))
    for field in REGISTRY.fields:
        msgids = [field.label, *([field.question] if field.question else [])]
        msgids += list((field.choices or {}).values()) + [label for label, _ in field.kind.extra]
        for msgid in msgids:
            message = catalog.get(msgid)
            assert message is not None and message.string, (lang, field.key, msgid)


def test_the_version_follows_the_questions() -> None:
    same = Registry(fields.FIELDS)
    assert same.version == REGISTRY.version
    extra = replace(REGISTRY.form[-1], key="known_as", formerly=())  # a new question
    assert Registry([*fields.FIELDS, extra]).version != REGISTRY.version
    swapped = [fields.FIELDS[1], fields.FIELDS[0], *fields.FIELDS[2:]]
    assert Registry(swapped).version != REGISTRY.version
    optional = [replace(fields.FIELDS[0], optional=True), *fields.FIELDS[1:]]
    assert Registry(optional).version != REGISTRY.version
    label = [replace(fields.FIELDS[0], label="Who you are"), *fields.FIELDS[1:]]
    assert Registry(label).version == REGISTRY.version  # words are not the form's shape


def test_a_registry_refuses_clashing_keys() -> None:
    with pytest.raises(ValueError, match="share a key"):
        Registry([*fields.FIELDS, fields.FIELDS[0]])
    with pytest.raises(ValueError, match="former key"):
        Registry([*fields.FIELDS, replace(fields.FIELDS[0], key="x", formerly=("name",))])
    with pytest.raises(ValueError, match="question"):
        Registry([replace(fields.FIELDS[0], question=None)])


def test_kinds_check_store_and_show(i18n: I18n) -> None:
    tr = i18n.get("en")
    birth = REGISTRY["birth"]
    assert BIRTH_OR_AGE.parse("21.03.1985", TODAY) == {"date": "1985-03-21"}
    assert BIRTH_OR_AGE.parse("45", TODAY) == {"age": 45}
    assert BIRTH_OR_AGE.column({"age": 45}, TODAY.today) == "age 45 on 2025-06-15"
    assert BIRTH_OR_AGE.show_answer(tr, birth, {"age": 45}) == "about 45 years old"
    shown = BIRTH_OR_AGE.show(tr, birth, "age 45 on 2025-06-15")
    assert shown == f"about 45 years old on {tr.format_date(date(2025, 6, 15))}"
    assert BIRTH_OR_AGE.show(tr, birth, "1985-03-21") == tr.format_date(date(1985, 3, 21))

    detention = REGISTRY["detention_date"]
    assert DETENTION_DATE.tap(detention, "yesterday", TODAY, None) == "2025-06-14"
    assert DETENTION_DATE.parse("today", TODAY) == "2025-06-15"
    assert DETENTION_DATE.column("2025-06-14", TODAY.today) == date(2025, 6, 14)
    with pytest.raises(Invalid):
        DETENTION_DATE.tap(detention, "tomorrow", TODAY, None)
    with pytest.raises(Invalid):
        DETENTION_DATE.parse("01.01.2013", TODAY)

    phone = REGISTRY["phone"]
    assert PHONE.tap(phone, "here", TODAY, None) is None
    assert PHONE.show_answer(tr, phone, None) == "Contact me here only"

    region = REGISTRY["region"]
    assert region.kind.tap(region, "crimea", TODAY, None) == "crimea"
    with pytest.raises(Invalid):
        region.kind.tap(region, "atlantis", TODAY, None)  # callback data can be forged
    with pytest.raises(Invalid):
        region.kind.parse("Crimea", TODAY)  # a button question
    assert region.kind.show(tr, region, "kherson") == "Kherson oblast (occupied part)"
    assert not region.kind.keeps(region, "atlantis")

    documents = REGISTRY["documents"]
    files: object = None
    for n in range(FILES_LIMIT):
        files = FILES.add(files, "photo", f"file-{n}")
    assert FILES.add(files, "photo", "one too many") is None
    assert FILES.tap(documents, "done", TODAY, files) == files
    assert FILES.skip(None) == []
    assert FILES.show_answer(tr, documents, files) == f"{FILES_LIMIT} files"


def test_structured_kinds_for_staff_kept_fields(i18n: I18n) -> None:
    """What record fields kept by staff need: a plain date, and a list of values."""
    tr = i18n.get("en")
    articles = Field("articles", "Articles", ListOf(Text(limit=20, multiline=False)), None)
    answer = articles.kind.parse("205.5 part 2;\n 275.1 ;", TODAY)
    assert answer == ["205.5 part 2", "275.1"]
    stored = articles.kind.column(answer, TODAY.today)
    assert stored == '["205.5 part 2", "275.1"]'
    assert articles.kind.show(tr, articles, stored) == "205.5 part 2, 275.1"
    with pytest.raises(Invalid):
        articles.kind.parse(" ; ", TODAY)
    with pytest.raises(Invalid):
        articles.kind.parse("205.5; " + "x" * 21, TODAY)
    hearings = Field("hearings", "Hearings", ListOf(Date()), None)
    assert hearings.kind.parse("01.07.2025\n2025-08-02", TODAY) == ["2025-07-01", "2025-08-02"]
    assert hearings.kind.name != articles.kind.name  # a different kind for the form's version
    next_hearing = Field("next_hearing", "Next hearing", Date(), None)
    assert next_hearing.kind.parse("01.07.2030", TODAY) == "2030-07-01"  # the future is fine
