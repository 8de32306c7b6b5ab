"""The long-lived objects every handler and job needs, built once in `bot.app`.

They reach handlers through `application.bot_data` (never module globals), so a test can build an
Application on its own database, key and clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.limits import MessageLimiter
from bot.settings import Settings
from storage.crypto import FieldCipher
from storage.db import SessionFactory
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
    i18n: I18n
    message_limiter: MessageLimiter
    clock: Callable[[], datetime] = utcnow
    extras: dict[str, object] = field(default_factory=dict)
    # /status CODE lookups per user: generous for a family, useless for guessing codes.
    lookup_limiter: MessageLimiter = field(default_factory=lambda: MessageLimiter(20, 3600.0))
