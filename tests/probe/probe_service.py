"""A small real service built on coc_shared, used by the cross-process tests of the delivery
guarantees. It runs with the same runtime as the five services (``python probe_service.py
worker``); its handler's behaviour is chosen by the event's data so tests can make it fail,
crash or stall on purpose. It is test code: no production service contains such switches."""

from __future__ import annotations

import argparse
import sys
import time

from marshmallow import fields
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from coc_shared.catalogue import EventType, TolerantSchema, register
from coc_shared.migrate import package_migrations
from coc_shared.service import Runtime, ServiceDefinition, main

SCHEMA = "probe"
metadata = MetaData(schema=SCHEMA)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("seq", Integer, nullable=False),
)
echoes = Table(
    "echoes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("cause", String(36), nullable=False),
)
attempts = Table(
    "attempts",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("count", Integer, nullable=False),
)
switches = Table("switches", metadata, Column("name", String(50), primary_key=True))


class PingV1(TolerantSchema):
    seq = fields.Integer(required=True)
    fail_times = fields.Integer(load_default=0)
    poison = fields.Boolean(load_default=False)
    sleep = fields.Float(load_default=0)
    sleep_times = fields.Integer(
        load_default=0
    )  # sleep only on the first N attempts (0: on every attempt)
    track = fields.Boolean(
        load_default=False
    )  # count attempts in probe.attempts (also done for the switches below)


class HandledV1(TolerantSchema):
    seq = fields.Integer(required=True)


register(
    EventType(
        "probe.ping",
        1,
        "probe",
        ("probe",),
        PingV1,
        None,
        "Test event of the probe service.",
        {"seq": 1},
    )
)
register(
    EventType(
        "probe.handled",
        1,
        "probe",
        ("probe",),
        HandledV1,
        None,
        "Emitted by the probe's ping handler.",
        {"seq": 1},
    )
)


def _count_attempt(runtime: Runtime, event_id: str) -> int:
    """Counted outside the handler's transaction so that a rolled-back attempt is still counted."""
    with runtime.engine.connect() as conn:
        with conn.begin():
            row = conn.execute(
                select(attempts.c.count).where(attempts.c.event_id == event_id).with_for_update()
            ).first()
            if row is None:
                conn.execute(insert(attempts).values(event_id=event_id, count=1))
                return 1
            conn.execute(
                attempts.update().where(attempts.c.event_id == event_id).values(count=row.count + 1)
            )
            return row.count + 1


def handlers(runtime: Runtime):
    def on_ping(event, ctx):
        data = event.data
        tracked = (
            data.get("fail_times")
            or data.get("poison")
            or data.get("sleep_times")
            or data.get("track")
        )
        # Counted (and committed) before sleeping: a test sees that handling has started.
        n = _count_attempt(runtime, event.id) if tracked else 1
        if data.get("sleep") and (not data.get("sleep_times") or n <= data["sleep_times"]):
            time.sleep(data["sleep"])
        if n <= data.get("fail_times", 0):
            raise RuntimeError(f"planned failure {n} of {data['fail_times']}")
        if (
            data.get("poison")
            and ctx.execute(select(switches.c.name).where(switches.c.name == "fixed")).first()
            is None
        ):
            raise ValueError("poison message: the cause is not fixed yet")
        ctx.add(effects, {"event_id": event.id, "seq": data["seq"]})
        ctx.emit("probe.handled", {"seq": data["seq"]})

    def on_handled(event, ctx):
        ctx.add(echoes, {"event_id": event.id, "cause": event.causation_id})

    return {"probe.ping": on_ping, "probe.handled": on_handled}


definition = ServiceDefinition(
    name="probe", metadata=metadata, migrations=package_migrations(__file__), handlers=handlers
)


def emit(runtime: Runtime, count: int, start: int = 0, **data) -> list[str]:
    ids = []
    with runtime.unit_of_work() as uow:
        for i in range(start, start + count):
            ids.append(uow.emit("probe.ping", {"seq": i, **data}, subject=f"order-{i}").id)
        uow.commit()
    return ids


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "emit":
        parser = argparse.ArgumentParser()
        parser.add_argument("emit")
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--start", type=int, default=0)
        args = parser.parse_args()
        emit(Runtime(definition), args.count, args.start)
        sys.exit(0)
    sys.exit(main(definition))
