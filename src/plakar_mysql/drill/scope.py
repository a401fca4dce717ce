"""The guard the drill hands the kinds' exporters: nothing to undo on a throwaway server.

A restore into a user's server registers undo actions (drop what was half
restored, put a directory back as it was) that the guardian runs if the
plugin dies.  In a drill the whole server and its directory are the drill's,
already registered to be killed and removed (:mod:`plakar_mysql.drill.server`):
those actions would only fail against a server that is gone.  So the kinds'
exporters get this guard: their undo actions are not registered, their child
processes are (so a killed drill leaves no client running), and their
temporary directories go inside the drill's own, removed with it (unless its
path is too long for the sockets some of them hold).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator

from kloset_sdk.guard import Guard

_SHORT = 60  # bytes: room left for a socket's name under the 107 of sun_path


class ScopedGuard(Guard):
    def __init__(self, real: Guard, directory: str) -> None:
        super().__init__(None)  # records no undo action
        self._real = real
        self._directory = directory

    @contextlib.contextmanager
    def child(self, process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
        with self._real.child(process) as running:
            yield running

    def temp_dir(self, prefix: str, dir: str | None = None) -> str:
        if dir is None and len(os.fsencode(self._directory)) <= _SHORT:
            return tempfile.mkdtemp(prefix=prefix, dir=self._directory)
        return self._real.temp_dir(prefix, dir)

    def remove_dir(self, path: str) -> None:
        self._real.remove_dir(path)
