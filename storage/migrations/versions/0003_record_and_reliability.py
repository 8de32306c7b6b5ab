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


def downgrade() -> None:
    _downgrade_announcements()
    _downgrade_delivery()
    _downgrade_record()
    _downgrade_report_form()


# == the report form: fields registry, renamed columns, versioned form store ====================


def _upgrade_report_form() -> None:
    pass


def _downgrade_report_form() -> None:
    pass


# == the prisoner's record: record fields, custody, groups, hearing reminders ===================


def _upgrade_record() -> None:
    pass


def _downgrade_record() -> None:
    pass


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
    pass


def _downgrade_announcements() -> None:
    pass
