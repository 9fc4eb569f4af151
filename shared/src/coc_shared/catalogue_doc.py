"""Render the event catalogue (``catalogue.py``) as Markdown: ``docs/events.md``.

    python -m coc_shared.catalogue_doc > docs/events.md

The document is generated, never edited by hand; ``shared/tests/test_catalogue_doc.py`` fails when
the committed file differs from what this module renders. Test-only event types (those produced by
the ``probe`` test service) are left out.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime

from marshmallow import Schema, fields, missing, validate

from . import envelope
from .bus import EXCHANGE
from .catalogue import EventType, all_event_types, example_event
from .envelope import EnvelopeSchema

COMMAND = "python -m coc_shared.catalogue_doc > docs/events.md"
TEST_PRODUCERS = frozenset({"probe"})

# Meaning of each envelope field; a test requires one for every field of EnvelopeSchema.
ENVELOPE_MEANINGS: dict[str, str] = {
    "id": (
        "UUID of the event; also the AMQP `message_id`; the key of idempotency (consumers' inbox)"
    ),
    "type": "event type, also the routing key on the exchange and the AMQP `type` property",
    "version": "version of the type's schema (a change a consumer could not read is a new version)",
    "occurred_at": "when it happened: UTC, ISO 8601 with offset (a naive time is refused)",
    "producer": "the service that produced it",
    "correlation_id": (
        "the same for every event of one order's story; also the AMQP `correlation_id`"
    ),
    "causation_id": "id of the event or request that caused it",
    "subject": "what it is about, e.g. the order id or the account id",
    "data": "the type's payload, checked against the type's data schema",
    "personal": "personal data only (names, e-mail, phone, addresses, document references, "
    "one-time links), kept minimal; absent when the type has none. **Sealed on the wire**: "
    '`{"sealed": "A256GCM", "kid": <subject>, "ct": <base64>}` (AES-256-GCM with the data key '
    "of the event's subject, the event id as associated data; see below), or "
    '`{"erased": true}` once the subject is erased',
}

# Examples are rendered with a fixed id and time so that the document is reproducible.
EXAMPLE_OCCURRED_AT = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
_EXAMPLE_NAMESPACE = uuid.UUID("6f1c2b0e-3d4a-4e5f-8a9b-0c1d2e3f4a5b")


def documented_event_types() -> list[EventType]:
    """The registered types the document describes (test-only types excluded)."""
    return [e for e in all_event_types() if e.producer not in TEST_PRODUCERS]


def example_message(event_type: EventType) -> dict:
    """The full example message of a type (``catalogue.example_event``) with a stable id and
    time."""
    event = example_event(event_type)
    event.id = str(uuid.uuid5(_EXAMPLE_NAMESPACE, f"{event_type.type}/v{event_type.version}"))
    event.occurred_at = EXAMPLE_OCCURRED_AT
    return event.to_dict()


def anchor(event_type: EventType) -> str:
    """GitHub-style anchor of the type's heading ``### `order.placed` v1``."""
    heading = f"{event_type.type} v{event_type.version}"
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


# fields ---------------------------------------------------------------------------------------


def field_type(field: fields.Field) -> str:
    name = type(field).__name__
    if isinstance(field, fields.List):
        return f"List({field_type(field.inner)})"
    if isinstance(field, fields.Nested):
        return f"Nested({type(field.schema).__name__})"
    if isinstance(field, fields.Dict) and (field.key_field or field.value_field):
        key = field_type(field.key_field) if field.key_field else "String"
        value = field_type(field.value_field) if field.value_field else "any"
        return f"Dict({key} → {value})"
    return name


def _default(field: fields.Field) -> str | None:
    default = field.load_default
    if default is missing:
        return None
    if callable(default):
        default = default()
    return json.dumps(default, default=str, ensure_ascii=False)


def _validator(v) -> str:
    if isinstance(v, validate.OneOf):
        return "one of " + ", ".join(f"`{c}`" for c in v.choices)
    if isinstance(v, validate.Regexp):
        return f"matches `{v.regex.pattern}`"
    if isinstance(v, validate.Range):
        parts = []
        if v.min is not None:
            parts.append(f"{'≥' if v.min_inclusive else '>'} {v.min}")
        if v.max is not None:
            parts.append(f"{'≤' if v.max_inclusive else '<'} {v.max}")
        return " and ".join(parts)
    if isinstance(v, validate.Length):
        if v.equal is not None:
            return f"length {v.equal}"
        parts = []
        if v.min is not None:
            parts.append(f"length ≥ {v.min}")
        if v.max is not None:
            parts.append(f"length ≤ {v.max}")
        return " and ".join(parts)
    return type(v).__name__


def _notes(field: fields.Field) -> str:
    notes = [_validator(v) for v in field.validators]
    inner = field.inner if isinstance(field, fields.List) else None
    if inner is not None:
        notes += [f"items: {_validator(v)}" for v in inner.validators]
    if field.allow_none:
        notes.append("may be null")
    default = _default(field)
    if default is not None and not field.required:
        notes.append(f"default `{default}`")
    return "; ".join(notes)


