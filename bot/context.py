"""The CallbackContext the bot's handlers receive: services, the user's profile and translator."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.i18n import Translator
from bot.services import SERVICES_KEY, Services
from storage.enums import MonitorStatus, Role
from storage.users import UserProfile

_ANONYMOUS = UserProfile(
    id=0, language=None, role=Role.FAMILY, monitor_status=MonitorStatus.NONE, blocked=False
)


class HotlineContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """PTB makes one context per update; `handlers.middleware` fills in `profile` first."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self.profile: UserProfile = _ANONYMOUS

    @property
    def services(self) -> Services:
        services = self.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        return services

    @property
    def tr(self) -> Translator:
        """The translator for this user's stored language (or the hotline's default)."""
        return self.services.i18n.get(self.profile.language)


HotlineApplication = Application[Any, HotlineContext, Any, Any, Any, Any]
