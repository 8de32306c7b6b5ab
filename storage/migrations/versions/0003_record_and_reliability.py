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


def _upgrade_delivery() -> None:
    pass


def _downgrade_delivery() -> None:
    pass


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
