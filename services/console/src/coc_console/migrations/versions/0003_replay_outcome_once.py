"""console: a replay run's outcome is in the audit log once (a unique index on its target among
the ``replay_outcome`` entries), however many staff read its finished report at once

Revision ID: console_0003
Revises: console_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "console_0003"
down_revision = "console_0002"
branch_labels = None
depends_on = None

SCHEMA = "console"
ONLY_OUTCOMES = sa.text("action = 'replay_outcome'")


def upgrade() -> None:
    # a run's duplicates from before, if any: the first entry stays
    op.execute(
        f"DELETE FROM {SCHEMA}.audit_log WHERE action = 'replay_outcome' AND id NOT IN "
        f"(SELECT MIN(id) FROM {SCHEMA}.audit_log WHERE action = 'replay_outcome' "
        "GROUP BY target)"
    )
    op.create_index(
        "uq_audit_log_replay_outcome",
        "audit_log",
        ["target"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=ONLY_OUTCOMES,
        sqlite_where=ONLY_OUTCOMES,
    )


def downgrade() -> None:
    op.drop_index("uq_audit_log_replay_outcome", "audit_log", schema=SCHEMA)
