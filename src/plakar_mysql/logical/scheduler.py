"""The table loads of a restore: ``jobs`` clients in parallel, fed from temporary files.

A table is written to a private temporary file as fast as Plakar sends it and
loaded by one of ``jobs`` loader threads, each with a client on its own
connection, while the next tables arrive.  A temporary file is taken only
when a loader is free, so at most ``jobs`` of them exist at once.  ``jobs``
(by default the number of CPUs) is capped at :data:`MAX_JOBS` and by the
connections the server has free, once the target is connected.
"""

from __future__ import annotations

__all__ = ["MAX_JOBS", "Scheduler", "capped_jobs", "connection_margin"]

import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TypeVar

from kloset_sdk.guard import Guard
from plakar_mysql.core.option_models import MAX_JOBS
from plakar_mysql.logical.target import Target, log

_T = TypeVar("_T")
_R = TypeVar("_R")


def connection_margin(max_connections: int) -> int:
    """Connections a restore leaves free for others: two and a tenth of the limit."""
    return 2 + max_connections // 10


def capped_jobs(jobs: int, max_connections: int, in_use: int) -> int:
    """``jobs`` within :data:`MAX_JOBS` and the server's free connections (its
    ``max_connections`` less those in use and a margin): each load is a client
    connection, and so is each ``verify`` dump.  At least one."""
    free = max_connections - in_use - connection_margin(max_connections)
    return max(1, min(jobs, MAX_JOBS, free))


@dataclass
class Progress:
    """How many tables are loaded, of how many the restore knows of."""

    total: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finished(self) -> str:
        with self.lock:
            self.done += 1
            return f"{self.done}/{self.total}" if self.total else str(self.done)


class Scheduler:
    """``jobs`` loader threads, and one slot per thread: a table is spooled only
    once it holds a slot, so at most ``jobs`` spools exist at once."""

    def __init__(self, jobs: int, guard: Guard) -> None:
        self.jobs = jobs
        self.guard = guard
        self.progress = Progress()
        self._futures: list[Future[None]] = []
        self._spool_dir: str | None = None
        self._start_pool()

    def _start_pool(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="load")
        self._slots = threading.Semaphore(self.jobs)

    def cap(self, target: Target) -> None:
        """Lower ``jobs`` to the connections the server has free (before any load)."""
        (limit,) = target.query("SELECT @@GLOBAL.max_connections")[0]
        (_, in_use) = target.query("SHOW GLOBAL STATUS LIKE 'Threads_connected'")[0]
        jobs = capped_jobs(self.jobs, int(limit), int(in_use))
        if jobs < self.jobs:
            log(
                f"jobs lowered from {self.jobs} to {jobs}: the server allows {limit} "
                f"connections, {in_use} are in use and {connection_margin(int(limit))} are "
                "left for others"
            )
            self._pool.shutdown(wait=False)  # no thread was started yet
            self.jobs = jobs
            self._start_pool()

    def submit(self, data: Iterable[bytes], load: Callable[[IO[bytes]], None]) -> None:
        """Once a loader is free (waits for one), spool ``data`` and have it loaded
        by ``load`` in a loader thread; the spool is closed when that is done."""
        self._slots.acquire()
        try:
            spool = self._spool(data)
        except BaseException:
            self._slots.release()
            raise
        self._futures.append(self._pool.submit(self._load_spooled, spool, load))

    def _spool(self, data: Iterable[bytes]) -> IO[bytes]:
        """A table file in a private temporary file, ready to be read by a client
        (in a directory the guardian removes if the plugin dies)."""
        if self._spool_dir is None:
            self._spool_dir = self.guard.temp_dir("plakar-mysql-")
        spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - closed by the loader
        for block in data:
            spool.write(block)
        spool.seek(0)
        return spool

    def _load_spooled(self, spool: IO[bytes], load: Callable[[IO[bytes]], None]) -> None:
        try:
            load(spool)
        finally:
            spool.close()
            self._slots.release()

    def raise_failure(self) -> None:
        """Raise the error of a load that has already failed, if any."""
        for future in self._futures:
            if future.done():
                future.result()  # raises if that load failed

    def wait(self) -> None:
        """Wait for every load; the first failed one raises."""
        for future in self._futures:
            future.result()

    def map(self, work: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[_R]:
        """``work`` on each of ``items`` in the loader threads, results in order."""
        return self._pool.map(work, items)

    def close(self) -> None:
        """Stop the loaders (a load not started is cancelled) and remove the spools."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._spool_dir is not None:
            self.guard.remove_dir(self._spool_dir)
            self._spool_dir = None
