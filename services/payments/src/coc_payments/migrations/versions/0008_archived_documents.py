"""payments: billing_documents.archived_at — an erased account's invoices and credit notes move to
the invoice archive (schema ``archive``); the active row keeps its number, amounts and digests (the
series' chain) and loses its data and PDF. The immutability trigger allows exactly that change.

Revision ID: payments_0008
Revises: payments_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0008"
down_revision = "payments_0007"
branch_labels = None
depends_on = None

SCHEMA = "payments"
REFUSAL = "an issued invoice or credit note is never changed or deleted"
# Every column but the three the archiving changes: none of them may change.
KEPT = (
    "kind seq number order_id invoice_of_order refund_id issued_at currency net_cents vat_cents "
    "total_cents vat_regime provider data_sha256 pdf_sha256 previous_sha256 chain_sha256"
).split()

# PostgreSQL: the row as JSON without data, pdf and archived_at must stay equal (a column added
# later is covered too); SQLite: the same, column by column.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.billing_documents_are_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.archived_at IS NULL AND NEW.archived_at IS NOT NULL
        AND NEW.data IS NULL AND NEW.pdf IS NULL
        AND to_jsonb(NEW) - 'data' - 'pdf' - 'archived_at'
            = to_jsonb(OLD) - 'data' - 'pdf' - 'archived_at' THEN
        RETURN NEW;  -- moved to the invoice archive
    END IF;
    RAISE EXCEPTION '{REFUSAL}';
END $$
"""
_PG_FUNCTION_BEFORE = (
    f"CREATE OR REPLACE FUNCTION {SCHEMA}.billing_documents_are_final() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
)


def _sqlite_triggers(archiving_allowed: bool) -> None:
    moved = " AND ".join(
        [
            "OLD.archived_at IS NULL",
            "NEW.archived_at IS NOT NULL",
            "NEW.data IS NULL",
            "NEW.pdf IS NULL",
            *(f"NEW.{c} IS OLD.{c}" for c in KEPT),
        ]
    )
    when = f"WHEN NOT ({moved}) " if archiving_allowed else ""
    op.execute(
        f"CREATE TRIGGER {SCHEMA}.billing_documents_no_update BEFORE UPDATE ON billing_documents "
        f"{when}BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )
    op.execute(
        f"CREATE TRIGGER {SCHEMA}.billing_documents_no_delete BEFORE DELETE ON billing_documents "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not postgresql:  # the table is copied (batch): its triggers are made again after
        op.execute(f"DROP TRIGGER {SCHEMA}.billing_documents_no_update")
        op.execute(f"DROP TRIGGER {SCHEMA}.billing_documents_no_delete")
    with op.batch_alter_table("billing_documents", schema=SCHEMA) as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True)))
        batch.alter_column("data", existing_type=sa.LargeBinary, nullable=True)
        batch.alter_column("pdf", existing_type=sa.LargeBinary, nullable=True)
    if postgresql:
        op.execute(_PG_FUNCTION)
    else:
        _sqlite_triggers(archiving_allowed=True)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(_PG_FUNCTION_BEFORE)
    else:
        op.execute(f"DROP TRIGGER {SCHEMA}.billing_documents_no_update")
        op.execute(f"DROP TRIGGER {SCHEMA}.billing_documents_no_delete")
    with op.batch_alter_table("billing_documents", schema=SCHEMA) as batch:
        batch.drop_column("archived_at")
    if not postgresql:
        _sqlite_triggers(archiving_allowed=False)
