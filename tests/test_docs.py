"""The documentation as written: its account SQL and its commands, run on fresh servers.

The blocks are read from README.md and docs/*.md themselves (marked
``<!-- tested: NAME -->``, see :mod:`support.docs`), so a block that stops
working fails here: the accounts are created by the README's SQL, run as
root through the stock client as a DBA would, on fresh private servers; the
option files by the README's own shell lines; then each quick start backs up
and restores with those accounts through the real plakar, and what was
restored is compared object by object with the source.  Only host names,
ports, the socket, paths and the stop time of the replay are substituted
(:func:`quick_start_table`).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from support.compare import DatabaseDescription, describe_database, diff
from support.datadir import DatadirServer
from support.docs import Block, Shell, fenced_blocks, marked_blocks
from support.mariadb import MariaDBServer
from support.plakar import ROOT, Plakar, find_ptar
from support.shop import load_shop

from plakar_mysql.grants import parse_grant

README = ROOT / "README.md"
PAGES = ("logical.md", "physical.md", "binlog.md")
LOG_BIN = ("--log-bin=mysql-bin", "--server-id=1")
ACCOUNTS = ("plakar_backup", "plakar_restore")
HOSTS = ("localhost", "%")
#: The README's placeholder for the moment to stop the replay at.
STOP_DATETIME = "2026-11-30 14:02:59"


def readme() -> dict[str, Block]:
    return marked_blocks(README)


def load_block(server: MariaDBServer, block: Block, tmp_path: Path) -> None:
    """Run an SQL block as written, as root through the stock client."""
    script = tmp_path / f"{block.path.stem}-{block.name}.sql"
    script.write_text(block.text, encoding="utf-8")
    server.load_sql_file(script)


def address(server: MariaDBServer) -> str:
    return f"{server.host}:{server.port}"


@dataclass
class Servers:
    """The README's servers: ``db.example.com`` (the source, writing a binary log),
    ``db2.example.com`` (logical restores) and ``db3.example.com`` (a fresh server
    for the point-in-time recovery)."""

    source: MariaDBServer
    db2: MariaDBServer
    db3: MariaDBServer


def quick_start_table(servers: Servers, tmp_path: Path, plakar: Plakar) -> dict[str, str]:
    """The substitutions: host names, ports, the socket and paths, nothing else."""
    return {
        "db.example.com": address(servers.source),
        "db2.example.com": address(servers.db2),
        "db3.example.com": address(servers.db3),
        "/run/mysqld/mysqld.sock": str(servers.source.socket),
        "/var/lib/mysql-restored": str(tmp_path / "mysql-restored"),
        "/var/backups": str(plakar.store),
    }


@pytest.fixture
def plakar(tmp_path: Path) -> Plakar:
    """Plakar with a private home and the package installed, but no store yet: the
    README's quick start creates it."""
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    reader = Plakar(tmp_path / "reader")
    reader.pkg_add(Path(ptar) if ptar else find_ptar())
    return reader


@pytest.fixture
def servers(mariadb_factory: MariaDBFactory, tmp_path: Path) -> Servers:
    """Three fresh servers, each given the README's accounts; ``shop`` on the source."""
    found = Servers(mariadb_factory(extra_args=LOG_BIN), mariadb_factory(), mariadb_factory())
    for server in (found.source, found.db2, found.db3):
        load_block(server, readme()["accounts"], tmp_path)
    load_shop(found.source)
    return found


def test_option_files_are_readable_by_their_owner_alone(plakar: Plakar, tmp_path: Path) -> None:
    """The README's option-file lines leave two 0600 files naming the two accounts."""
    Shell(plakar, {}).run_block_all(readme()["option-files"])
    for account, name in zip(ACCOUNTS, ("backup", "restore"), strict=True):
        path = plakar.home / f".plakar-{name}.cnf"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
        assert f"user={account}\n" in path.read_text()


def test_the_readme_quick_starts_run_as_written(
    plakar: Plakar, servers: Servers, tmp_path: Path
) -> None:
    """The README's accounts, option files and the three quick starts, as written:
    each kind backs up with plakar_backup and restores with plakar_restore, and
    the restored data equals the source's."""
    s = servers
    shell = Shell(plakar, quick_start_table(s, tmp_path, plakar))
    blocks = readme()
    shell.run_block_all(blocks["option-files"])

    shell.run_block_all(blocks["quick-start-logical"])
    shop = describe_database(s.source, "shop")
    assert (
        diff(
            describe_database(s.source, "shop", rename={"shop": "shop_copy"}),
            describe_database(s.db2, "shop_copy"),
        )
        == []
    )
    assert diff(shop, describe_database(s.db2, "shop")) == []

    started: list[MariaDBServer] = []

    def start_on(code: str) -> None:
        datadir = re.search(r"--datadir=(\S+)", code)
        assert datadir is not None, code
        started.append(
            DatadirServer(
                Path(datadir[1]), tmp_path / "started", root_password=s.source.root_password
            )
        )

    shell.hooks["mariadbd"] = start_on
    try:
        shell.run_block_all(blocks["quick-start-physical"])
        assert len(started) == 1
        assert diff(shop, describe_database(started[0], "shop")) == []
    finally:
        for server in started:
            server.cleanup()

    before_mistake: DatabaseDescription | None = None
    for command in shell.run_block(blocks["quick-start-binlog"]):
        if " backup " in command and "mysql+binlog://" in command:
            before_mistake = a_day_of_work_then_a_mistake(s.source, shell)
    assert before_mistake is not None
    assert diff(before_mistake, describe_database(s.db3, "shop")) == []


def a_day_of_work_then_a_mistake(source: MariaDBServer, shell: Shell) -> DatabaseDescription:
    """Changes after the base, then a ``DROP TABLE`` and a ``DELETE`` without
    ``WHERE`` a second later; the stop time of the replay is that second.
    Returns ``shop`` as it was just before the mistake."""
    for statement in (
        "CREATE TABLE shop.loyalty (customer_id INT UNSIGNED PRIMARY KEY, points INT NOT NULL)",
        "INSERT INTO shop.loyalty SELECT customer_id, customer_id % 97 FROM shop.customer",
        "DELETE FROM shop.review WHERE review_id <= 20",
    ):
        source.execute(statement)
    time.sleep(1.05 - (time.time() % 1.0))
    shell.table[STOP_DATETIME] = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    before = describe_database(source, "shop")
    source.execute("DROP TABLE shop.loyalty")
    source.execute("DELETE FROM shop.review")
    return before
