"""A benchmark's work directory and what it starts there, all stopped at the end.

Every benchmark starts private servers and plakar homes under one work
directory, records a set-up failure in its result instead of raising (so that
what was measured so far is still reported), and then stops all it started and
removes the directory unless it was given or ``--keep`` asked to keep it.
:class:`Workspace` does that once for all of them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from bench.servers import BenchServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

__all__ = ["Failable", "Workspace"]


class Failable(Protocol):
    """A benchmark's result: where a set-up failure is written."""

    failure: str | None


class Workspace:
    """``with Workspace(...) as ws:`` a work directory (``workdir``, or a new temporary
    one), the servers and plakar homes started through it, and the result whose
    ``failure`` an exception inside the block becomes."""

    def __init__(
        self,
        name: str,
        result: Failable,
        workdir: Path | None,
        *,
        keep: bool = False,
        prefix: str = "plakar-mysql-bench-",
        progress: Callable[[str], None] = print,
        flavour: str = "mariadb",
    ) -> None:
        self.flavour = flavour
        """The flavour of the servers started (:data:`bench.servers.FLAVOURS`)."""
        self.owned = workdir is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if workdir is None else workdir.resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self.logs = self.path / "logs"
        self.result = result
        self.keep = keep
        self.progress = progress
        self.servers: list[BenchServer] = []
        self.homes: list[Plakar] = []
        if name:
            progress(f"bench: {name}, work directory {self.path}")

    def below(self, name: str) -> Workspace:
        """A workspace in the subdirectory ``name``, for one part of the benchmark (one
        size): what it starts is stopped by its :meth:`stop`; the directory goes with
        this one."""
        return Workspace(
            "",
            self.result,
            self.path / name,
            keep=True,
            progress=self.progress,
            flavour=self.flavour,
        )

    def server(self, name: str, args: Sequence[str]) -> BenchServer:
        """A private server of the workspace's flavour in ``name/``, stopped when the
        workspace closes."""
        server = BenchServer(self.path / name, args, self.flavour)
        self.servers.append(server)
        return server

    def plakar(self, name: str, ptar: Path, store: Path | None = None) -> Plakar:
        """A plakar home in ``name/`` with ``ptar`` installed, closed with the workspace."""
        home = make_plakar(self.path / name, ptar=ptar, store=store)
        self.homes.append(home)
        return home

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):  # a set-up failure: reported, with what was measured
            self.result.failure = f"{type(exc).__name__}: {exc}"
            self.progress(f"bench: FAILED: {self.result.failure}")
        self.close()
        return isinstance(exc, Exception)

    def stop(self) -> None:
        """Stop every server and close every plakar home started so far."""
        for server in self.servers:
            server.cleanup()
        for home in self.homes:
            home.close()
        self.servers.clear()
        self.homes.clear()

    def close(self) -> None:
        """:meth:`stop`, then remove the directory if it is a temporary one of ours."""
        self.stop()
        if self.owned and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.progress(f"bench: work directory kept: {self.path}")
