"""`python -m bot staff|monitor add|remove|list`: the same audited grant and revoke as /grant."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import select

from storage.crypto import FieldCipher, generate_key
from storage.db import make_engine, make_session_factory
from storage.enums import MonitorStatus, Role
from storage.models import AuditEntry, User

REPO = Path(__file__).resolve().parents[2]


async def _cli(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_monitor_added_then_removed_is_no_longer_approved(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/h.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    data_key = generate_key()
    env.update(HOTLINE_DATABASE_URL=url, HOTLINE_DATA_KEY=data_key, PYTHONPATH=str(REPO))

    assert "monitor" in await _cli(env, "monitor", "add", "777")
    assert (await _cli(env, "monitor", "list")).split() == ["777"]
    await _cli(env, "monitor", "remove", "777")
    assert (await _cli(env, "monitor", "list")).split() == []

    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            # stored under its user key, the Telegram id sealed beside it (storage/identity.py)
            user = await session.scalar(select(User))
            actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    finally:
        await engine.dispose()
    assert user is not None and user.id != 777
    assert FieldCipher.from_setting(data_key).open(user.telegram_id) == "777"
    assert user.role == Role.FAMILY
    assert user.monitor_status == MonitorStatus.NONE  # removal withdraws the approval too
    assert actions == ["role.grant.monitor", "role.revoke"]
