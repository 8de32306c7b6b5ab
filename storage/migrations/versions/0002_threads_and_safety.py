"""threads (two-way conversation), prepared answers, and the safety fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:30:00

One migration for this release, in sections: each section adds what one change needs, and the
downgrade removes the sections in reverse order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # -- threads: a family's messages and staff answers; prepared answers ----------------------
    op.create_table(
        "threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("assigned_to", sa.BigInteger(), nullable=True),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column("last_message_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_threads_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_threads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
    )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_threads_assigned_to"), ["assigned_to"], unique=False)
        batch_op.create_index(batch_op.f("ix_threads_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_threads_last_message_at"), ["last_message_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_threads_user_id"), ["user_id"], unique=False)

    op.create_table(
        "thread_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("from_staff", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("file_id", sa.LargeBinary(), nullable=True),
        sa.Column("chat_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_thread_messages_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_messages")),
    )
    with op.batch_alter_table("thread_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_thread_messages_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_thread_messages_thread_id"), ["thread_id"], unique=False
        )

    op.create_table(
        "prepared_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepared_answers")),
        sa.UniqueConstraint("key", "language", name=op.f("uq_prepared_answers_key")),
    )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_message_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_thread_message_id_thread_messages"),
            "thread_messages",
            ["thread_message_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_thread_message_id"), ["thread_message_id"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_sent_message", ["chat_id", "telegram_message_id"], unique=False
        )

    # -- safety (issue 12): sections are added below this line, each with its downgrade --------

    # -- safety: impostors (a duplicate report gets its own case, with a staff-only hint to the
    # earlier one; the reporter's Telegram name and username, sealed, for staff to verify them)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duplicate_of", sa.String(length=9), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_duplicate_of"), ["duplicate_of"], unique=False)
    with op.batch_alter_table("case_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_name", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("telegram_username", sa.LargeBinary(), nullable=True))

    # -- safety: broadcast texts sealed (issue 12, point 11). The plain texts are erased, not
    # converted: each one is already in its broadcast's sealed outbox rows, and nothing reads a
    # broadcast's text back after queuing it.
    # Plain ALTER TABLE, not batch mode: on SQLite a batch copies `broadcasts` into a new table
    # and drops the old one, and with foreign keys on that deletes the broadcasts' outbox rows.
    op.drop_column("broadcasts", "text")
    op.add_column("broadcasts", sa.Column("text", sa.LargeBinary(), nullable=True))

    # -- safety: a seized phone (issue 12, points 5-7): discreet pushes on by default, a PIN
    # (sealed scrypt hash), freeze; the ids of messages to delete (hide chat, expiring details)
    # Plain ALTER TABLE: a batch would rebuild `users`, deleting every row that refers to a user.
    op.add_column(
        "users", sa.Column("discreet", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column("users", sa.Column("frozen_at", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("pin_hash", sa.LargeBinary(), nullable=True))
    op.add_column(
        "users", sa.Column("pin_failures", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "sensitive_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("delete_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensitive_messages")),
        sa.UniqueConstraint("chat_id", "message_id", name=op.f("uq_sensitive_messages_chat_id")),
    )
    with op.batch_alter_table("sensitive_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sensitive_messages_delete_at"), ["delete_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sensitive_messages_sent_at"), ["sent_at"], unique=False
        )

    # -- safety: crypto-shredding (issue 12, point 9). Data keys sealed by the master key, one
    # per case, per user and per persistence entry; outbox rows and persistence entries name the
    # key their payload is sealed with. Existing values stay sealed by the master key until the
    # start-up step (`storage.data_keys.give_existing_data_keys`) re-seals them.
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_data_keys_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("case_id", name=op.f("uq_data_keys_case_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_data_keys_user_id")),
        sqlite_autoincrement=True,
    )
    for table in ("outbox", "persistence"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("data_key_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_data_key_id_data_keys"),
                "data_keys",
                ["data_key_id"],
                ["id"],
                ondelete="CASCADE",
            )
            batch_op.create_index(
                batch_op.f(f"ix_{table}_data_key_id"), ["data_key_id"], unique=False
            )

    # -- safety: Telegram ids at rest (issue 12, point 10). `users.id` and every column naming a
    # user hold a keyed index (storage/identity.py); the Telegram id is kept sealed here, for
    # sending. Converting the ids already stored needs the data key, so it is done at start
    # (`storage.identity_upgrade.key_telegram_ids`), in one transaction. Not in batch mode:
    # `users` is referenced with ON DELETE CASCADE, and SQLite would rebuild it.
    op.add_column("users", sa.Column("telegram_id", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # -- safety (issue 12): reverse of the sections above, newest first ------------------------

    # -- safety: Telegram ids at rest (the keyed ids cannot be turned back: they stay keyed)
    op.drop_column("users", "telegram_id")

    # -- safety: crypto-shredding (values sealed by data keys cannot be opened without them:
    # downgrading after envelope encryption loses them; restore a backup instead)
    for table in ("persistence", "outbox"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_data_key_id"))
            batch_op.drop_constraint(
                batch_op.f(f"fk_{table}_data_key_id_data_keys"), type_="foreignkey"
            )
            batch_op.drop_column("data_key_id")
    op.drop_table("data_keys")

    # -- safety: a seized phone
    with op.batch_alter_table("sensitive_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sensitive_messages_sent_at"))
        batch_op.drop_index(batch_op.f("ix_sensitive_messages_delete_at"))
    op.drop_table("sensitive_messages")
    # Not in batch mode: rebuilding `users` would delete every row that refers to a user.
    for column in ("pin_failures", "pin_hash", "frozen_at", "discreet"):
        op.drop_column("users", column)

    # -- safety: broadcast texts sealed (the sealed texts cannot go back in clear: left empty)
    op.drop_column("broadcasts", "text")
    op.add_column("broadcasts", sa.Column("text", sa.Text(), nullable=False, server_default=""))

    # -- safety: impostors
    op.drop_column("case_contacts", "telegram_username")  # plain, as below
    op.drop_column("case_contacts", "telegram_name")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_duplicate_of"))
    # Not in batch mode: on SQLite that would copy `cases` into a new table and drop the old one,
    # and with foreign keys on, dropping it deletes every case's personal row, contacts, events.
    op.drop_column("cases", "duplicate_of")

    # -- threads ------------------------------------------------------------------------------
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_sent_message")
        batch_op.drop_index(batch_op.f("ix_outbox_thread_message_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_thread_message_id_thread_messages"), type_="foreignkey"
        )
        batch_op.drop_column("thread_message_id")
    op.drop_table("prepared_answers")
    with op.batch_alter_table("thread_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thread_messages_thread_id"))
        batch_op.drop_index(batch_op.f("ix_thread_messages_created_at"))
    op.drop_table("thread_messages")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_threads_user_id"))
        batch_op.drop_index(batch_op.f("ix_threads_last_message_at"))
        batch_op.drop_index(batch_op.f("ix_threads_case_id"))
        batch_op.drop_index(batch_op.f("ix_threads_assigned_to"))
    op.drop_table("threads")
