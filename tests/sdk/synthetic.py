"""A synthetic connector pair used to test the SDK through the real plakar.

The importer (``synthetic://``) produces a deterministic file of ``size``
bytes, some small files in a subdirectory, and optionally fails at the end of
its scan (``fail=true``, a user's error; ``bug=true``, a ``KeyError``), to prove
that an error raised by ``scan`` aborts the backup, and how each is told.
The exporter writes, for every file it receives, its path, size and SHA-256
as one JSON line to the file named by ``out``; it never holds a file in memory.
With ``stall=PATH``, the importer's scan starts a child
(``sleep``) under the guard and registers an action that touches
``PATH.guarded``, hands over one record, touches ``PATH.started`` and then waits
for ever on something no one will ever end (as a thread blocked on a pipe
does), so that a test can kill plakar and see the plugin end all the same.
With ``hold=PATH`` the exporter reads content slowly (touching ``PATH.started``),
so that a test can kill plakar in the middle, and its clean-up takes a second
before it touches ``PATH.cleaned``; for the time of the export it registers with
the guardian an action that touches ``PATH.guarded``.
Run as ``python synthetic.py importer|exporter``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import partial

from kloset_sdk import (
    ConnectorError,
    ConnectorInfo,
    Exporter,
    Flags,
    Importer,
    Options,
    Record,
    Report,
    Result,
    run_exporter,
    run_importer,
)

BLOCK = 1 << 20


def block(index: int) -> bytes:
    """1 MiB of deterministic, incompressible-looking bytes, different for each index."""
    seed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    return hashlib.shake_256(seed).digest(BLOCK)


class GeneratedStream(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._pos >= self._size:
            return b""
        index, offset = divmod(self._pos, BLOCK)
        data = block(index)[offset:]
        data = data[: min(len(data), self._size - self._pos, n if n and n > 0 else BLOCK)]
        self._pos += len(data)
        return data


class SyntheticImporter(Importer):
    def __init__(self, options: Options, config: Mapping[str, str]) -> None:
        self.guard = options.guard
        self.stall = config.get("stall")
        self.size = int(config.get("size", str(BLOCK)))
        self.fail = config.get("fail") == "true"
        self.bug = config.get("bug") == "true"
        self.config = config
        self.rss_file = config.get("rss")
        self.when = datetime.now(UTC)

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin="synthetic", type="synthetic", flags=Flags.STREAM)

    def scan(self) -> Iterator[Record]:
        yield Record.directory("/", self.when)
        if self.stall:
            yield from self._stalled(self.stall)
        yield Record.file("/big.bin", lambda: GeneratedStream(self.size), self.when)
        yield Record.directory("/small", self.when)
        for i in range(3):
            text = f"file {i}\n".encode()
            yield Record.file(f"/small/{i}.txt", lambda t=text: io.BytesIO(t), self.when)
        if self.fail:
            raise ConnectorError("synthetic failure after the last record")
        if self.bug:  # a connector's bug: an option looked up that nobody gave
            self.size = int(self.config["no such option"])

    def _stalled(self, path: str) -> Iterator[Record]:
        self.guard.on_exit(partial(touch, f"{path}.guarded"), f"touch {path}.guarded")
        child = subprocess.Popen(["sleep", "3600"])
        with self.guard.child(child):
            yield Record.file("/stalled.txt", lambda: io.BytesIO(b"stalled\n"), self.when)
            touch(f"{path}.started")
            threading.Event().wait()  # nobody sets it: the scan never ends by itself

    def close(self) -> None:
        if self.rss_file:
            with open(self.rss_file, "w") as rss:
                rss.write(str(peak_rss_kib()))


def touch(path: str) -> None:
    with open(path, "w"):
        pass


class DigestExporter(Exporter):
    def __init__(self, options: Options, config: Mapping[str, str]) -> None:
        self.guard = options.guard
        self.out = config["out"]
        self.hold = config.get("hold")

    def info(self) -> ConnectorInfo:
        return ConnectorInfo(origin="synthetic", type="synthetic")

    def export(self, records: Iterator[Record], report: Report) -> None:
        guarded = partial(touch, f"{self.hold}.guarded")
        token = self.guard.on_exit(guarded, f"touch {self.hold}.guarded") if self.hold else 0
        try:
            self._digests(records, report)
        finally:
            if token:
                self.guard.discard(token)
            if self.hold:  # a clean-up that takes a while, as dropping a database does
                time.sleep(1.0)
                with open(self.hold + ".cleaned", "w"):
                    pass
        with open(self.out + ".rss", "w") as rss:
            rss.write(str(peak_rss_kib()))

    def _digests(self, records: Iterator[Record], report: Report) -> None:
        with open(self.out, "w") as out:
            for record in records:
                if record.opener is None:
                    report(Result.ok(record))
                    continue
                digest, size = hashlib.sha256(), 0
                stream = record.open()
                try:
                    while chunk := stream.read(BLOCK):
                        digest.update(chunk)
                        size += len(chunk)
                        if self.hold:
                            with open(self.hold + ".started", "w"):
                                time.sleep(0.2)
                except Exception as exc:  # Plakar went away: reported as the SDK's users do
                    report(Result.failed(record, exc))
                    raise
                line = {"path": record.pathname, "size": size, "sha256": digest.hexdigest()}
                out.write(json.dumps(line) + "\n")
                report(Result.ok(record))


def peak_rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main() -> None:
    role = sys.argv.pop(1)
    if role == "importer":
        run_importer(lambda options, _p, config: SyntheticImporter(options, config))
    else:
        run_exporter(lambda options, _p, config: DigestExporter(options, config))


if __name__ == "__main__":
    main()
