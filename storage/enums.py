"""The fixed vocabularies of the domain, stored as short strings that both databases read alike."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user may do; admins are named in settings, the others are granted."""

    FAMILY = "family"
    MONITOR = "monitor"
    STAFF = "staff"
    ADMIN = "admin"


class MonitorStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class CaseStatus(StrEnum):
    """The case lifecycle of DESIGN.md; the allowed moves are in `storage.lifecycle`."""

    NEW = "new"
    UNDER_REVIEW = "under_review"
    NEED_INFO = "need_info"
    VERIFIED = "verified"
    CHARGED = "charged"
    SENTENCED = "sentenced"
    TRANSFERRED = "transferred"
    RELEASED = "released"
    RETURNED = "returned"
    CLOSED = "closed"
    DECEASED = "deceased"


class CloseReason(StrEnum):
    """Why staff closed a case (kept in `cases.closed_reason`)."""

    DUPLICATE = "duplicate"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"


class Visibility(StrEnum):
    """What the family allowed: name public, anonymous (code, region, status, date), staff only."""

    PUBLIC = "public"
    ANONYMOUS = "anonymous"
    STAFF_ONLY = "staff_only"


class Region(StrEnum):
    CRIMEA = "crimea"
    SEVASTOPOL = "sevastopol"
    DONETSK = "donetsk"
    LUHANSK = "luhansk"
    ZAPORIZHZHIA = "zaporizhzhia"
    KHERSON = "kherson"
    RUSSIA = "russia"
    OTHER = "other"


class Detainer(StrEnum):
    FSB = "fsb"
    POLICE = "police"
    MILITARY = "military"
    UNKNOWN = "unknown"
    OTHER = "other"


class Relation(StrEnum):
    PARENT = "parent"
    SPOUSE = "spouse"
    CHILD = "child"
    SIBLING = "sibling"
    OTHER_RELATIVE = "other_relative"
    FRIEND = "friend"
    LAWYER = "lawyer"
    OTHER = "other"


class EventKind(StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    PUBLIC_NOTE = "public_note"  # to the family, and to monitors when the case is public
    FAMILY_NOTE = "family_note"  # to the family only, whatever the case's visibility
    INTERNAL_NOTE = "internal_note"
    INFO_REQUESTED = "info_requested"
    INFO_RECEIVED = "info_received"
    CONTACT_LINKED = "contact_linked"
    MERGED = "merged"
    VISIBILITY_CHANGED = "visibility_changed"
    URGENT_TAKEN = "urgent_taken"  # a staff member on call took an urgent case
    URGENT_STEP = "urgent_step"  # a step the family is told ("a lawyer is on the way")
    URGENT_ESCALATED = "urgent_escalated"  # nobody took it in time: sent again, and to admins
    RECORD_CHANGED = "record_changed"  # a field of the prisoner's record (storage/record.py)


class Custody(StrEnum):
    """Where the person stands, apart from the case lifecycle: the categories the Crimean Tatar
    Resource Center uses in its lists of political prisoners."""

    PRE_TRIAL = "pre_trial"  # in a pre-trial detention centre (SIZO)
    HOUSE_ARREST = "house_arrest"  # house arrest or restrictions
    COLONY = "colony"  # serving a sentence in a colony or prison
    IN_TRANSIT = "in_transit"  # being moved between places ("etap")
    RELEASED = "released"
    PERSECUTED_FREE = "persecuted_free"  # prosecuted, not detained
    UNKNOWN = "unknown"  # whereabouts unknown


class HearingAccess(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SentenceRegime(StrEnum):
    """The regime of a colony sentence under the Russian code applied in occupied Crimea."""

    GENERAL = "general"
    STRICT = "strict"
    SPECIAL = "special"
    PRISON = "prison"
    SETTLEMENT = "settlement"


class HealthFlag(StrEnum):
    CHRONIC = "chronic"
    URGENT_CARE = "urgent_care"


class SignOfLife(StrEnum):
    """What told a family the person is alive and where: logged with one tap."""

    LETTER = "letter"
    CALL = "call"
    VISIT = "visit"
    LAWYER_VISIT = "lawyer_visit"


class UrgentKind(StrEnum):
    """What is happening now, as the family chose it on the urgent path."""

    SEARCH = "search"
    DETENTION = "detention"
    TAKEN_AWAY = "taken_away"


class UrgentStep(StrEnum):
    """What staff tell a family during an urgent case, each picked from a button."""

    TAKEN = "taken"  # said by itself when someone takes the case
    LAWYER_TOLD = "lawyer_told"
    LAWYER_ON_WAY = "lawyer_on_way"
    LAWYER_THERE = "lawyer_there"
    STILL_LOOKING = "still_looking"  # for a lawyer who can come
    LOCATING = "locating"  # finding out where the person was taken
    LOCATED = "located"
    WILL_CALL = "will_call"
    DONE = "done"


class SubscriptionScope(StrEnum):
    CASE = "case"
    REGION = "region"
    GROUP = "group"
    ALL = "all"
    FILTER = "filter"  # a saved case-library filter (storage/library.py)


class AlertFilter(StrEnum):
    ALL_CHANGES = "all"
    VERDICTS_AND_RETURNS = "verdicts"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    CANCELLED = "cancelled"


class OutboxKind(StrEnum):
    CASE_ALERT = "case_alert"
    STAFF_ALERT = "staff_alert"
    DIGEST = "digest"
    REMINDER = "reminder"
    BROADCAST = "broadcast"


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class AuditOutcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    REFUSED = "refused"
