"""The drill of a binary-log snapshot: every archived log read to its end, and compared.

No server is needed: each log is walked event by event as it streams
(:class:`~plakar_mysql.binlog.scanner.Scanner`, the backup's own reader), so a
log cut short or damaged in the middle of an event is named.  Then, against
``/manifest.json``: each log is there with its size, first and last event
times and GTID range; the GTID range of each log starts where the previous one
ended (a gap names both logs and the missing transactions' bounds); the last
log ends at the manifest's ``gtid_end``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kloset_sdk import Record, Report, export_each
from plakar_mysql.binlog.layout import BINLOG_DIR, MANIFEST_LIMIT, MANIFEST_PATH
from plakar_mysql.binlog.scanner import BinlogFormatError, FileFacts, Scanner
from plakar_mysql.core.errors import shown
from plakar_mysql.core.gtid import GtidError, Point, parse_point
from plakar_mysql.drill.report import DatabaseResult, DrillReport
from plakar_mysql.drill.server import DrillError

_BLOCK = 1 << 20
_COMPARED = ("size", "first_event_time", "last_event_time", "gtid_start", "gtid_end")


class _Archive:
    """The logs as they arrive, scanned, and the manifest."""

    def __init__(self, result: DatabaseResult) -> None:
        self.result = result
        self.facts: dict[str, FileFacts] = {}
        self.manifest: dict[str, Any] | None = None

    def take(self, record: Record) -> None:
        path = record.pathname
        if record.opener is None or record.file_info is None or not record.file_info.is_regular:
            return
        if path == MANIFEST_PATH:
            self.manifest = _manifest(record)
            return
        if not path.startswith(BINLOG_DIR + "/"):
            raise DrillError(f"{shown(path)} is not part of a binary-log snapshot")
        name = path[len(BINLOG_DIR) + 1 :]
        scanner = Scanner(name)
        stream = record.open()
        failure: str | None = None
        try:
            while block := stream.read(_BLOCK):
                if failure is None:
                    try:
                        scanner.feed(block)
                    except BinlogFormatError as exc:
                        failure = str(exc)
        finally:
            stream.close()
        if failure is None:
            try:
                self.facts[name] = scanner.finish()
            except BinlogFormatError as exc:
                failure = str(exc)
        if failure is not None:
            self.result.problems.append(f"{name} does not parse to its end: {failure}")
        self.result.tables += 1
        self.result.bytes += scanner.facts.size
        self.result.rows += scanner.facts.transactions


def _manifest(record: Record) -> dict[str, Any]:
    stream = record.open()
    try:
        data = b""
        while len(data) <= MANIFEST_LIMIT and (block := stream.read(_BLOCK)):
            data += block
    finally:
        stream.close()
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise DrillError(f"{MANIFEST_PATH} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise DrillError(f"{MANIFEST_PATH} is not the manifest of a binary-log snapshot")
    return manifest


def _position(text: object) -> Point | None:
    """A log's GTID point as recorded: MariaDB's position or MySQL's GTID set."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_point(text)
    except GtidError:
        return None


def drill_binlog(records: Iterator[Record], report: Report, drill: DrillReport) -> None:
    drill.server = "none (the logs are read, not replayed)"
    result = drill.database("(binary logs)")
    archive = _Archive(result)
    with drill.phase("check"):
        failure = export_each(records, report, archive.take)
    if failure is not None:
        raise failure
    with drill.phase("check"):
        _compare(archive, result)


def _compare(archive: _Archive, result: DatabaseResult) -> None:
    manifest = archive.manifest
    if manifest is None:
        result.problems.append(f"the snapshot has no {MANIFEST_PATH}: nothing to compare with")
        return
    listed = [e for e in manifest["files"] if isinstance(e, dict)]
    names = [str(e.get("name")) for e in listed]
    for name in sorted(set(archive.facts) - set(names)):
        result.problems.append(f"{name} is archived but not in the manifest")
    previous: tuple[str, Point | None] | None = None
    for entry in listed:
        name = str(entry.get("name"))
        facts = archive.facts.get(name)
        if facts is None:
            if not any(p.startswith(f"{name} ") for p in result.problems):
                result.problems.append(f"{name} is in the manifest but missing from the archive")
            continue  # the next log is compared with the last one archived: the gap is named
        seen = facts.as_json()
        for key in _COMPARED:
            if entry.get(key) != seen.get(key):
                result.problems.append(
                    f"{name}: {key} is {seen.get(key)}, the manifest says {entry.get(key)}"
                )
        start = _position(seen.get("gtid_start"))
        if previous is not None and None not in (previous[1], start) and start != previous[1]:
            result.problems.append(
                f"gap between {previous[0]} (ends at {previous[1]}) and {name} (starts at {start})"
            )
        previous = (name, _position(seen.get("gtid_end")))
    end = _position(manifest.get("gtid_end"))
    if previous is not None and end is not None and previous[1] != end:
        result.problems.append(
            f"the last log ends at {previous[1]}, the manifest's gtid_end is {end}"
        )
