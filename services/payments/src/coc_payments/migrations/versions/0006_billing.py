"""payments: billing — sales (what an invoice needs of each order), billing_documents (invoices
and credit notes, written once: a trigger refuses UPDATE and DELETE), document_counters (the
gap-free counters of the two series), refunds, vat_checks

Revision ID: payments_0006
Revises: payments_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0006"
down_revision = "payments_0005"
branch_labels = None
depends_on = None

SCHEMA = "payments"
_ID = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "sales",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("account_id", sa.String(200)),
        sa.Column("sale", sa.JSON, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_sales_account_id", "sales", ["account_id"], schema=SCHEMA)
    op.create_table(
        "billing_documents",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("number", sa.String(30), nullable=False, unique=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("invoice_of_order", sa.String(200), unique=True),
        sa.Column("refund_id", sa.String(36)),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("net_cents", sa.BigInteger, nullable=False),
        sa.Column("vat_cents", sa.BigInteger, nullable=False),
        sa.Column("total_cents", sa.BigInteger, nullable=False),
        sa.Column("vat_regime", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("pdf", sa.LargeBinary, nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("previous_sha256", sa.String(64), nullable=False),
        sa.Column("chain_sha256", sa.String(64), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_billing_documents_order_id", "billing_documents", ["order_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_billing_documents_issued_at", "billing_documents", ["issued_at"], schema=SCHEMA
    )
    op.create_table(
        "document_counters",
        sa.Column("series", sa.String(20), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_chain_sha256", sa.String(64), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("provider_transaction_id", sa.String(200), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("credit_note_number", sa.String(30)),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("approved_role", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("provider_refund_id", sa.String(200)),
        sa.Column("failure", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sepa_file", sa.LargeBinary),
        sa.Column("business", sa.Boolean, nullable=False),
        sa.UniqueConstraint("provider", "provider_transaction_id", name="uq_refunds_payment"),
        schema=SCHEMA,
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"], schema=SCHEMA)
    op.create_index("ix_refunds_status", "refunds", ["status"], schema=SCHEMA)
    op.create_table(
        "vat_checks",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("vat_number", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_vat_checks_due", "vat_checks", ["status", "next_attempt_at"], schema=SCHEMA)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {SCHEMA}.billing_documents_are_final() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'an issued invoice or credit note is never changed or deleted'; END $$"
        )
        op.execute(
            "CREATE TRIGGER billing_documents_are_final BEFORE UPDATE OR DELETE ON "
            f"{SCHEMA}.billing_documents FOR EACH ROW EXECUTE FUNCTION "
            f"{SCHEMA}.billing_documents_are_final()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {SCHEMA}.billing_documents_no_{action.lower()} BEFORE {action} "
                "ON billing_documents BEGIN SELECT RAISE(ABORT, "
                "'an issued invoice or credit note is never changed or deleted'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER billing_documents_are_final ON {SCHEMA}.billing_documents")
        op.execute(f"DROP FUNCTION {SCHEMA}.billing_documents_are_final()")
    op.drop_table("vat_checks", schema=SCHEMA)
    op.drop_table("refunds", schema=SCHEMA)
    op.drop_table("document_counters", schema=SCHEMA)
    op.drop_table("billing_documents", schema=SCHEMA)
    op.drop_table("sales", schema=SCHEMA)
