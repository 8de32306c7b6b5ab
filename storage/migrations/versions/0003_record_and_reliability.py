"""the prisoner's record, the report form's store, delivery ownership, announcements per language

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00

One migration for this release, in sections, each owned by one change; the downgrade removes the
sections in reverse order. On SQLite, never rebuild a parent table in batch mode (rebuilding
`cases` or `users` deletes every row that refers to them): plain ALTER only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _upgrade_report_form()
    _upgrade_record()
    _upgrade_delivery()
    _upgrade_announcements()
    _upgrade_errors()
    _upgrade_inbox()
    _upgrade_find()
    _upgrade_urgent()
    _upgrade_scale_broadcast()
    _upgrade_persistence_owner()
    _upgrade_send_budget()


def downgrade() -> None:
    _downgrade_send_budget()
    _downgrade_persistence_owner()
    _downgrade_scale_broadcast()
    _downgrade_urgent()
    _downgrade_find()
    _downgrade_inbox()
    _downgrade_errors()
    _downgrade_announcements()
    _downgrade_delivery()
    _downgrade_record()
    _downgrade_report_form()


# == the report form: fields registry, renamed columns, versioned form store ====================


def _upgrade_report_form() -> None:
    # Names that say what the columns hold (plain RENAME: SQLite >= 3.25 and PostgreSQL).
    op.execute("ALTER TABLE case_personal RENAME COLUMN place TO arrest_place")
    op.execute("ALTER TABLE case_personal RENAME COLUMN held_at TO held_in")
    op.create_table(
        "report_forms",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("editing", sa.Boolean(), nullable=False),
        sa.Column("answers", sa.LargeBinary(), nullable=False),
        sa.Column("data_key_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_report_forms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"],
            ["data_keys.id"],
            name=op.f("fk_report_forms_data_key_id_data_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_report_forms")),
    )
    op.create_index(
        op.f("ix_report_forms_data_key_id"), "report_forms", ["data_key_id"], unique=False
    )
    op.create_index(
        op.f("ix_report_forms_updated_at"), "report_forms", ["updated_at"], unique=False
    )


def _downgrade_report_form() -> None:
    # Open forms are lost on a downgrade (their keys go with them); their owners start again.
    op.execute("DELETE FROM data_keys WHERE id IN (SELECT data_key_id FROM report_forms)")
    op.drop_index(op.f("ix_report_forms_updated_at"), table_name="report_forms")
    op.drop_index(op.f("ix_report_forms_data_key_id"), table_name="report_forms")
    op.drop_table("report_forms")
    op.execute("ALTER TABLE case_personal RENAME COLUMN held_in TO held_at")
    op.execute("ALTER TABLE case_personal RENAME COLUMN arrest_place TO place")


# == the prisoner's record: record fields, custody, groups, hearing reminders ===================


def _upgrade_record() -> None:
    op.create_table(
        "case_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_groups")),
    )
    op.create_table(
        "case_records",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("articles", sa.JSON(), nullable=True),
        sa.Column("criminal_case", sa.LargeBinary(), nullable=True),
        sa.Column("court", sa.LargeBinary(), nullable=True),
        sa.Column("next_hearing_at", sa.DateTime(), nullable=True),
        sa.Column("hearing_access", sa.String(length=8), nullable=True),
        sa.Column("pretrial_until", sa.Date(), nullable=True),
        sa.Column("sentence_months", sa.Integer(), nullable=True),
        sa.Column("sentence_regime", sa.String(length=16), nullable=True),
        sa.Column("detention_place", sa.LargeBinary(), nullable=True),
        sa.Column("postal_address", sa.LargeBinary(), nullable=True),
        sa.Column("transfers", sa.LargeBinary(), nullable=True),
        sa.Column("punishment_cell_since", sa.Date(), nullable=True),
        sa.Column("health_flags", sa.LargeBinary(), nullable=True),
        sa.Column("end_of_term", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_records_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["case_groups.id"], name=op.f("fk_case_records_group_id_case_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_records")),
    )  # fmt: skip
    op.create_index(op.f("ix_case_records_group_id"), "case_records", ["group_id"])
    op.create_index(op.f("ix_case_records_next_hearing_at"), "case_records", ["next_hearing_at"])
    # Plain ALTER: batch mode would rebuild `cases` and delete every row that refers to it.
    op.add_column("cases", sa.Column("custody", sa.String(length=16), nullable=True))
    op.create_index(op.f("ix_cases_custody"), "cases", ["custody"])
    op.add_column("subscriptions", sa.Column("group_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_subscriptions_group_id"), "subscriptions", ["group_id"])
    op.create_table(
        "signs_of_life",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("logged_by", sa.BigInteger(), nullable=True),
        sa.Column("by_staff", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_signs_of_life_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signs_of_life")),
    )  # fmt: skip
    op.create_index(op.f("ix_signs_of_life_case_id"), "signs_of_life", ["case_id"])


def _downgrade_record() -> None:
    op.drop_index(op.f("ix_signs_of_life_case_id"), table_name="signs_of_life")
    op.drop_table("signs_of_life")
    op.drop_index(op.f("ix_subscriptions_group_id"), table_name="subscriptions")
    op.drop_column("subscriptions", "group_id")
    op.drop_index(op.f("ix_cases_custody"), table_name="cases")
    op.drop_column("cases", "custody")  # plain, as above
    op.drop_index(op.f("ix_case_records_next_hearing_at"), table_name="case_records")
    op.drop_index(op.f("ix_case_records_group_id"), table_name="case_records")
    op.drop_table("case_records")
    op.drop_table("case_groups")


# == delivery: atomic claims, owners and leases, the outage horizon ==============================


_PENDING = "status = 'pending'"
_DEAD_UNREPORTED = "status = 'dead' AND dead_reported_at IS NULL"


def _upgrade_delivery() -> None:
    op.add_column("outbox", sa.Column("owner", sa.String(length=32), nullable=True))
    op.add_column("outbox", sa.Column("failing_since", sa.DateTime(), nullable=True))
    op.add_column("outbox", sa.Column("dead_at", sa.DateTime(), nullable=True))
    op.add_column("outbox", sa.Column("dead_reported_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["priority", "id", "chat_id", "not_before"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )
    op.create_index(
        "ix_outbox_dead_unreported",
        "outbox",
        ["dead_at"],
        sqlite_where=sa.text(_DEAD_UNREPORTED),
        postgresql_where=sa.text(_DEAD_UNREPORTED),
    )
    # Rows that died before this release were each announced to staff already.
    op.execute("UPDATE outbox SET dead_reported_at = CURRENT_TIMESTAMP WHERE status = 'dead'")


def _downgrade_delivery() -> None:
    op.drop_index("ix_outbox_dead_unreported", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    for column in ("dead_reported_at", "dead_at", "failing_since", "owner"):
        op.execute(f"ALTER TABLE outbox DROP COLUMN {column}")


# == announcements in every language, the guide ==================================================


def _upgrade_announcements() -> None:
    op.create_table(
        "broadcast_texts",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_texts_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "language", name=op.f("pk_broadcast_texts")),
    )
    op.create_table(
        "guide_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_versions")),
    )


def _downgrade_announcements() -> None:
    op.drop_table("guide_versions")
    op.drop_table("broadcast_texts")


# == errors: staff chats that cannot be reached ===================================================


def _upgrade_errors() -> None:
    op.create_table(
        "unreachable_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unreachable_chats")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_unreachable_chats_chat_id")),
        sqlite_autoincrement=True,
    )


def _downgrade_errors() -> None:
    op.drop_table("unreachable_chats")


# == the durable inbox: an update is stored before it is confirmed ========================


def _upgrade_inbox() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("data_key_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_key_id"],
            ["data_keys.id"],
            name=op.f("fk_inbox_data_key_id_data_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("update_id", name=op.f("uq_inbox_update_id")),
    )
    op.create_index(op.f("ix_inbox_data_key_id"), "inbox", ["data_key_id"], unique=False)
    op.create_index(op.f("ix_inbox_received_at"), "inbox", ["received_at"], unique=False)


def _downgrade_inbox() -> None:
    op.drop_index(op.f("ix_inbox_received_at"), table_name="inbox")
    op.drop_index(op.f("ix_inbox_data_key_id"), table_name="inbox")
    op.drop_table("inbox")


# == find, count, show and hand over: tags, the name index, saved filters, export grants =========


def _upgrade_find() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
    )
    op.create_table(
        "case_tags",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_tags_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_case_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "tag_id", name=op.f("pk_case_tags")),
    )
    op.create_index(op.f("ix_case_tags_tag_id"), "case_tags", ["tag_id"])
    op.create_table(
        "case_name_index",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("data_key_id", sa.Integer(), nullable=True),
        sa.Column("name_index", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_name_index_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.id"],
            name=op.f("fk_case_name_index_data_key_id_data_keys"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_name_index")),
    )  # fmt: skip
    op.create_index(op.f("ix_case_name_index_data_key_id"), "case_name_index", ["data_key_id"])
    op.create_index(op.f("ix_case_name_index_name_index"), "case_name_index", ["name_index"])
    op.create_table(
        "export_grants",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_export_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_export_grants")),
    )  # fmt: skip
    # Plain ALTER and plain indexes: batch mode would rebuild tables others refer to.
    op.add_column("subscriptions", sa.Column("case_filter", sa.JSON(), nullable=True))
    op.create_index("ix_cases_region_status", "cases", ["region", "status"])
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_index(
        "ix_case_events_new_status_created_at", "case_events", ["new_status", "created_at"]
    )


def _downgrade_find() -> None:
    op.drop_index("ix_case_events_new_status_created_at", table_name="case_events")
    op.drop_index("ix_cases_created_at", table_name="cases")
    op.drop_index("ix_cases_region_status", table_name="cases")
    op.drop_column("subscriptions", "case_filter")  # plain, as above
    op.drop_table("export_grants")
    op.drop_index(op.f("ix_case_name_index_name_index"), table_name="case_name_index")
    op.drop_index(op.f("ix_case_name_index_data_key_id"), table_name="case_name_index")
    op.drop_table("case_name_index")
    op.drop_index(op.f("ix_case_tags_tag_id"), table_name="case_tags")
    op.drop_table("case_tags")
    op.drop_table("tags")


def _upgrade_urgent() -> None:
    op.create_table(
        "urgent_cases",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=16), nullable=True),
        sa.Column("contact_here", sa.Boolean(), nullable=False),
        sa.Column("taken_by", sa.BigInteger(), nullable=True),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.Column("taker_name", sa.LargeBinary(), nullable=True),
        sa.Column("last_step", sa.String(length=16), nullable=True),
        sa.Column("last_step_at", sa.DateTime(), nullable=True),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("last_alert_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("report_code", sa.String(length=9), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_urgent_cases_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_urgent_cases")),
    )
    op.create_index(op.f("ix_urgent_cases_taken_by"), "urgent_cases", ["taken_by"], unique=False)
    op.create_index(
        op.f("ix_urgent_cases_last_alert_at"), "urgent_cases", ["last_alert_at"], unique=False
    )
    op.create_table(
        "oncall",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("on_now", sa.Boolean(), nullable=False),
        sa.Column("off_until", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oncall_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_oncall")),
    )
    op.create_table(
        "oncall_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oncall_shifts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shifts")),
    )
    op.create_index(op.f("ix_oncall_shifts_user_id"), "oncall_shifts", ["user_id"], unique=False)


def _downgrade_urgent() -> None:
    op.drop_index(op.f("ix_oncall_shifts_user_id"), table_name="oncall_shifts")
    op.drop_table("oncall_shifts")
    op.drop_table("oncall")
    op.drop_index(op.f("ix_urgent_cases_last_alert_at"), table_name="urgent_cases")
    op.drop_index(op.f("ix_urgent_cases_taken_by"), table_name="urgent_cases")
    op.drop_table("urgent_cases")


# == scale-broadcast: the inbox's keyset index, broadcasts queued in chunks, progress counts ======


def _upgrade_scale_broadcast() -> None:
    # The staff inbox pages by (status, created_at, id): one index range per waiting status.
    op.create_index("ix_cases_inbox", "cases", ["status", "created_at", "id"], unique=False)
    # A broadcast queues its rows a chunk at a time: the last recipient queued, and whether any
    # remain (a restart continues from there).
    op.add_column("broadcasts", sa.Column("queued_through", sa.BigInteger(), nullable=True))
    op.add_column(
        "broadcasts",
        sa.Column("queue_open", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Progress counts one broadcast's rows by status (and its recent sends) from the index alone.
    op.create_index(
        "ix_outbox_broadcast_progress",
        "outbox",
        ["broadcast_id", "status", "sent_at"],
        unique=False,
    )


def _downgrade_scale_broadcast() -> None:
    op.drop_index("ix_outbox_broadcast_progress", table_name="outbox")
    op.drop_column("broadcasts", "queue_open")  # plain: a batch rebuild would cascade
    op.drop_column("broadcasts", "queued_through")
    op.drop_index("ix_cases_inbox", table_name="cases")


# == persistence_owner: a user's persistence entries found by an index, not by reading all ======

_USER_KEY_FLOOR = 1 << 62  # storage.identity.KEY_FLOOR: every user key is at least this


def _persistence_owner(row_key: str) -> int | None:
    """storage.identity.persistence_owner, as of this revision."""
    import json

    try:
        parsed = json.loads(row_key)
    except ValueError:
        return None
    parts = parsed if isinstance(parsed, list) else [parsed]
    owners = [p for p in parts if type(p) is int and p >= _USER_KEY_FLOOR]
    return owners[-1] if owners else None


def _upgrade_persistence_owner() -> None:
    op.add_column("persistence", sa.Column("owner", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_persistence_owner"), "persistence", ["owner"], unique=False)
    bind = op.get_bind()
    for kind, key in bind.execute(sa.text("SELECT kind, key FROM persistence")).all():
        owner = _persistence_owner(key)
        if owner is not None:
            bind.execute(
                sa.text("UPDATE persistence SET owner = :owner WHERE kind = :kind AND key = :key"),
                {"owner": owner, "kind": kind, "key": key},
            )


def _downgrade_persistence_owner() -> None:
    op.drop_index(op.f("ix_persistence_owner"), table_name="persistence")
    op.execute("ALTER TABLE persistence DROP COLUMN owner")


# == send_budget: one send rate shared by every process on a PostgreSQL database =================


def _upgrade_send_budget() -> None:
    op.create_table(
        "send_budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("free_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_budget")),
    )


def _downgrade_send_budget() -> None:
    op.drop_table("send_budget")
