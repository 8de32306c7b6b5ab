"""Data keys (storage/data_keys.py): a case's values are sealed by its own key; re-keying keeps
what remains readable and makes the old key's values unreadable; rotating the master key
re-seals only the data-key rows; values from before envelope encryption get keys at start."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.crypto import DataKeyError, FieldCipher, generate_key
from storage.data_keys import case_cipher, give_existing_data_keys, rekey_case
from storage.keys import rotate_data_key
from storage.models import Case, CasePersonal, DataKey, Meta, User
from storage.reports import ReportDraft, StaffChats, file_report
from tests.security.helpers import NAME, seed_case
from tests.storage.test_reports import DRAFT, NOW
from tests.support.databases import Db


async def _file(db: Db, user: int, draft: ReportDraft = DRAFT) -> Case:
    async with db.sessions() as session, session.begin():
        if await session.get(User, user) is None:
            session.add(User(id=user, language="en"))
            await session.flush()
        filed = await file_report(
            session,
            db.cipher,
            user,
            draft,
            now=NOW,
            staff=StaffChats(None, frozenset({9001})),
            reports_per_day=5,
        )
        case = await session.scalar(select(Case).where(Case.code == filed.code))
        assert case is not None
        return case


async def test_a_case_is_sealed_with_its_own_key_and_rekeying_shreds_the_old(db: Db) -> None:
    case = await _file(db, 100)
    async with db.sessions() as session:
        personal = await session.get(CasePersonal, case.id)
        assert personal is not None and personal.detainee_name is not None
        old_token = personal.detainee_name
        with pytest.raises(DataKeyError):  # not the master key's
            db.cipher.open(old_token)
        keyed = await case_cipher(session, db.cipher, case.id)
        assert keyed.open(old_token) == DRAFT.detainee_name
        old_key = await session.scalar(select(DataKey.sealed).where(DataKey.case_id == case.id))
    assert old_key is not None

    async with db.sessions() as session, session.begin():
        assert await rekey_case(session, db.cipher, case.id) > 0
    async with db.sessions() as session:
        personal = await session.get(CasePersonal, case.id)
        assert personal is not None
        keys = list(await session.scalars(select(DataKey.sealed)))
        assert old_key not in keys  # destroyed
        keyed = await case_cipher(session, db.cipher, case.id)
        assert keyed.open(personal.detainee_name) == DRAFT.detainee_name
        with pytest.raises(DataKeyError):
            keyed.open(old_token)  # a copy of the old value is noise now


async def test_rotation_reseals_only_data_keys_and_what_the_master_still_seals(
    database_url: str,
) -> None:
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade_to_head

    old, new = generate_key(), generate_key()
    engine = make_engine(database_url)
    await upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    try:
        db = Db(engine, sessions, FieldCipher([old]))
        case = await _file(db, 100)
        async with sessions() as session:
            personal = await session.get(CasePersonal, case.id)
            assert personal is not None
            before = personal.detainee_name
        both = FieldCipher([new, old])
        report = await rotate_data_key(sessions, both, [FieldCipher([old])])
        assert report.left_on_old_key == 0
        assert report.resealed["data_keys"] == 1 and report.resealed["case_personal"] == 0
        only_new = FieldCipher([new])
        async with sessions() as session:
            personal = await session.get(CasePersonal, case.id)
            assert personal is not None and personal.detainee_name == before  # untouched
            keyed = await case_cipher(session, only_new, case.id)
            assert keyed.open(personal.detainee_name) == DRAFT.detainee_name
    finally:
        await engine.dispose()


async def test_values_from_before_envelope_encryption_get_keys_at_start(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        await seed_case(session, db.cipher, reporter_id=501)  # sealed by the master key
    assert await give_existing_data_keys(db.sessions, db.cipher) == 1
    async with db.sessions() as session:
        personal = await session.scalar(select(CasePersonal))
        assert personal is not None
        with pytest.raises(DataKeyError):
            db.cipher.open(personal.detainee_name)
        keyed = await case_cipher(session, db.cipher, personal.case_id, create=False)
        assert keyed.key_id is not None and keyed.open(personal.detainee_name) == NAME
        assert await session.get(Meta, "envelope") is not None
    assert await give_existing_data_keys(db.sessions, db.cipher) == 0  # once per database
