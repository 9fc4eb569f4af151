"""gdpr: the disclosure log (disclosures of personal data to an authority), append-only

Revision ID: gdpr_0006
Revises: gdpr_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0006"
down_revision = "gdpr_0005"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"
REFUSAL = "the disclosure log is append-only: a disclosure is never changed or deleted"


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("disclosure_id", sa.String(36), nullable=False, unique=True),
        sa.Column("authority", sa.String(300), nullable=False),
        sa.Column("legal_basis", sa.String(300), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("disclosed_on", sa.Date, nullable=False),
        sa.Column("staff", sa.String(200), nullable=False),
        sa.Column("staff_role", sa.String(50), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(200)),
        sa.Column("note", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_disclosures_disclosed_on", "disclosures", ["disclosed_on"], schema=SCHEMA)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {SCHEMA}.disclosures_are_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER disclosures_are_append_only BEFORE UPDATE OR DELETE ON "
            f"{SCHEMA}.disclosures FOR EACH ROW EXECUTE FUNCTION "
            f"{SCHEMA}.disclosures_are_append_only()"
        )
        op.execute(
            "CREATE TRIGGER disclosures_are_never_truncated BEFORE TRUNCATE ON "
            f"{SCHEMA}.disclosures FOR EACH STATEMENT EXECUTE FUNCTION "
            f"{SCHEMA}.disclosures_are_append_only()"
        )
        # and no role but the owner holds a privilege on it that could change a row
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {SCHEMA}.disclosures FROM PUBLIC")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {SCHEMA}.disclosures_no_{action.lower()} BEFORE {action} "
                f"ON disclosures BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER disclosures_are_never_truncated ON {SCHEMA}.disclosures")
        op.execute(f"DROP TRIGGER disclosures_are_append_only ON {SCHEMA}.disclosures")
        op.execute(f"DROP FUNCTION {SCHEMA}.disclosures_are_append_only()")
    op.drop_table("disclosures", schema=SCHEMA)
