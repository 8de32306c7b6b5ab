"""Look-alike letters and invisible characters do not defeat duplicate detection or case codes
(issue 12, point 4), while different names stay apart.

Through the real bot: a second family reports the same person with Latin letters inside the
Cyrillic name and invisible characters between them, and the hotline recognises the person; the
first family looks its case up with a code typed in Cyrillic look-alikes; what is stored holds no
invisible character. Indexes computed by the earlier rule are recomputed at start, so a case filed
before the upgrade is still found.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from sqlalchemy import delete, select, update

from bot.app import open_services
from bot.clean_input import clean_text
from storage.confusables import is_invisible
from storage.crypto import (
    LEGACY_INDEX_RULE,
    FieldCipher,
    generate_key,
    legacy_normalise_for_index,
    normalise_for_index,
)
from storage.keys import INDEX_RULE_KEY
from storage.models import Case, CaseContact, CasePersonal, Meta, ThreadMessage
from storage.reports import person_index
from tests.handlers import report_flow
from tests.security.helpers import seed_case
from tests.support.harness import BotHarness
from tests.support.sealed import every_key

INVISIBLE = "\u200b\u200d\u2060\ufeff\u061c\u00ad\u202e"
BIRTH = date(1985, 3, 14)
CYRILLIC_NAME = "Ескендер Бариєв"
MIXED_NAME = "E\u200bск\u200deндеp Б\u2060ap\ufeffиє\u061cв"  # Latin E, e, p, a, p among Cyrillic


@pytest.fixture(scope="module")
def cipher() -> FieldCipher:
    return FieldCipher([generate_key()])


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("Ahmеd Оsmаnоv", "Ahmed Osmanov"),  # Cyrillic е, О, а, о in a Latin name
        ("Ескендер Бариєв", "Eскeндеp Бapиєв"),  # Latin E, e, p, a in a Cyrillic name
        ("Іван Коваль", "Iвaн Кoвaль"),  # Latin I, a, o
        ("Олена Сидоренко", "Oлeнa Cидopeнкo"),
        ("Ахмед", "Ax\u200bм\u200dе\u2060д\ufeff\u061c"),  # invisible characters
        ("Server Mustafayev", "SERVER MUSTAFAYEV"),
        ("Зарема", "Зарєма".replace("є", "е")),
        ("Ismail Qırımlı", "Ismail Qirimli"),  # Crimean Tatar dotless ı typed as i
    ],
)
def test_lookalikes_and_invisible_characters_give_the_same_index(
    cipher: FieldCipher, typed: str, meant: str
) -> None:
    assert person_index(cipher, typed, BIRTH, None) == person_index(cipher, meant, BIRTH, None)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Ahmed", "Ahmet"),
        ("Kemal", "Kernal"),  # the skeleton's m → rn is not used
        ("Олена", "Олеся"),
        ("Андрій", "Андрей"),
        ("Вадим", "Вадім"),
        ("Ілля", "Лля"),
        ("Emil", "Emll"),
        ("Ivan", "Иван"),  # transliterations are different names to a keyed hash
    ],
)
def test_different_names_keep_different_indexes(cipher: FieldCipher, one: str, other: str) -> None:
    assert person_index(cipher, one, BIRTH, None) != person_index(cipher, other, BIRTH, None)


ALPHABETS = {
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "crh": "abcçdefgğhıijklmnñoöpqrsştuüvyz",
    "en": "abcdefghijklmnopqrstuvwxyz",
}


@pytest.mark.parametrize("language", sorted(ALPHABETS))
def test_every_two_letters_of_one_alphabet_stay_apart(language: str) -> None:
    """Letters the earlier rule told apart (accents were already folded) stay apart, in lower
    and upper case; Crimean Tatar's ı and i are the one join (keyboards swap them)."""
    letters = ALPHABETS[language]
    joined = set()
    for a, b in itertools.combinations(letters, 2):
        for x, y in ((a, b), (a.upper(), b.upper())):
            if legacy_normalise_for_index(x) == legacy_normalise_for_index(y):
                continue
            if normalise_for_index(f"x{x}x") == normalise_for_index(f"x{y}x"):
                joined.add((x, y))
    assert joined == ({("ı", "i")} if language == "crh" else set())


