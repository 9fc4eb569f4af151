"""The event catalogue and its document docs/events.md (rendered by coc_shared.catalogue_doc)."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from marshmallow import fields

from coc_shared import catalogue_doc
from coc_shared.catalogue import (
    SchemaViolation,
    UnknownEventType,
    all_event_types,
    example_event,
    lookup,
    validate_event,
)
from coc_shared.catalogue_doc import COMMAND, documented_event_types, render
from coc_shared.envelope import EnvelopeSchema, Event

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
DOCUMENTED = documented_event_types()
IDS = [f"{e.type}-v{e.version}" for e in DOCUMENTED]


def _doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _doc_examples() -> list[dict]:
    return [
        json.loads(block)
        for block in re.findall(r"^```json\n(.*?)^```$", _doc_text(), flags=re.M | re.S)
    ]


# the document ---------------------------------------------------------------------------------


def test_committed_document_is_the_rendered_catalogue():
    assert _doc_text() == render(), f"docs/events.md is out of date: regenerate it with `{COMMAND}`"


def test_the_module_writes_the_document_to_stdout():
    out = subprocess.run(
        [sys.executable, "-m", "coc_shared.catalogue_doc"],
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    ).stdout
    assert out.decode("utf-8") == render()


def test_every_registered_type_is_documented_with_its_parts():
    text = _doc_text()
    assert DOCUMENTED, "the catalogue is empty"
    for e in DOCUMENTED:
        heading = f"### `{e.type}` v{e.version}"
        assert heading in text, f"{e.type} v{e.version} is missing from docs/events.md"
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        assert e.description in section
        assert f"- producer: `{e.producer}`" in section
        for consumer in e.consumers:
            assert f"`{consumer}`" in section.split("- consumers:", 1)[1].splitlines()[0]
        for name in e.data_schema().fields:
            assert f"| `{name}` |" in section, f"{e.type}: data field {name} is not documented"
        if e.personal_schema is not None:
            for name in e.personal_schema().fields:
                assert f"| `{name}` |" in section.split("`personal`", 1)[1], (
                    f"{e.type}: personal field {name}"
                )
        assert "```json" in section


def test_test_only_types_are_left_out():
    from coc_shared.catalogue import _CATALOGUE, EventType, TolerantSchema, register

    spec = register(
        EventType("probe.doc_only_test", 1, "probe", ("probe",), TolerantSchema, None, "test")
    )
    try:
        assert "probe.doc_only_test" not in render()
        assert spec in all_event_types()
    finally:
        _CATALOGUE.pop(("probe.doc_only_test", 1))


def test_every_envelope_field_has_a_documented_meaning():
    assert set(EnvelopeSchema().fields) == set(catalogue_doc.ENVELOPE_MEANINGS)
    envelope_section = _doc_text().split("## Envelope", 1)[1].split("\n## ", 1)[0]
    for name in EnvelopeSchema().fields:
        assert f"| `{name}` |" in envelope_section


def test_nested_fields_are_documented_with_their_path():
    rows = {
        name: (type_, required)
        for name, type_, required, _ in catalogue_doc.field_rows(
            lookup("order.placed", 1).data_schema
        )
    }
    assert rows["total"] == ("Nested(Money)", "required")
    assert rows["total.amount_cents"] == ("Integer", "required")
    assert rows["total.currency"] == ("String", "required")
    assert rows["documents_required"] == ("List(String)", "optional")
    assert rows["first_registration_date"] == ("Date", "required")


# the examples ---------------------------------------------------------------------------------


def test_every_example_in_the_document_parses_and_validates():
    examples = _doc_examples()
    assert len(examples) == len(DOCUMENTED)
    seen = set()
    for raw in examples:
        event = Event.from_json(json.dumps(raw))
        validate_event(event)
        assert event.to_dict() == raw, "an example is not in the envelope's wire form"
        seen.add((event.type, event.version))
    assert seen == {(e.type, e.version) for e in DOCUMENTED}


@pytest.mark.parametrize("spec", DOCUMENTED, ids=IDS)
def test_catalogue_examples_validate(spec):
    event = Event.from_json(example_event(spec).to_json())
    assert validate_event(event) is event
    assert event.producer == spec.producer
    assert (event.personal is None) == (spec.personal_schema is None)


# schema violations ----------------------------------------------------------------------------

_WRONG = {  # a value of the wrong type for each kind of field
    fields.String: 12345,
    fields.Integer: "many",
    fields.Boolean: "perhaps",
    fields.Date: "14/05/2019",
    fields.AwareDateTime: "2026-11-27T10:00:00",  # naive: refused
    fields.Nested: "not an object",
    fields.List: "not a list",
    fields.Dict: ["not", "a", "dict"],
}


def _wrong_value(field):
    for kind, value in _WRONG.items():
        if isinstance(field, kind):
            return value
    raise AssertionError(f"no wrong value known for {type(field).__name__}")


def _cases(part: str, required_only: bool):
    for e in DOCUMENTED:
        schema = e.data_schema if part == "data" else e.personal_schema
        if schema is None:
            continue
        for name, field in schema().fields.items():
            if field.required or not required_only:
                yield pytest.param(e, name, id=f"{e.type}-{name}")


def _example(spec) -> Event:
    event = example_event(spec)
    event.data = copy.deepcopy(event.data)
    event.personal = copy.deepcopy(event.personal)
    return event


@pytest.mark.parametrize("spec,name", list(_cases("data", required_only=True)))
def test_a_missing_required_data_field_is_a_violation(spec, name):
    event = _example(spec)
    del event.data[name]
    with pytest.raises(SchemaViolation, match=name):
        validate_event(event)


@pytest.mark.parametrize("spec,name", list(_cases("personal", required_only=True)))
def test_a_missing_required_personal_field_is_a_violation(spec, name):
    event = _example(spec)
    del event.personal[name]
    with pytest.raises(SchemaViolation, match=name):
        validate_event(event)


@pytest.mark.parametrize("spec,name", list(_cases("data", required_only=False)))
def test_a_data_field_of_the_wrong_type_is_a_violation(spec, name):
    event = _example(spec)
    event.data[name] = _wrong_value(spec.data_schema().fields[name])
    with pytest.raises(SchemaViolation, match=name):
        validate_event(event)


@pytest.mark.parametrize("spec,name", list(_cases("personal", required_only=False)))
def test_a_personal_field_of_the_wrong_type_is_a_violation(spec, name):
    event = _example(spec)
    event.personal[name] = _wrong_value(spec.personal_schema().fields[name])
    with pytest.raises(SchemaViolation, match=name):
        validate_event(event)


@pytest.mark.parametrize(
    "change",
    [
        {"payment_method": "cash"},  # not one of the methods
        {"total": {"amount_cents": -1, "currency": "EUR"}},  # below the range
        {"total": {"amount_cents": 24900, "currency": "euro"}},  # not an ISO currency code
        {"total": {"currency": "EUR"}},  # nested required field missing
        {"access_token_sha256": "not-a-hash"},
    ],
    ids=["one-of", "range", "regexp", "nested-required", "hash"],
)
def test_validators_of_order_placed(change):
    event = _example(lookup("order.placed", 1))
    event.data.update(change)
    with pytest.raises(SchemaViolation):
        validate_event(event)


def test_personal_data_on_a_type_without_personal_schema_is_a_violation():
    event = _example(lookup("payment.confirmed", 1))
    event.personal = {"email": "emilie@example.org"}
    with pytest.raises(SchemaViolation, match="personal"):
        validate_event(event)


def test_an_unknown_type_or_version_has_no_schema():
    event = _example(lookup("order.placed", 1))
    event.version = 99
    with pytest.raises(UnknownEventType):
        validate_event(event)
    event.version, event.type = 1, "order.teleported"
    with pytest.raises(UnknownEventType):
        validate_event(event)


# tolerance ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", DOCUMENTED, ids=IDS)
def test_unknown_fields_are_tolerated_in_envelope_data_and_personal(spec):
    raw = example_event(spec).to_dict()
    raw["trace_parent"] = "00-abc-01"  # a future envelope field
    raw["data"] = {**raw["data"], "a_future_field": {"anything": [1, 2]}}
    if raw.get("personal"):
        raw["personal"] = {**raw["personal"], "preferred_language": "fr"}
    event = Event.from_json(json.dumps(raw))
    validate_event(event)
    assert event.data["a_future_field"] == {"anything": [1, 2]}


def test_unknown_fields_in_nested_data_are_tolerated():
    event = _example(lookup("order.placed", 1))
    event.data["total"]["tax_included"] = True
    validate_event(event)
