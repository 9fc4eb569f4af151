"""notifications: mails to send (and sent), order recipients, marketing contacts, campaigns,
account deactivations; the one-row-per-event notifications table goes (nothing was ever sent
from it), its order recipients carried over

Revision ID: notifications_0004
Revises: notifications_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0004"
down_revision = "notifications_0003"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def _id():
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "mails",
        _id(),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("recipient_key", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("order_id", sa.String(200)),
        sa.Column("account_id", sa.String(200)),
        sa.Column("campaign_id", sa.String(36)),
        sa.Column("contact_id", sa.String(36)),
        sa.Column("to_address", sa.String(320)),
        sa.Column("to_name", sa.String(200)),
        sa.Column("secret_url", sa.Text),
        sa.Column("data", sa.JSON),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_answer", sa.Text),
        sa.Column("message_id", sa.String(300)),
        sa.Column("address_hash", sa.String(64)),
        sa.Column("address_masked", sa.String(100)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "source_id", "template", "recipient_key", name="uq_mails_source_template"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_mails_due", "mails", ["status", "next_attempt_at"], schema=SCHEMA)
    op.create_index("ix_mails_order_id", "mails", ["order_id"], schema=SCHEMA)
    op.create_index("ix_mails_account_id", "mails", ["account_id"], schema=SCHEMA)
    recipients = op.create_table(
        "order_recipients",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("order_number", sa.String(100)),
        sa.Column("account_id", sa.String(200)),
        sa.Column("payment_method", sa.String(20)),
        sa.Column("total_cents", sa.BigInteger),
        sa.Column("currency", sa.String(3)),
        sa.Column("documents_required", sa.JSON),
        sa.Column("email", sa.String(320)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("erase_after", sa.DateTime(timezone=True)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_order_recipients_account_id", "order_recipients", ["account_id"], schema=SCHEMA
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320)),
        sa.Column("account_id", sa.String(200)),
        sa.Column("consented_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("source_event_id", sa.String(36)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_contacts_account_id", "contacts", ["account_id"], schema=SCHEMA)
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("per_second", sa.Float, nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "account_deactivations",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    # The recipients of orders placed so far (their later mails need them); order numbers and
    # totals were not kept: their mails name the order by what they have.
    old = sa.table(
        "notifications",
        sa.column("order_id"),
        sa.column("account_id"),
        sa.column("recipient_email"),
        sa.column("event_type"),
        sa.column("created_at"),
        schema=SCHEMA,
    )
    op.execute(
        recipients.insert().from_select(
            ["order_id", "account_id", "email", "created_at"],
            sa.select(
                old.c.order_id,
                sa.func.max(old.c.account_id),
                sa.func.max(old.c.recipient_email),
                sa.func.min(old.c.created_at),
            )
            .where(old.c.event_type == "order.placed", old.c.order_id.is_not(None))
            .group_by(old.c.order_id),
        )
    )
    op.drop_index("ix_notifications_account_id", table_name="notifications", schema=SCHEMA)
    op.drop_index("ix_notifications_order_id", table_name="notifications", schema=SCHEMA)
    op.drop_table("notifications", schema=SCHEMA)


def downgrade() -> None:
    for name in ("account_deactivations", "campaigns", "contacts", "order_recipients", "mails"):
        op.drop_table(name, schema=SCHEMA)
