"""Tables of the ``gdpr`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from coc_shared.tables import messaging_tables

SCHEMA = "gdpr"
metadata = MetaData(schema=SCHEMA)

deactivation_requests = Table(
    "deactivation_requests",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("account_id", String(200), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_by", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # Where the summary goes, kept only until it is sent (then set to NULL).
    Column("email", String(320)),
    Column("first_name", String(200)),
    Column("completed_at", DateTime(timezone=True)),
    # gdpr_0010: why (customer_request | inactivity); when the purge run destroyed the key of
    # the summary's address (notifications destroys it once the summary is sent)
    Column("reason", String(30), nullable=False, server_default="customer_request"),
    Column("summary_key_destroyed_at", DateTime(timezone=True)),
    # gdpr_0012: opened by staff on behalf of the customer: how the person was verified
    Column("verification", Text),
    Index("ix_deactivation_requests_account_id", "account_id"),
    Index("ix_deactivation_requests_status", "status"),
)

# Each service's answer to a request (account.erasure_reported.<service>), once per service.
erasure_reports = Table(
    "erasure_reports",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(36), nullable=False),
    Column("service", String(40), nullable=False),
    Column("erased", JSON, nullable=False),
    Column("retained", JSON, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "service", name="uq_erasure_reports_request_service"),
)

# The consent ledger: each consent to marketing given (order form, account sign-up or settings) or
# withdrawn (one-click unsubscribe, settings): who (the account, the order, the SHA-256 of the
# address, never the address), for what, when, through which channel (``source``), for which
# version of the consent text, from which event. Appended, never changed.
marketing_consents = Table(
    "marketing_consents",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("account_id", String(200)),
    Column("address_sha256", String(64)),
    Column("purpose", String(50), nullable=False),
    Column("status", String(20), nullable=False),  # withdrawn
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("source", String(50), nullable=False),  # the channel
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # gdpr_0008: the consent ledger (given and withdrawn; the order; the text's version)
    Column("consent_id", String(36)),
    Column("order_id", String(200)),
    Column("text_version", String(50)),
    Index("ix_marketing_consents_account_id", "account_id"),
    Index("ix_marketing_consents_address_sha256", "address_sha256"),
)

# Purge runs of the retention schedule: what was asked (the cutoff of each category), and what
# each service reports it removed (retention.purged.<service>).
purge_runs = Table(
    "purge_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("trigger", String(20), nullable=False),  # schedule | command
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("cutoffs", JSON, nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Index("ix_purge_runs_started_at", "started_at"),
)

purge_reports = Table(
    "purge_reports",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(36), nullable=False),
    Column("service", String(40), nullable=False),
    Column("purged", JSON, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "service", name="uq_purge_reports_run_service"),
)

# The disclosure log: each disclosure of personal data to an authority, recorded by an admin.
# Append-only: no use case changes or deletes a row, and a trigger (migration gdpr_0006) refuses
# UPDATE, DELETE and TRUNCATE; only the purge run deletes a disclosure older than the schedule's
# 5 years, which the trigger allows (gdpr_0011).
disclosures = Table(
    "disclosures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("disclosure_id", String(36), nullable=False, unique=True),
    Column("authority", String(300), nullable=False),
    Column("legal_basis", String(300), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("disclosed_on", Date, nullable=False),
    Column("staff", String(200), nullable=False),
    Column("staff_role", String(50), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("subject", String(200)),
    Column("note", Text, nullable=False),
    Index("ix_disclosures_disclosed_on", "disclosed_on"),
)

# Exports of a subject's personal data (GDPR 15 and 20): the request (an account, or a guest's
# order), where the link goes (until it is sent), the document once assembled (encrypted with
# GDPR_EXPORT_KEY, the request id as associated data; dropped once expired), the link's token as
# SHA-256 and its expiry.
data_exports = Table(
    "data_exports",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("account_id", String(200)),
    Column("order_id", String(200)),
    Column("order_ids", JSON, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_by", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # pending | ready | expired
    Column("email", String(320)),
    Column("first_name", String(200)),
    Column("ready_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("token_sha256", String(64)),
    Column("document", LargeBinary),
    Column("categories", JSON),  # the categories held, once assembled
    # gdpr_0012: opened by staff on behalf of the customer: how the person was verified
    Column("verification", Text),
    Index("ix_data_exports_subject", "subject"),
    Index("ix_data_exports_status", "status"),
)

# Each service's contribution (account.export_contributed.<service>), once per request; its data
# is dropped once the export is assembled.
export_contributions = Table(
    "export_contributions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(36), nullable=False),
    Column("service", String(40), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("data", JSON),
    Column("contributed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "service", name="uq_export_contributions_request_service"),
)

# The delivery: each download of an export through its link.
export_downloads = Table(
    "export_downloads",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(36), nullable=False),
    Column("part", String(20), nullable=False),  # document | summary
    Column("downloaded_at", DateTime(timezone=True), nullable=False),
    Index("ix_export_downloads_request_id", "request_id"),
)

# Requests to correct personal data (GDPR 16) opened by staff on behalf of the customer: what is
# to be corrected, the channel, who verified the person and how, the one-month deadline, and once
# done who made the change and what was changed (gdpr_0012).
correction_requests = Table(
    "correction_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("account_id", String(200)),
    Column("order_id", String(200)),
    Column("subject", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("verified_by", String(200), nullable=False),
    Column("verification", Text, nullable=False),
    Column("correction", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_by", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # open | done
    Column("done_at", DateTime(timezone=True)),
    Column("done_by", String(200)),
    Column("changed", Text),
    Index("ix_correction_requests_subject", "subject"),
    Index("ix_correction_requests_status_due_by", "status", "due_by"),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
