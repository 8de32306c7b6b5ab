"""The long-lived objects every handler and job needs, built once in `bot.app`.

They reach handlers through `application.bot_data` (never module globals), so a test can build an
Application on its own database, key and clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.limits import MessageLimiter
from bot.settings import Settings
from storage.crypto import FieldCipher
from storage.db import SessionFactory
from storage.identity import UserKeys
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.i18n import I18n

SERVICES_KEY = "services"


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    cipher: FieldCipher
    keys: UserKeys
    """Telegram ids to user keys (`storage.identity`): storage never sees a Telegram id."""
    i18n: I18n
    message_limiter: MessageLimiter
    clock: Callable[[], datetime] = utcnow
    # /status CODE lookups per user: generous for a family, useless for guessing codes.
    lookup_limiter: MessageLimiter = field(default_factory=lambda: MessageLimiter(20, 3600.0))

    @cached_property
    def admin_keys(self) -> frozenset[int]:
        """The user keys of HOTLINE_ADMIN_IDS (which are Telegram ids), for storage."""
        return self.keys.keys(self.settings.admin_ids)

    @cached_property
    def admin_chats(self) -> dict[int, int]:
        """Each admin's user key -> Telegram id: admins named in settings may not have written
        to the bot yet, so no sealed id of theirs may be stored."""
        return {self.keys.key(admin): admin for admin in self.settings.admin_ids}

    @property
    def staff_chat_key(self) -> int | None:
        """HOTLINE_STAFF_CHAT_ID as storage knows it (a group stays as it is)."""
        chat = self.settings.staff_chat_id
        return None if chat is None else self.keys.chat_key(chat)
