"""kloset_sdk.export_each: one result per record, the rest skipped after a failure."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from kloset_sdk import Record, Result, export_each

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_record_gets_one_result_and_the_first_failure_is_returned() -> None:
    records = [Record.file(f"/{n}", lambda: io.BytesIO(b"x"), WHEN) for n in "abcd"]
    results: list[Result] = []
    handled: list[str] = []

    def handle(record: Record) -> None:
        handled.append(record.pathname)
        if record.pathname == "/b":
            raise ValueError("b is bad")

    failure = export_each(iter(records), results.append, handle)
    assert isinstance(failure, ValueError) and str(failure) == "b is bad"
    assert handled == ["/a", "/b"]  # nothing handled after the failure
    assert [(r.record.pathname, r.error) for r in results] == [
        ("/a", ""),
        ("/b", "b is bad"),
        ("/c", "skipped"),
        ("/d", "skipped"),
    ]


def test_no_failure_returns_none() -> None:
    results: list[Result] = []
    assert export_each(iter([Record.directory("/", WHEN)]), results.append, lambda r: None) is None
    assert [r.error for r in results] == [""]
