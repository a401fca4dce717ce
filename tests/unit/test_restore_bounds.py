"""The restore's bounds and shared state, without a server: how many spools exist
at once, how ``jobs`` is capped, how leftover databases name their owner."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

import plakar_mysql
from kloset_sdk.guard import Guard
from plakar_mysql.core.option_models import LogicalRestoreOptions
from plakar_mysql.core.options import option_fields
from plakar_mysql.logical.restorer import Restorer
from plakar_mysql.logical.scheduler import MAX_JOBS, capped_jobs, connection_margin
from plakar_mysql.logical.shadow import _leftovers, owner_tag

SCHEMA = Path(plakar_mysql.__file__).parent / "schemas" / "logical_restore.json"


def restorer(**options: str) -> Restorer:
    config = LogicalRestoreOptions.parse({"location": "mysql://root@127.0.0.1/", **options})
    return Restorer(config, None, Guard.off())


def test_max_jobs_is_the_schemas_maximum() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["jobs"]["maximum"] == MAX_JOBS
    assert option_fields(LogicalRestoreOptions)["jobs"].spec.maximum == MAX_JOBS


def test_default_jobs_never_exceeds_the_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 192)
    made = restorer()
    try:
        assert made.scheduler.jobs == MAX_JOBS
    finally:
        made.close()


@pytest.mark.parametrize(
    ("jobs", "limit", "in_use", "expected"),
    [
        (8, 151, 3, 8),  # plenty free
        (64, 151, 3, 64),
        (64, 40, 3, 40 - 3 - connection_margin(40)),  # capped by the free connections
        (8, 10, 9, 1),  # none free: one client still (the restore needs one)
        (200, 100000, 1, MAX_JOBS),  # never above the schema's maximum
    ],
)
def test_jobs_capped_by_free_connections(jobs: int, limit: int, in_use: int, expected: int) -> None:
    assert capped_jobs(jobs, limit, in_use) == expected


def _blocks(size: int) -> Iterator[bytes]:
    for _ in range(4):
        yield b"x" * (size // 4)


def test_at_most_jobs_spools_exist_at_once() -> None:
    """Spools are taken under the semaphore: with jobs=2 and slow loads, never
    more than two temporary files exist (before: jobs + 2)."""
    made = restorer(jobs="2").scheduler
    open_spools: list[IO[bytes]] = []
    most = 0
    lock = threading.Lock()
    spool = made._spool

    def counting_spool(data: Iterator[bytes]) -> IO[bytes]:
        nonlocal most
        file = spool(data)
        with lock:
            open_spools.append(file)
            most = max(most, sum(1 for f in open_spools if not f.closed))
        return file

    loaded: list[int] = []

    def slow_load(file: IO[bytes]) -> None:
        time.sleep(0.05)
        loaded.append(len(file.read()))

    made._spool = counting_spool  # type: ignore[method-assign]
    try:
        for _ in range(10):
            made.submit(_blocks(4096), slow_load)
        made.wait()
    finally:
        made.close()
    assert loaded == [4096] * 10
    assert most == 2, most
    assert all(f.closed for f in open_spools)


def test_a_failed_spool_gives_its_slot_back() -> None:
    made = restorer(jobs="2").scheduler

    def broken() -> Iterator[bytes]:
        yield b"x"
        raise OSError("No space left on device")

    try:
        for _ in range(3):  # would block on the third without the release
            with pytest.raises(OSError, match="No space left"):
                made.submit(broken(), lambda file: None)
        made.submit(iter([b"ok"]), lambda file: None)
        made.wait()
    finally:
        made.close()


def test_leftover_names_carry_owner_connection_and_account() -> None:
    tag = owner_tag("root@localhost")
    assert tag == owner_tag("root@localhost") != owner_tag("root@%")
    assert len(tag) == 8
    found = _leftovers(
        [
            f"plakar_restore_98_1_{tag}",
            f"plakar_old_4711_2_{tag}",
            "plakar_restore_98_1",  # release 0.1.0: no account tag
            "plakar_restore_x_1",  # not ours
            "plakar_old_5_v1",  # a view's name, not a database's
            f"plakar_restore_98_1_{tag}_",
        ]
    )
    assert [(f.name, f.kind, f.owner, f.tag) for f in found] == [
        (f"plakar_restore_98_1_{tag}", "restore", 98, tag),
        (f"plakar_old_4711_2_{tag}", "old", 4711, tag),
        ("plakar_restore_98_1", "restore", 98, None),
    ]
