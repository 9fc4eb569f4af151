"""The account deactivation every service records (coc_shared.deactivation), on both dialects:
recorded once, the service's erasure run once, a malformed event refused as permanent."""

from datetime import UTC, datetime

import pytest
from sharedkit import unique_suffix
from sqlalchemy import MetaData, func, select

from coc_shared.db import ensure_schema, make_engine
from coc_shared.deactivation import AccountDeactivation, account_deactivated_handler
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


def test_the_handler_records_once_and_erases_once(engine_and_tables):
    engine, table, outbox = engine_and_tables
    erased = []
    handler = account_deactivated_handler(table, erase=lambda uow, d: erased.append(d.account_id))
    for _n in range(2):  # the same account announced twice (e.g. two events)
        event = Event(
            type="account.deactivated",
            producer="gdpr",
            correlation_id="a-1",
            subject="a-1",
            data={"account_id": "a-1", "erased_at": "2026-11-27T10:00:00+00:00"},
        )
        with engine.begin() as conn:
            ctx = Bound(conn, outbox, "test")
            handler(event, ctx)
            ctx.flush()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
    assert erased == ["a-1"]
