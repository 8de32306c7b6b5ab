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
    _upgrade_urgent()


def downgrade() -> None:
    _downgrade_urgent()
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


# == "it is happening now": urgent cases and the on-call roster ==================================


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
