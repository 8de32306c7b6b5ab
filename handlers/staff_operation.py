"""One staff operation: its button checked, its transaction, and its refusals in words.

Every staff action on a case goes through here: `case_press` parses a `case:` button and checks
the role its verb needs (`handlers.guard.require`, which refuses and audits); `run` opens the one
transaction the storage operation runs in and, when storage refuses, audits the refusal and
answers it in one wording per reason, the same wherever the operation was started:

- `CaseNotFound` → "No case has the code …";
- `TransitionRefused` (the lifecycle, `storage.lifecycle`) → "Refused: <why> (<old> → <new>)";
- `CaseRefused` (merging into itself, nobody waiting to be linked…) → its reason's sentence.

The handler only answers success.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update

from bot.callbacks import CASE, Pressed
from bot.context import HotlineContext
from bot.i18n import N_, Translator
from bot.texts.statuses import status_word
from handlers.fallbacks import stale_button
from handlers.guard import require
from handlers.replies import reply_html
from storage import audit
from storage.access import Permission
from storage.case_views import CaseNotFound
from storage.cases import CaseRefusal, CaseRefused
from storage.enums import AuditOutcome
from storage.lifecycle import RefusalReason, TransitionRefused

T = TypeVar("T")

NO_SUCH_CASE = N_("No case has the code {code}.")
NO_LONGER_VALID = N_("This button is no longer valid.")
LIFECYCLE_REFUSALS: dict[RefusalReason, str] = {
    RefusalReason.UNKNOWN_STATUS: N_("That status does not exist."),
    RefusalReason.SAME_STATUS: N_("The case already has this status."),
    RefusalReason.FINAL: N_(
        "This case is final (returned home or deceased): its status cannot change any more."
    ),
    RefusalReason.CLOSED_ONLY_REOPEN: N_(
        "This case is closed: the only possible change is to reopen it (back to under review)."
    ),
    RefusalReason.NOT_IN_GRAPH: N_("This change is not allowed from the case's current status."),
}
CASE_REFUSALS: dict[CaseRefusal, str] = {
    CaseRefusal.SELF_MERGE: N_("A case cannot be merged into itself."),
    CaseRefusal.TARGET_FINAL: N_(
        "Case {code} is final (closed, returned home or deceased): nothing can be merged into it."
    ),
    CaseRefusal.ALREADY_MERGED: N_("Case {code} was already merged into another case."),
    CaseRefusal.NOT_WAITING: N_(
        "Nobody is waiting to be linked to case {code} under this id any more (already linked, "
        "or their data was erased). Nothing was changed."
    ),
    CaseRefusal.NO_PERSONAL_DATA: N_("Case {code} holds no personal details to keep."),
    # Only an old or forged button skips the card's question, reason or method.
    CaseRefusal.UNKNOWN_VERIFICATION: NO_LONGER_VALID,
    CaseRefusal.NEEDS_REASON: NO_LONGER_VALID,
    CaseRefusal.NEEDS_QUESTION: NO_LONGER_VALID,
}


def refusal_text(tr: Translator, refused: TransitionRefused) -> str:
    """Plain text: escape it for HTML at use."""
    return tr.gettext("Refused: {reason} ({old} → {new})").format(
        reason=tr.gettext(LIFECYCLE_REFUSALS[refused.reason]),
        old=status_word(tr, refused.old),
        new=status_word(tr, refused.new),
    )


def refused_text(tr: Translator, error: Exception) -> str:
    """The one sentence for each way storage refuses a staff operation (plain text)."""
    if isinstance(error, CaseNotFound):
        return tr.gettext(NO_SUCH_CASE).format(code=str(error))
    if isinstance(error, TransitionRefused):
        return refusal_text(tr, error)
    assert isinstance(error, CaseRefused)
    return tr.gettext(CASE_REFUSALS[error.reason]).format(code=error.code)


def _detail(error: Exception) -> str:
    """For the audit row: the reason, never personal data."""
    if isinstance(error, TransitionRefused):
        return f"{error.old}->{error.new}: {error.reason}"
    if isinstance(error, CaseRefused):
        return str(error.reason)
    return "no such case"


async def run(
    update: Update,
    context: HotlineContext,
    operation: Callable[[AsyncSession], Awaitable[T]],
    *,
    action: str,
    code: str,
) -> T | None:
    """Run `operation(session)` in one transaction and return its result. When storage refuses
    (`CaseNotFound`, `TransitionRefused`, `CaseRefused`), nothing is changed: the refusal is
    audited (`action`, outcome REFUSED), answered in its one wording, and None is returned."""
    services = context.services
    try:
        async with services.sessions() as session, session.begin():
            return await operation(session)
    except (CaseNotFound, TransitionRefused, CaseRefused) as error:
        refused = error
    async with services.sessions() as session, session.begin():
        audit.record(
            session,
            actor_id=context.profile.id,
            action=action,
            outcome=AuditOutcome.REFUSED,
            case_code=code,
            detail=_detail(refused),
            at=services.clock(),
        )
    await reply_html(update, html.escape(refused_text(context.tr, refused)))
    return None


async def case_press(
    update: Update, context: HotlineContext, permissions: Mapping[str, Permission]
) -> Pressed | None:
    """The `case:` button pressed, once the role its verb needs is checked; None when refused
    (already answered). The spinner is stopped here."""
    query = update.callback_query
    assert query is not None
    pressed = CASE.parse(query.data)
    if pressed is None or pressed.verb not in permissions:  # routing lets none through
        await stale_button(update, context)
        return None
    action = f"case.button.{pressed.verb}"
    if not await require(update, context, permissions[pressed.verb], action=action):
        return None
    await query.answer()
    return pressed
