"""Who may do what: the one table of DESIGN.md's "Who sees what", enforced through `can`.

Handlers never decide access by themselves: they ask `can(role, permission)` (through
`handlers.guard`), whatever a button or callback claimed, and every refusal is audited.
"""

from __future__ import annotations

from enum import StrEnum

from storage.enums import Role


class Permission(StrEnum):
    REPORT_CASE = "report_case"
    VIEW_OWN_CASES = "view_own_cases"
    REQUEST_MONITOR_ACCESS = "request_monitor_access"
    FOLLOW_PUBLIC_CASES = "follow_public_cases"
    REVIEW_CASES = "review_cases"
    CHANGE_STATUS = "change_status"
    ADD_NOTES = "add_notes"
    MERGE_CASES = "merge_cases"
    BROADCAST = "broadcast"
    DECIDE_MONITOR_REQUESTS = "decide_monitor_requests"
    GRANT_ROLES = "grant_roles"
    EXPORT = "export"
    ANSWER_FAMILIES = "answer_families"
    MANAGE_PREPARED_ANSWERS = "manage_prepared_answers"
    EDIT_RECORD = "edit_record"
    TAG_CASES = "tag_cases"
    MANAGE_TAGS = "manage_tags"
    HANDLE_URGENT = "handle_urgent"  # be on call, take urgent cases, tell the family each step
    MANAGE_ONCALL = "manage_oncall"  # set the weekly on-call schedule of others


_FAMILY = frozenset(
    {Permission.REPORT_CASE, Permission.VIEW_OWN_CASES, Permission.REQUEST_MONITOR_ACCESS}
)
_MONITOR = _FAMILY | {Permission.FOLLOW_PUBLIC_CASES}
_STAFF = _FAMILY | {
    Permission.REVIEW_CASES,
    Permission.CHANGE_STATUS,
    Permission.ADD_NOTES,
    Permission.MERGE_CASES,
    Permission.BROADCAST,
    Permission.ANSWER_FAMILIES,
    Permission.EDIT_RECORD,
    Permission.TAG_CASES,
    Permission.HANDLE_URGENT,
}
_ADMIN = (
    _STAFF
    | _MONITOR
    | {
        Permission.DECIDE_MONITOR_REQUESTS,
        Permission.GRANT_ROLES,
        Permission.EXPORT,
        Permission.MANAGE_PREPARED_ANSWERS,
        Permission.MANAGE_TAGS,
        Permission.MANAGE_ONCALL,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.FAMILY: _FAMILY,
    Role.MONITOR: _MONITOR,
    Role.STAFF: _STAFF,
    Role.ADMIN: _ADMIN,
}


def can(role: Role | str, permission: Permission) -> bool:
    """True when `role` holds `permission`; an unknown role holds nothing."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def is_staff(role: Role | str) -> bool:
    return role in (Role.STAFF, Role.ADMIN)
