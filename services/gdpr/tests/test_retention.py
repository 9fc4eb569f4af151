"""The retention schedule as data: checked at start, naming only real tables and columns, and the
two documents generated from it (docs/retention.md, docs/processing-record.md) equal to it."""

from __future__ import annotations

import importlib
import json
from datetime import date

import pytest

from coc_gdpr import retention_doc
from coc_gdpr.adapters.schedule_file import SHIPPED
from coc_gdpr.config import GdprConfig
from coc_gdpr.domain.retention import add_period, period
from coc_shared.config import ConfigError
from coc_shared.tables import ops_metadata


def metadata_of(service: str):
    if service == "ops":
        return ops_metadata
    return importlib.import_module(f"coc_{service.replace('-', '_')}.adapters.tables").metadata


def test_the_documents_are_generated_from_the_schedule():
    for name, text in retention_doc.rendered().items():
        kept = (retention_doc.DOCS / name).read_text(encoding="utf-8")
        assert kept == text, f"regenerate: python -m coc_gdpr.retention_doc --write ({name})"


def test_the_schedule_names_only_tables_and_columns_that_exist():
    schedule = GdprConfig.from_env().schedule
    missing = []
    for category in schedule.categories:
        for where in category.where:
            metadata = (
                importlib.import_module(
                    f"coc_{where.service.replace('-', '_')}.adapters.{where.schema}_tables"
                ).__dict__[f"{where.schema}_metadata"]
                if where.schema
                else metadata_of(where.service)
            )
            tables = {t.name: t for t in metadata.tables.values()}
            table = tables.get(where.table)
            if table is None:
                missing.append(f"{category.category}: {where.service}.{where.table}")
                continue
            missing += [
                f"{category.category}: {where.service}.{where.table}.{column}"
                for column in where.columns
                if column not in table.c
            ]
    assert missing == []


def test_the_schedule_holds_the_durations_the_law_sets():
    schedule = GdprConfig.from_env().schedule
    year_end = date(2026, 12, 31)
    assert schedule.category("invoices").kept_until(year_end) == date(2036, 12, 31)  # L123-22
    assert schedule.category("order_evidence").kept_until(date(2026, 12, 5)) == date(2031, 12, 5)
    assert schedule.category("provider_callbacks").kept_until(date(2026, 1, 31)) == date(
        2027, 2, 28
    )  # 13 months, the last day of a shorter month
    assert schedule.category("account").kept_until(date(2026, 1, 1)) == date(2028, 1, 1)
    assert schedule.category("card_data").end_action == "never_stored"
    assert schedule.category("card_data").where == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s["categories"][0].update(active="two years"), "active"),
        (lambda s: s["categories"][1].update(end_action="forget"), "end_action"),
        (lambda s: s["categories"].append(dict(s["categories"][0])), "account listed twice"),
        (lambda s: s["categories"][0]["events"].append("account.vanished"), "account.vanished"),
        (lambda s: s["categories"][2].update(where=[]), "stored nowhere"),
    ],
)
def test_a_schedule_that_cannot_be_used_stops_the_start_naming_its_problem(tmp_path, change, named):
    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        GdprConfig.from_env({"GDPR_RETENTION_SCHEDULE_PATH": str(path)})
    assert "GDPR_RETENTION_SCHEDULE_PATH" in str(refused.value) and named in str(refused.value)


def test_periods():
    assert period("P10Y") == (10, 0, 0) and period("P1Y6M") == (1, 6, 0)
    assert add_period(date(2024, 2, 29), "P1Y") == date(2025, 2, 28)
    assert add_period(date(2026, 12, 5), "P30D") == date(2027, 1, 4)
    for bad in ("P", "10Y", "P1W", ""):
        with pytest.raises(ValueError):
            period(bad)


def test_the_inactivity_cutoffs_come_from_the_account_category():
    from coc_gdpr.adapters.schedule_file import load_schedule
    from coc_gdpr.domain.retention import inactivity_cutoffs

    schedule = load_schedule()
    account = schedule.category("account")
    assert (account.active, account.warning) == ("P2Y", "P30D")
    cutoffs = inactivity_cutoffs(schedule, date(2026, 12, 5))
    assert cutoffs.deletion_date == date(2027, 1, 4)  # the warning's 30 days
    assert cutoffs.warn_before == date(2025, 1, 4)  # two years before that day
    assert cutoffs.deactivate_before == date(2024, 12, 5)  # two years before the run
    assert cutoffs.warned_before == date(2026, 11, 5)  # warned the whole 30 days before


@pytest.mark.parametrize(
    "category, changes, problem",
    [
        ("account", {"warning": "P3Y"}, "a warning needs an active period longer than it"),
        ("account", {"warning": "P30"}, "warning"),
        ("disclosures", {"active": "P4Y"}, "its table keeps it at least P5Y"),
    ],
)
def test_a_schedule_the_code_cannot_apply_is_refused(category, changes, problem):
    from coc_gdpr.domain.retention import RetentionError, parse_schedule

    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    [entry] = [c for c in raw["categories"] if c["category"] == category]
    entry.update(changes)
    with pytest.raises(RetentionError, match=problem):
        parse_schedule(raw)
