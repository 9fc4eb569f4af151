"""The account deactivation every service records (coc_shared.deactivation), on both dialects:
recorded once, the service's erasure run once, a malformed event refused as permanent."""

from datetime import UTC, date, datetime

import pytest
from sharedkit import unique_suffix
from sqlalchemy import MetaData, func, select

from coc_shared.db import ensure_schema, make_engine
from coc_shared.deactivation import (
    AccountDeactivation,
    ErasureReport,
    Retained,
    erasure_requested_handler,
)
from coc_shared.envelope import Event
from coc_shared.errors import InvalidEvent, PermanentError
from coc_shared.tables import account_deactivations_table, messaging_tables
from coc_shared.unit_of_work import Bound


def test_a_deactivation_reads_the_account_and_the_erasure_time():
    deactivation = AccountDeactivation.from_message(
        "e-2", {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00+00:00"}
    )
    assert deactivation == AccountDeactivation("a-1", "e-2", datetime(2026, 11, 27, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    "data",
    [
        {"erased_at": "2026-11-27T10:00:00+00:00"},
        {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00"},
        {"account_id": "a-1", "erased_at": "yesterday"},
        {"account_id": "", "erased_at": None},
    ],
)
def test_a_malformed_deactivation_is_a_permanent_error(data):
    with pytest.raises(InvalidEvent) as info:
        AccountDeactivation.from_message("e-3", data)
    assert isinstance(info.value, PermanentError)


@pytest.fixture(params=["postgresql", "sqlite"])
def engine_and_tables(request, database_url, tmp_path):
    schema = f"d_{unique_suffix()}"
    engine = (
        make_engine(database_url)
        if request.param == "postgresql"
        else make_engine(f"sqlite:///{tmp_path}/main.db", schemas=(schema,))
    )
    metadata = MetaData()
    table = account_deactivations_table(metadata, schema)
    outbox, _ = messaging_tables(metadata, schema)
    ensure_schema(engine, schema)
    metadata.create_all(engine)
    yield engine, table, outbox
    engine.dispose()


def test_the_handler_erases_once_and_reports_every_time(engine_and_tables):
    engine, table, outbox = engine_and_tables
    erased = []

    def erase(uow, deactivation):
        erased.append(deactivation.account_id)
        return ErasureReport(
            erased={"account": 1},
            retained=(Retained("invoices", "Code de commerce L123-22", date(2036, 12, 31)),),
        )

    handler = erasure_requested_handler(table, erase)
    reports = []
    for n in range(2):  # the same account asked twice (e.g. two requests)
        event = Event(
            type="account.erasure_requested",
            producer="gdpr",
            correlation_id="a-1",
            subject="a-1",
            data={
                "request_id": f"r-{n}",
                "account_id": "a-1",
                "requested_at": "2026-11-27T10:00:00+00:00",
            },
        )
        with engine.begin() as conn:
            ctx = Bound(conn, outbox, "payments")
            handler(event, ctx)
            reports += ctx.events
            ctx.flush()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 2
    assert erased == ["a-1"]
    assert [(r.type, r.data["request_id"]) for r in reports] == [
        ("account.erasure_reported.payments", "r-0"),
        ("account.erasure_reported.payments", "r-1"),
    ]
    assert reports[0].data["erased"] == [{"category": "account", "count": 1}]
    assert reports[0].data["retained"] == [
        {"category": "invoices", "legal_basis": "Code de commerce L123-22", "until": "2036-12-31"}
    ]
    assert reports[1].data["erased"] == [] and reports[1].data["retained"] == []
