"""Undo actions that outlive the plugin: clean-up that runs however the process ends.

Plakar starts a plugin with Go's ``exec.CommandContext``: when the user
presses Ctrl-C (or plakar gets SIGTERM) plakar cancels its context, and that
sends SIGKILL to the plugin at once.  No ``finally`` runs, so anything the
plugin made for the time of its work (a temporary directory, a shadow
database, a half-written target, a child process still loading) would stay.

So :func:`Guard.start`, called before the plugin serves, forks a guardian: a
small process in its own session (a terminal's Ctrl-C to plakar's process group
does not reach it) that ignores SIGINT, SIGTERM and SIGHUP and reads, over a
private pipe, the *undo actions* the plugin registers and later discards.  When
the pipe ends (the plugin returned, failed, or was killed, SIGKILL included),
the guardian runs the actions still registered, newest first, each one's
failure reported and not stopping the others, prints one line naming what it
did, and exits.  An action is a picklable zero-argument callable (a
``functools.partial`` of a module-level function) that bounds its own waits;
the whole run is bounded by :data:`_DEADLINE` seconds.

The pipe is private to the two processes: an action may carry a password.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import BinaryIO

Action = Callable[[], object]

_DEADLINE = 300  # seconds the guardian may spend on its actions in all


class Guard:
    """The plugin's side of the guardian: register and discard undo actions.

    :meth:`off` gives a guard that records nothing (library use, unit tests):
    its actions never run, everything else works the same.
    """

    def __init__(self, pipe: BinaryIO | None) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()
        self._next = 0
        self._temp_dirs: dict[str, int] = {}

    @classmethod
    def off(cls) -> Guard:
        return cls(None)

    @classmethod
    def start(cls, name: str) -> Guard:
        """Fork the guardian; ``name`` prefixes the line it prints.  Call it before
        any thread starts: only the calling thread survives a fork."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the guardian
            status = 0
            try:
                os.close(write)
                _detach()
                _watch(read, name)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(read)
        return cls(os.fdopen(write, "wb"))

    def on_exit(self, action: Action, what: str = "") -> int:
        """Run ``action`` when this process ends, unless :meth:`discard` is called
        with the returned token first.  ``what`` (the action in words: "drop the
        shadow database `x`") goes into the guardian's line; empty keeps it silent."""
        with self._lock:
            self._next += 1
            token = self._next
            self._send(("add", token, action, what))
        return token

    def discard(self, token: int) -> None:
        """The action of ``token`` is no longer needed (its owner cleaned up)."""
        with self._lock:
            self._send(("discard", token))

    @contextlib.contextmanager
    def pending(self, action: Action, what: str = "") -> Iterator[None]:
        """``action`` registered for the time of the block (which does its own
        clean-up when it ends, normally or by an exception)."""
        token = self.on_exit(action, what)
        try:
            yield
        finally:
            self.discard(token)

    @contextlib.contextmanager
    def child(self, process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
        """``process`` is killed if this process ends while the block runs (the
        block waits for it, as a child's owner does)."""
        started = _start_time(process.pid)
        if started is None:  # already gone
            yield process
            return
        with self.pending(partial(_kill, process.pid, started)):
            yield process

    def temp_dir(self, prefix: str, dir: str | None = None) -> str:
        """A new private directory (``tempfile.mkdtemp``), removed with everything in
        it when this process ends, unless :meth:`remove_dir` removed it first."""
        path = tempfile.mkdtemp(prefix=prefix, dir=dir)
        self._temp_dirs[path] = self.on_exit(partial(shutil.rmtree, path, ignore_errors=True))
        return path

    def remove_dir(self, path: str) -> None:
        """Remove a directory made by :meth:`temp_dir`, now."""
        shutil.rmtree(path, ignore_errors=True)
        token = self._temp_dirs.pop(path, None)
        if token is not None:
            self.discard(token)

    def _send(self, message: tuple[object, ...]) -> None:
        if self._pipe is None:
            return
        try:
            pickle.dump(message, self._pipe, protocol=pickle.HIGHEST_PROTOCOL)
            self._pipe.flush()
        except BrokenPipeError:  # the guardian is gone: clean-up is the owners' alone
            self._pipe = None


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/PID/stat``'s 22nd field), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _kill(pid: int, started: str) -> None:
    """SIGKILL ``pid`` if it is still the process that started at ``started``: once
    reaped, its pid may be another process's (pid_max may be as low as 32768).
    Through a pidfd, so that the pid cannot change hands between check and kill."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone
        return
    try:
        if _start_time(pid) == started:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass  # it ended meanwhile
    finally:
        os.close(pidfd)


def _detach() -> None:
    """Out of plakar's session and signals, and off its pipes: plakar must see our
    stdout end when the plugin does.  stderr stays, for the one line."""
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def _watch(fd: int, name: str) -> None:
    """Collect the actions until the plugin's end of the pipe closes, then run the
    ones left, newest first."""
    pending: dict[int, tuple[Action, str]] = {}
    with os.fdopen(fd, "rb") as pipe:
        while True:
            try:
                message = pickle.load(pipe)  # noqa: S301 - the pipe is private to the plugin and us
            except Exception:
                break
            if message[0] == "add":
                pending[message[1]] = (message[2], message[3])
            else:
                pending.pop(message[1], None)
    if not pending:
        return
    signal.alarm(_DEADLINE)  # the default action of SIGALRM ends the guardian
    said = []
    for token in sorted(pending, reverse=True):
        action, what = pending[token]
        try:
            action()
        except Exception as exc:
            said.append(f"{what or 'a clean-up'}: FAILED ({' '.join(str(exc).split())})")
        else:
            if what:
                said.append(f"{what}: done")
    if said:
        print(f"{name}: clean-up after the run: {'; '.join(said)}", file=sys.stderr, flush=True)
