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


def downgrade() -> None:
    _downgrade_errors()
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


def _upgrade_delivery() -> None:
    pass


def _downgrade_delivery() -> None:
    pass


# == announcements in every language, the guide ==================================================


def _upgrade_announcements() -> None:
    pass


def _downgrade_announcements() -> None:
    pass


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
