"""Interrupt a plakar run the ways a user or a scheduler does, and see what it left.

:func:`interrupted_run` starts ``plakar at STORE ARGS...`` in a session of its
own (so that a signal to its process group reaches plakar, the plugin and the
plugin's children, and nothing else), with a private ``TMPDIR`` that every
process of the run inherits.  When ``when()`` first holds, it sends one of
:data:`HOW`:

- ``int-plakar``: SIGINT to plakar alone (``kill -INT``);
- ``int-group``: SIGINT to the whole group, as a terminal's Ctrl-C;
- ``term-plakar``: SIGTERM to plakar alone, as a scheduler's stop;
- ``kill-plakar``: SIGKILL to plakar alone (its plugin lives on, and sees its
  pipes close).

Every process of the run carries that ``TMPDIR`` in its environment: that is
how :func:`settle` finds what is still running afterwards, children of the
plugin re-parented to init included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from plakar_mysql_harness.plakar import Plakar, strip_ansi

HOW = ("int-plakar", "int-group", "term-plakar", "kill-plakar")

_SIGNALS = {
    "int-plakar": signal.SIGINT,
    "int-group": signal.SIGINT,
    "term-plakar": signal.SIGTERM,
    "kill-plakar": signal.SIGKILL,
}


def run_tmp(plakar: Plakar) -> Path:
    """The private TMPDIR of ``plakar``'s interrupted runs."""
    path = plakar.base / "run-tmp"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class Interrupted:
    """What an interrupted run gave: its exit status and its whole output (plakar's,
    the plugin's and the guardian's, stdout and stderr together)."""

    returncode: int
    output: str
    tmp: Path

    def tmp_entries(self) -> list[str]:
        """What is left in the run's private TMPDIR."""
        return sorted(os.listdir(self.tmp))


def interrupted_run(
    plakar: Plakar,
    args: Sequence[str],
    *,
    how: str,
    when: Callable[[], bool],
    timeout: float = 120,
) -> Interrupted:
    """Run ``plakar at STORE args...``, signal it ``how`` once ``when()`` holds
    (polled every 20 ms; the test fails if plakar ends first or ``timeout``
    passes), and wait, bounded, for the end of its output."""
    tmp = run_tmp(plakar)
    proc = subprocess.Popen(
        [str(plakar.binary), "at", str(plakar.store), *args],
        env={**plakar.env, "TMPDIR": str(tmp)},
        cwd=plakar.base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(proc, chunks), daemon=True)
    reader.start()
    try:
        _wait_until(when, proc, chunks, timeout)
        if how == "int-group":
            os.killpg(proc.pid, _SIGNALS[how])
        else:
            os.kill(proc.pid, _SIGNALS[how])
        proc.wait(timeout=timeout)
        # The output ends when the last process holding it (the plugin, then its
        # guardian) has ended: the guardian's line is part of the run.
        reader.join(timeout)
        if reader.is_alive():
            output = b"".join(chunks).decode(errors="replace")
            pytest.fail(
                f"the run's output did not end within {timeout:g} s of the signal; still "
                f"running: {running(plakar)}; output so far:\n{output}"
            )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Interrupted(proc.returncode, strip_ansi(b"".join(chunks).decode(errors="replace")), tmp)


def _read_all(proc: subprocess.Popen[bytes], chunks: list[bytes]) -> None:
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(1 << 16):
        chunks.append(chunk)


def _wait_until(
    when: Callable[[], bool], proc: subprocess.Popen[bytes], chunks: list[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not when():
        if proc.poll() is not None:
            output = b"".join(chunks).decode(errors="replace")
            pytest.fail(
                f"plakar ended (status {proc.returncode}) before the moment came:\n{output}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"the moment did not come within {timeout:g} s")
        time.sleep(0.02)


def running(plakar: Plakar) -> list[tuple[int, str]]:
    """Processes (pid, command line) of ``plakar``'s interrupted runs still alive."""
    mark = f"TMPDIR={run_tmp(plakar)}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found.append((int(entry.name), argv.strip()))
    return found


def settle(plakar: Plakar, timeout: float = 60) -> None:
    """Wait, at most ``timeout`` seconds, until no process of ``plakar``'s interrupted
    runs is left (plakar, its plugin, the guardian, any child they started);
    fail naming those still there."""
    deadline = time.monotonic() + timeout
    while left := running(plakar):
        if time.monotonic() > deadline:
            pytest.fail(f"still running {timeout:g} s after the interrupted run: {left}")
        time.sleep(0.1)