def field_rows(schema: type[Schema] | Schema, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(name, type, required, notes) of every field, nested schemas' fields as ``parent.child``."""
    instance = schema() if isinstance(schema, type) else schema
    rows = []
    for name, field in instance.fields.items():
        key = prefix + (field.data_key or name)
        rows.append(
            (key, field_type(field), "required" if field.required else "optional", _notes(field))
        )
        nested = field.inner if isinstance(field, fields.List) else field
        if isinstance(nested, fields.Nested):
            sub = key + ("[]." if nested is not field else ".")
            rows.extend(field_rows(nested.schema, sub))
    return rows


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(cell(c) for c in row) + " |")
    return out


def _schema_section(title: str, schema: type[Schema]) -> list[str]:
    rows = [(f"`{n}`", t, r, notes) for n, t, r, notes in field_rows(schema)]
    lines = [f"{title} — `{schema.__name__}`:", ""]
    lines += _table(rows, ("field", "type", "required", "notes"))
    return lines


# document -------------------------------------------------------------------------------------


def _envelope_section() -> list[str]:
    doc = (envelope.__doc__ or "").strip().splitlines()[0]
    rows = []
    for name, field in EnvelopeSchema().fields.items():
        rows.append(
            (
                f"`{name}`",
                field_type(field),
                "required" if field.required else "optional",
                ENVELOPE_MEANINGS.get(name, ""),
                _notes(field),
            )
        )
    lines = [
        "## Envelope",
        "",
        f"{doc} Every message is JSON (`content_type: application/json`, UTF-8), persistent, and "
        "carries this envelope (`coc_shared.envelope.EnvelopeSchema`):",
        "",
    ]
    lines += _table(rows, ("field", "type", "required", "meaning", "notes"))
    lines += [
        "",
        "A body that is not JSON, not a JSON object or not a valid envelope cannot be handled: the "
        "consumer parks it at once. Consumers tolerate unknown fields, in the envelope and in "
        "`data` and `personal`; a change that an existing consumer could not read is a new version "
        "of the type. `data` is checked against the type's data schema; `personal`, when present, "
        "against its personal schema, and a type without one refuses any `personal`. An event that "
        "fails these checks is parked, never retried.",
        "",
        "### The sealed `personal` part (crypto-shredding)",
        "",
        "The `personal` part of every event is sealed as its producer writes it to its outbox "
        "(`coc_shared.unit_of_work`, with `coc_shared.keystore`) and opened by the consumer before "
        "the validation and the handler: services never see the ciphertext, and the outboxes, "
        "queues, retry queues and parked messages hold only the sealed form. The key is the data "
        "key of the event's subject — its `data.account_id`, else its `data.order_id` (a guest "
        "order), else the envelope's `subject` — kept wrapped by the key-encryption key "
        "`PERSONAL_DATA_KEK` in `ops.subject_keys`; the associated data is the event id and that "
        "subject, so a ciphertext moved to another event or subject does not open. The erasure of "
        "an account (`account.erasure_requested`) destroys its key and its orders' keys: every "
        "copy of their personal parts becomes unreadable at once, and a consumer then gets the "
        "event without its personal part, marked erased (`personal_erased`), never a failure. A "
        "part that does not open (tampered with, wrong event or subject) is parked at once. The "
        "schemas of `personal` below are those of the opened part.",
        "",
    ]
    return lines


def _exchange_section() -> list[str]:
    return [
        "## Exchange and queues",
        "",
        f"- One durable topic exchange **`{EXCHANGE}`**; the routing key of a message is its event "
        "type.",
        "- Each consuming service has its own durable quorum queue **`coc.<service>`**, bound to "
        "exactly the types it has handlers for, with its delay queues `coc.<service>.retry.<ms>ms` "
        "and its dead queue `coc.<service>.dead`.",
        "- Producers publish from their transactional outbox with publisher confirms and "
        "`mandatory`; consumers are idempotent on the envelope's `id`.",
        "- `BUS_PREFIX` (empty in production) prefixes every exchange and queue name.",
        "",
    ]


def _summary_section(types: list[EventType]) -> list[str]:
    rows = [
        (
            f"[`{e.type}`](#{anchor(e)})",
            str(e.version),
            e.producer,
            ", ".join(e.consumers),
            e.description,
        )
        for e in types
    ]
    return (
        ["## Event types", ""]
        + _table(rows, ("type", "version", "producer", "consumers", "description"))
        + [""]
    )


def _type_section(e: EventType) -> list[str]:
    lines = [
        f"### `{e.type}` v{e.version}",
        "",
        e.description,
        "",
        f"- producer: `{e.producer}`",
        f"- consumers: {', '.join(f'`{c}`' for c in e.consumers)}",
        "",
    ]
    lines += _schema_section("`data`", e.data_schema)
    lines.append("")
    if e.personal_schema is None:
        lines += [
            "`personal`: none — this type carries no personal data (`personal` is absent).",
            "",
        ]
    else:
        lines += _schema_section("`personal` (sealed on the wire; once opened)", e.personal_schema)
        lines.append("")
    lines += [
        "Example message:",
        "",
        "```json",
        json.dumps(example_message(e), indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    return lines


def render() -> str:
    types = documented_event_types()
    lines = [
        "# Event catalogue",
        "",
        f"Generated from `shared/src/coc_shared/catalogue.py` by `{COMMAND}`; do not edit by hand "
        "(`shared/tests/test_catalogue_doc.py` keeps the two equal).",
        "",
    ]
    lines += _exchange_section()
    lines += _envelope_section()
    lines += _summary_section(types)
    for e in types:
        lines += _type_section(e)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.buffer.write(render().encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
