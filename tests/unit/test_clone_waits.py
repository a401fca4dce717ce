"""The clone backup's waits are bounded: a Plakar that stops reading, or a server that
stops answering the guardian, makes the backup fail, never hang.

``Handover.begin``/``wait_all`` wait for Plakar to read the handed files (the clone,
full size, in TMPDIR meanwhile); ``kill_clone``, the guardian's action, reads from
the server with a bound.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from plakar_mysql.core.options import Connection
from plakar_mysql.physical import clone
from plakar_mysql.physical.clone import WINDOW, CloneError, Handover


def _run_bounded(call: Any) -> BaseException | None:
    """``call()`` in a thread; its exception, or a failure if it still waits after 10 s."""
    caught: list[BaseException | None] = [None]

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            caught[0] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        pytest.fail(f"{call} still waits after 10 s: the wait is unbounded")
    return caught[0]


def test_begin_gives_up_when_plakar_reads_nothing() -> None:
    handover = Handover(wait=0.3)
    for _ in range(WINDOW):
        handover.begin()  # the window fills: Plakar has read none of these
    started = time.monotonic()
    error = _run_bounded(handover.begin)
    assert isinstance(error, CloneError), error
    assert f"any of the {WINDOW} files handed" in str(error)
    assert "within 0.3 s" in str(error) and time.monotonic() - started < 5


def test_wait_all_gives_up_when_the_last_files_are_not_read() -> None:
    handover = Handover(wait=0.3)
    handover.begin()
    handover.begin()
    handover.done(10)  # one read, one never
    error = _run_bounded(handover.wait_all)
    assert isinstance(error, CloneError), error
    assert "the last 1 files handed" in str(error)


def test_wait_all_returns_once_everything_is_read() -> None:
    handover = Handover(wait=5)
    handover.begin()
    threading.Timer(0.1, handover.done, (7,)).start()
    assert _run_bounded(handover.wait_all) is None
    assert handover.read_bytes == 7


def test_the_default_bound_is_generous() -> None:
    assert Handover()._wait >= 600  # Plakar may be slow to store a large file


class _Db:
    """A connection whose reads are bounded only by ``_read_timeout``."""

    _read_timeout: float | None = None
    _write_timeout: float | None = None

    def close(self) -> None:
        pass


def test_kill_clone_bounds_its_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    db = _Db()
    seen: list[tuple[float | None, float | None]] = []

    def query(conn: _Db, sql: str, args: Any = None) -> list[tuple[int]]:
        seen.append((conn._read_timeout, conn._write_timeout))
        return [(0,)]

    monkeypatch.setattr(clone, "connect", lambda conn: db)
    monkeypatch.setattr(clone, "query", query)
    clone.kill_clone(Connection("mysql"), 42)
    assert seen, "kill_clone ran no statement"
    for read, write in seen:
        assert read is not None and write is not None
        assert 0 < read <= clone.KILL_WAIT + 60 and 0 < write <= clone.KILL_WAIT + 60
