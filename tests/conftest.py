"""Shared pytest fixtures: throwaway MariaDB servers, one of them loaded with Sakila.

Every server is a private ``mariadbd`` (see :mod:`support.mariadb`), so the
tests need the MariaDB server and client installed but no running server and
no configuration.  The Sakila data lives in ``shared/data`` beside the
repository checkout, wherever that checkout is.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from support.mariadb import MariaDBServer
from support.plakar import Plakar, make_plakar

#: ``shared/data`` beside the repository (the repository is this file's grandparent).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: The views of the Sakila sample database.
SAKILA_VIEWS = {
    "actor_info",
    "customer_list",
    "film_list",
    "nicer_but_slower_film_list",
    "sales_by_film_category",
    "sales_by_store",
    "staff_list",
}

MariaDBFactory = Callable[..., MariaDBServer]
"""``mariadb_factory(*, root_password=None, extra_args=(), start_timeout=60.0)``."""


@pytest.fixture
def plakar(tmp_path: Path) -> Plakar:
    """Plakar with a private home, an empty encrypted store and the package installed.

    ``PLAKAR_MYSQL_PTAR`` names a package to test instead of ``dist/*.ptar``.
    """
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    return make_plakar(tmp_path, ptar=Path(ptar) if ptar else None)


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[MariaDBServer]:
    """A fresh, empty MariaDB server for one test, stopped afterwards."""
    server = MariaDBServer(tmp_path / "mariadb")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def mariadb_factory(tmp_path: Path) -> Iterator[MariaDBFactory]:
    """Start as many extra servers as a test needs; all are stopped afterwards.

    Each call returns a new running server in its own directory under the
    test's ``tmp_path``; keyword arguments go to :class:`MariaDBServer`.
    """
    servers: list[MariaDBServer] = []
    numbers = itertools.count(1)  # next() is atomic: tests may start servers from threads

    def start(
        *,
        root_password: str | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 60.0,
    ) -> MariaDBServer:
        server = MariaDBServer(
            tmp_path / f"mariadb-{next(numbers)}",
            root_password=root_password,
            extra_args=extra_args,
            start_timeout=start_timeout,
        )
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.cleanup()


def sakila_files() -> tuple[Path, Path]:
    """The Sakila schema and data scripts, or a test failure saying where they should be."""
    schema = SHARED_DATA / "sakila-schema.sql"
    data = SHARED_DATA / "sakila-data.sql"
    missing = [str(path) for path in (schema, data) if not path.is_file()]
    if missing:
        pytest.fail(
            f"Sakila test data not found: {', '.join(missing)}. The tests expect the "
            "shared/ directory (with data/sakila-schema.sql and data/sakila-data.sql) "
            "beside the repository checkout.",
            pytrace=False,
        )
    return schema, data


@pytest.fixture(scope="session")
def sakila_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One server for the whole session with the ``sakila`` database loaded.

    Shared by many tests: a test must not leave ``sakila`` changed (work in a
    database of its own, or undo its changes).
    """
    schema, data = sakila_files()
    server = MariaDBServer(tmp_path_factory.mktemp("sakila") / "mariadb")
    try:
        server.load_sql_file(schema)
        server.load_sql_file(data)
        yield server
    finally:
        server.cleanup()
