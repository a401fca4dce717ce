"""Bad input through the real plakar: one clear line naming the problem, before
anything is read or written, and no snapshot."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from support.mariadb import MariaDBServer
from support.plakar import Plakar


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def failing_backup(plakar: Plakar, uri: str, *options: str) -> str:
    args = ["backup"]
    for option in options:
        args += ["-o", option]
    proc = plakar.at(*args, uri, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert plakar.snapshots() == []
    return output


@pytest.mark.parametrize(
    ("uri", "options", "message"),
    [
        ("mysql://127.0.0.1:99999/db", (), "malformed"),
        ("mysql://127.0.0.1/db?x=1", (), "pass options with -o key=value"),
        ("mysql://127.0.0.1/db", ("colour=blue",), "unknown option colour"),
        (
            "mysql://127.0.0.1/db",
            ("routines=perhaps",),
            "option routines: 'perhaps' is not a boolean",
        ),
        (
            "mysql://127.0.0.1/db",
            ("no_data=true", "no_create_info=true"),
            "no_data and no_create_info exclude each other",
        ),
        (
            "mysql://127.0.0.1/db",
            ("port=70000",),
            "option port: 70000 is out of range (1 to 65535)",
        ),
    ],
)
def test_rejected_before_connecting(
    plakar: Plakar, uri: str, options: tuple[str, ...], message: str
) -> None:
    assert message in failing_backup(plakar, uri, *options)


def test_unreachable_host_is_bounded_by_connect_timeout(plakar: Plakar, silent_port: int) -> None:
    started = time.monotonic()
    output = failing_backup(plakar, f"mysql://127.0.0.1:{silent_port}/db", "connect_timeout=2")
    assert time.monotonic() - started < 30
    assert f"cannot connect to 127.0.0.1:{silent_port}: no answer within 2 s" in output


def test_missing_database(plakar: Plakar, sakila_server: MariaDBServer) -> None:
    uri = f"mysql://root@{sakila_server.host}:{sakila_server.port}/no_such_db"
    output = failing_backup(plakar, uri, f"password={sakila_server.root_password}")
    assert "database 'no_such_db' does not exist" in output


def test_read_only_target_is_refused(
    plakar: Plakar, sakila_server: MariaDBServer, mariadb: MariaDBServer
) -> None:
    snapshot = plakar.backup(
        f"mysql://root@{sakila_server.host}:{sakila_server.port}/sakila",
        f"password={sakila_server.root_password}",
    )
    mariadb.execute("SET GLOBAL read_only = ON")
    proc = plakar.at(
        "restore",
        "-to",
        f"mysql://root@{mariadb.host}:{mariadb.port}/copy",
        "-o",
        f"password={mariadb.root_password}",
        snapshot,
        check=False,
    )
    assert proc.returncode != 0
    assert "is read-only" in proc.stdout + proc.stderr
    assert mariadb.query("SHOW DATABASES LIKE 'copy'") == []
