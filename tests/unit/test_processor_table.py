"""The processor-type table is the one place in the product that knows what differs between types: no
other module of the functions, the stacks or the CLI names a type's endpoint, webhook events or statuses,
and every row is complete and consistent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchdrop_core.extend.processors import (
    BATCH_EVENT_TYPES,
    PROCESSOR_TYPES,
    RUN_EVENT_TYPES,
    WEBHOOK_EVENTS,
    processor_type,
)

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "lambdas/batchdrop_core/extend/processors.py"
PRODUCT = [ROOT / "lambdas", ROOT / "stacks", ROOT / "batchdrop_cli"]


def product_sources() -> list[Path]:
    return [p for folder in PRODUCT for p in folder.rglob("*.py") if p != TABLE]


def type_specific_words() -> set[str]:
    """Every endpoint, list filter, webhook event and type-specific status or reason the table holds."""
    words: set[str] = set(WEBHOOK_EVENTS)
    for info in PROCESSOR_TYPES.values():
        words.add(info.runs_path)
        if info.processors_path:
            words.add(info.processors_path)
        if info.filter_param:
            words.add(info.filter_param)
        words |= set(info.review_statuses) | set(info.download_failures)
    return words


def test_no_other_product_module_names_what_the_table_holds() -> None:
    found = []
    for path in product_sources():
        text = path.read_text(encoding="utf-8")
        for word in type_specific_words():
            if re.search(rf"[\"'`]{re.escape(word)}[\"'`/?]", text):
                found.append(f"{path.relative_to(ROOT)}: {word}")
    assert found == []


@pytest.mark.parametrize("name", sorted(PROCESSOR_TYPES))
def test_every_row_is_consistent(name: str) -> None:
    info = PROCESSOR_TYPES[name]
    assert info.name == name
    assert info.succeeded_status in info.terminal_statuses <= info.statuses
    assert not info.review_statuses & info.terminal_statuses
    assert info.review_statuses <= info.statuses
    # A batch is heard of once (its webhook) or run by run, never neither
    assert bool(info.batch_events) != bool(info.run_events)
    assert info.reports_per_run == bool(info.run_events)
    # A type that names a processor can read it; a type configured instead names none
    assert (info.id_prefix is None) == (info.reference == "config")
    assert info.page_size_params
    # A batch Extend cannot read (no BatchRun) is only known by its runs' events
    if not info.batch_readable:
        assert info.reports_per_run


def test_events_map_back_to_their_types() -> None:
    assert set(WEBHOOK_EVENTS) == set(BATCH_EVENT_TYPES) | set(RUN_EVENT_TYPES)
    assert not set(BATCH_EVENT_TYPES) & set(RUN_EVENT_TYPES)
    assert {i.name for i in BATCH_EVENT_TYPES["batch_processor_run.processed"]} == {
        "extract",
        "classify",
        "split",
    }
    assert RUN_EVENT_TYPES["workflow_run.needs_review"].name == "workflow"


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown processor type 'ocr'; expected one of extract, classify"):
        processor_type("ocr")
