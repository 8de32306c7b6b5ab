"""Every outbox template by name. Each feature module exposes `TEMPLATES: dict[str, Renderer]`;
adding a feature means adding its module to `_MODULES`."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from bot.i18n import Translator
from bot.texts.messages import (
    broadcasts,
    cases,
    delivery,
    discreet,
    library,
    monitors,
    reachability,
    record,
    reports,
    threads,
    urgent,
)
from bot.texts.messages.base import RenderedMessage, Renderer

_MODULES: tuple[ModuleType, ...] = (
    cases,
    record,
    reports,
    monitors,
    broadcasts,
    threads,
    discreet,
    reachability,
    library,
    urgent,
    delivery,
)


def _collect() -> dict[str, Renderer]:
    templates: dict[str, Renderer] = {}
    for module in _MODULES:
        for name, renderer in module.TEMPLATES.items():
            if name in templates:
                raise RuntimeError(f"outbox template {name!r} is defined twice")
            templates[name] = renderer
    return templates


TEMPLATES = _collect()


class UnknownTemplateError(LookupError):
    pass


def render(template: str, tr: Translator, params: Mapping[str, Any]) -> RenderedMessage:
    try:
        renderer = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplateError(template) from None
    return renderer(tr, params)
