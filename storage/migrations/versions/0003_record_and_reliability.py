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
    _upgrade_inbox()


def downgrade() -> None:
    _downgrade_inbox()
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


# == the durable inbox: an update is stored before it is confirmed ===============================


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
