"""gdpr: the disclosure log stays append-only, except that a disclosure made more than 5 years ago
may be deleted (the retention schedule's end of the category, applied by the purge run; the
schedule is checked not to say less, ``domain.retention.KEPT_AT_LEAST``)

Revision ID: gdpr_0011
Revises: gdpr_0010
"""

from alembic import op

revision = "gdpr_0011"
down_revision = "gdpr_0010"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"
OLD_REFUSAL = "the disclosure log is append-only: a disclosure is never changed or deleted"
REFUSAL = (
    "the disclosure log is append-only: a disclosure is never changed, nor deleted before 5 years"
)


def _function(body: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.disclosures_are_append_only() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            _function(
                "IF TG_OP = 'DELETE' THEN "
                "IF OLD.disclosed_on < (now() AT TIME ZONE 'UTC')::date - interval '5 years' "
                "THEN RETURN OLD; END IF; END IF; "
                f"RAISE EXCEPTION '{REFUSAL}';"
            )
        )
    else:
        op.execute(f"DROP TRIGGER {SCHEMA}.disclosures_no_delete")
        op.execute(
            f"CREATE TRIGGER {SCHEMA}.disclosures_no_delete BEFORE DELETE ON disclosures "
            "WHEN OLD.disclosed_on >= date('now', '-5 years') "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(f"RAISE EXCEPTION '{OLD_REFUSAL}';"))
    else:
        op.execute(f"DROP TRIGGER {SCHEMA}.disclosures_no_delete")
        op.execute(
            f"CREATE TRIGGER {SCHEMA}.disclosures_no_delete BEFORE DELETE ON disclosures "
            f"BEGIN SELECT RAISE(ABORT, '{OLD_REFUSAL}'); END"
        )
