"""gdpr: the consent ledger (marketing_consents records consents given too: their id, the order
and the version of the consent text)

Revision ID: gdpr_0008
Revises: gdpr_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0008"
down_revision = "gdpr_0007"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    for column in (
        sa.Column("consent_id", sa.String(36)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("text_version", sa.String(50)),
    ):
        op.add_column("marketing_consents", column, schema=SCHEMA)


def downgrade() -> None:
    for name in ("text_version", "order_id", "consent_id"):
        op.drop_column("marketing_consents", name, schema=SCHEMA)