def test_invisible_characters_are_cut_and_entities_follow() -> None:
    entities = [
        {"type": "bot_command", "offset": 0, "length": 9},
        {"type": "bold", "offset": 11, "length": 4},
    ]
    text = clean_text("/st\u200batus\u2060 \ufeffK7M4", entities)
    assert text == "/status K7M4"
    assert entities == [
        {"type": "bot_command", "offset": 0, "length": 7},
        {"type": "bold", "offset": 8, "length": 4},
    ]
    assert not any(is_invisible(ch) for ch in clean_text("a\U0001f600\u200db", None))


async def test_the_bot_recognises_a_lookalike_report_and_a_lookalike_code(
    running_bot: BotHarness,
) -> None:
    sandbox = running_bot.sandbox
    services = running_bot.services
    assert services is not None
    first, second = (sandbox.add_user(language_code="en").id for _ in range(2))
    answers = {**report_flow.FULL, "name": CYRILLIC_NAME, "birth": "14.03.1985"}
    reply = await report_flow.file(sandbox, first, answers)
    assert "code is" in reply.plain
    await report_flow.file(sandbox, second, {**answers, "name": MIXED_NAME})

    opener = await every_key(services.sessions, services.cipher)
    async with services.sessions() as session:
        cases = list(await session.scalars(select(Case).order_by(Case.id)))
        names = [opener.open(n) for n in await session.scalars(select(CasePersonal.detainee_name))]
        second_contact = await session.scalar(
            select(CaseContact).where(CaseContact.user_id == services.keys.key(second))
        )
    assert second_contact is not None  # the second report was filed
    indexes = {case.person_index for case in cases}
    assert len(indexes) == 1 and None not in indexes  # the same person, recognised
    assert all(name is not None and not any(is_invisible(ch) for ch in name) for name in names)
    assert MIXED_NAME not in names

    code = "ZC9X-AKRA"  # the example, given to the first case
    async with services.sessions() as session, session.begin():
        await session.execute(update(Case).where(Case.id == cases[0].id).values(code=code))
    await sandbox.send_text(first, "/status ZС9Х-\u200bАКRА\ufeff")  # С, Х, А, К are Cyrillic
    shown = await sandbox.next_message(first)
    assert code in shown.plain and CYRILLIC_NAME in shown.plain

    # a free message, which no form parses, is stored without its invisible characters too
    await sandbox.send_text(first, "He has\u200b asthma,\u2060 needs\u200d an inhaler\ufeff\u061c")
    await sandbox.next_message(first)  # the acknowledgement
    opener = await every_key(services.sessions, services.cipher)
    async with services.sessions() as session:
        bodies = [
            opener.open(body)
            for body in await session.scalars(
                select(ThreadMessage.body).where(
                    ThreadMessage.author_id == services.keys.key(first)
                )
            )
        ]
    assert bodies == ["He has asthma, needs an inhaler"]


async def test_indexes_of_the_earlier_rule_are_recomputed_at_start(running_bot: BotHarness) -> None:
    services = running_bot.services
    assert services is not None
    legacy = services.cipher.with_index_rule(LEGACY_INDEX_RULE)
    async with services.sessions() as session, session.begin():
        await seed_case(
            session, services.cipher, keys=services.keys, reporter_id=4100, name=CYRILLIC_NAME
        )
        old_index = person_index(legacy, CYRILLIC_NAME, BIRTH, None)
        await session.execute(update(Case).values(person_index=old_index))
        await session.execute(delete(Meta).where(Meta.key == INDEX_RULE_KEY))
    assert old_index != person_index(services.cipher, MIXED_NAME, BIRTH, None)
    reopened = await open_services(services.settings, i18n=services.i18n)  # what a start does
    try:
        async with reopened.sessions() as session:
            stored = await session.scalar(select(Case.person_index))
            rule = await session.get(Meta, INDEX_RULE_KEY)
    finally:
        await reopened.engine.dispose()
    assert stored == person_index(services.cipher, MIXED_NAME, BIRTH, None)
    assert rule is not None
