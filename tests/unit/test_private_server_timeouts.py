"""The connections to the private servers (the clone's start that reads its point,
the restore's start that sets ``gtid_slave_pos``) bound their reads: a server that
accepts and then never answers makes them fail in one line, not hang before the
caller's ``finally`` kills it.

The stand-in server is a Unix socket that accepts and stays silent: without a read
timeout the driver waits for its greeting for ever.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plakar_mysql.core.gtid import Position
from plakar_mysql.physical.clone import CloneError
from plakar_mysql.physical.clone_start import _read_point_and_stop
from plakar_mysql.physical.replay_point import PointError, _set_and_stop


class _Running:
    """A private server's process that keeps running."""

    args = ("/usr/sbin/mariadbd",)

    def poll(self) -> None:
        return None


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[str]:
    """A Unix socket that accepts connections and never says a word."""
    path = str(tmp_path / "mysqld.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _bounded(call: Callable[[], Any]) -> BaseException | None:
    """``call()``'s exception; a test failure if it still waits after 15 s."""
    caught: list[BaseException | None] = [None]

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            caught[0] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(15)
    if thread.is_alive():
        pytest.fail("the private server's connection waits for ever on a silent server")
    return caught[0]


def test_the_clones_private_start_does_not_hang_on_a_silent_server(silent: str) -> None:
    error = _bounded(
        lambda: _read_point_and_stop(
            _Running(),  # type: ignore[arg-type]
            silent,
            start_timeout=1.0,
            stop_timeout=0.5,
            log=lambda: "",
        )
    )
    assert isinstance(error, CloneError), error
    assert "did not start on the clone in 1 s" in str(error)


def test_the_restores_private_start_does_not_hang_on_a_silent_server(silent: str) -> None:
    error = _bounded(
        lambda: _set_and_stop(
            _Running(),  # type: ignore[arg-type]
            silent,
            Position.parse("0-1-5"),
            start_timeout=1.0,
            stop_timeout=0.5,
            log=lambda: "",
        )
    )
    assert isinstance(error, PointError), error
    assert "mariadbd did not start in 1 s" in str(error)
