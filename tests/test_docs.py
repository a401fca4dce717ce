"""The documentation as written: its account SQL and its commands, run on fresh servers.

The blocks are read from README.md and docs/*.md themselves (marked
``<!-- tested: NAME -->``, see :mod:`support.docs`), so a block that stops
working fails here: the accounts are created by the README's SQL, run as
root through the stock client as a DBA would, on fresh private servers; the
option files by the README's own shell lines; then each quick start backs up
and restores with those accounts through the real plakar, and what was
restored is compared object by object with the source.  Only host names,
ports, the socket, paths (:func:`quick_start_table`) and the stop time of the
replay are substituted, and the snapshot names (``SHOP``, ``BASE``, ...) stand
for the ids of the snapshots the blocks' own backups made.  The SQL of each
docs page runs alone on a server without the accounts, passes its kind's own
privilege checks, and grants, with the other pages', exactly the README's
accounts; every example command uses their option files.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import MariaDBFactory
from support.compare import (
    DatabaseDescription,
    describe_accounts,
    describe_database,
    diff,
    diff_accounts,
)
from support.docs import Block, Shell, fenced_blocks, marked_blocks

from plakar_mysql.binlog.backup import _check_privileges as check_binlog_privileges
from plakar_mysql.core.flavour import Flavour
from plakar_mysql.core.grants import parse_grant, session_grants
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import connect, current_user, missing_privileges
from plakar_mysql.logical.preflight import check_overwrite_grants
from plakar_mysql.physical.backup import missing_privileges as physical_missing_privileges
from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import ROOT, Plakar, find_ptar

README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The pages whose account SQL grants the README's accounts their kind's part.
PAGES = ("logical.md", "physical.md", "binlog.md")
MAN_PAGE = DOCS / "plakar-mysql.1"
LOG_BIN = ("--log-bin=mysql-bin", "--server-id=1")
ACCOUNTS = ("plakar_backup", "plakar_restore")
HOSTS = ("localhost", "%")
#: The placeholders for the moment to stop the replay at: the README's, docs/binlog.md's.
STOP_DATETIME = "2026-11-30 14:02:59"
WAY_BACK_STOP = "2026-11-30 14:03:00"


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
    for the point-in-time recovery); and the server docs/binlog.md's way back
    brings back (``db3.example.com`` there)."""

    source: MariaDBServer
    db2: MariaDBServer
    db3: MariaDBServer
    way_back: MariaDBServer


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
def reader(tmp_path: Path) -> Plakar:
    """Plakar with a private home and the package installed, but no store yet: the
    README's quick start creates it."""
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")
    reader = Plakar(tmp_path / "reader")
    reader.pkg_add(Path(ptar) if ptar else find_ptar())
    return reader


#: A small ``shop`` (the quick starts' database): what the accounts' privileges are
#: for - a foreign key, a view over a view, a function, a procedure, a trigger
#: and an event, all defined by root - in rows that back up in a moment.
SHOP = (
    "CREATE TABLE customer (customer_id INT UNSIGNED PRIMARY KEY,"
    " name VARCHAR(80) NOT NULL, country CHAR(2) NOT NULL)",
    "CREATE TABLE orders (order_id INT UNSIGNED PRIMARY KEY,"
    " customer_id INT UNSIGNED NOT NULL, total DECIMAL(10,2) NOT NULL,"
    " FOREIGN KEY (customer_id) REFERENCES customer (customer_id))",
    "CREATE TABLE review (review_id INT UNSIGNED PRIMARY KEY,"
    " customer_id INT UNSIGNED NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE audit_log (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
    " order_id INT UNSIGNED NOT NULL)",
    "INSERT INTO customer SELECT seq, CONCAT('customer ', seq, ' é 茶'),"
    " ELT(1 + seq % 3, 'FR', 'DE', 'JP') FROM seq_1_to_2000",
    "INSERT INTO orders SELECT seq, 1 + seq % 2000, seq % 997 / 10 FROM seq_1_to_6000",
    "INSERT INTO review SELECT seq, 1 + seq % 2000, REPEAT('good ', seq % 20) FROM seq_1_to_500",
    "CREATE VIEW order_totals AS SELECT customer_id, SUM(total) AS total"
    " FROM orders GROUP BY customer_id",
    "CREATE VIEW top_customers AS SELECT * FROM order_totals WHERE total > 100",
    "CREATE FUNCTION orders_of(c INT UNSIGNED) RETURNS INT READS SQL DATA"
    " RETURN (SELECT COUNT(*) FROM orders WHERE customer_id = c)",
    "CREATE PROCEDURE forget(c INT UNSIGNED) MODIFIES SQL DATA"
    " DELETE FROM review WHERE customer_id = c",
    "CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW"
    " INSERT INTO audit_log (order_id) VALUES (NEW.order_id)",
    "CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit_log",
    "CREATE USER shop_app@'%' IDENTIFIED BY 'app-password'",
    "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON shop.* TO shop_app@'%'",
)


@pytest.fixture
def servers(mariadb_factory: MariaDBFactory, tmp_path: Path) -> Servers:
    """Four fresh servers, started at once, each given the README's accounts (as a
    DBA would, as root through the stock client); ``shop`` on the source."""
    arguments = (LOG_BIN, (), (), ())
    with ThreadPoolExecutor(len(arguments)) as pool:
        started = list(pool.map(lambda args: mariadb_factory(extra_args=args), arguments))
    found = Servers(*started)
    for server in started:
        load_block(server, readme()["accounts"], tmp_path)
    found.source.execute("CREATE DATABASE shop CHARACTER SET utf8mb4")
    for statement in SHOP:
        found.source.execute(statement, database="shop")
    return found


def test_option_files_are_readable_by_their_owner_alone(tmp_path: Path) -> None:
    """The README's option-file lines leave two 0600 files naming the two accounts."""
    reader = Plakar(tmp_path)
    Shell(reader, {}).run_block_all(readme()["option-files"])
    for account, name in zip(ACCOUNTS, ("backup", "restore"), strict=True):
        path = reader.home / f".plakar-{name}.cnf"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
        assert f"user={account}\n" in path.read_text()


def test_the_readme_quick_starts_run_as_written(
    reader: Plakar, servers: Servers, tmp_path: Path
) -> None:
    """The README's accounts, option files and the three quick starts, as written:
    each kind backs up with plakar_backup and restores with plakar_restore, and
    what was restored equals the source; then docs/binlog.md's way back."""
    s = servers
    shell = Shell(reader, quick_start_table(s, tmp_path, reader))
    blocks = readme()
    shell.run_block_all(blocks["option-files"])

    shell.run_block_all(blocks["quick-start-logical"])
    shop = describe_database(s.source, "shop")
    copy = describe_database(s.source, "shop", rename={"shop": "shop_copy"})
    assert diff(copy, describe_database(s.db2, "shop_copy")) == []
    assert diff(shop, describe_database(s.db2, "shop")) == []
    # users=true, as plakar_restore: the application's account comes back as it was.
    assert diff_accounts(describe_accounts(s.source), describe_accounts(s.db2)) != []
    option_file = f"defaults_file={reader.home}/.plakar-restore.cnf"
    server_files = f"{shell.snapshots['SERVER']}:/server"
    reader.restore(server_files, f"mysql://{address(s.db2)}", option_file, "users=true")
    assert diff_accounts(describe_accounts(s.source), describe_accounts(s.db2)) == []

    restored = run_physical_quick_start(shell, blocks["quick-start-physical"], s, tmp_path)
    assert diff(shop, restored) == []

    before_mistake: DatabaseDescription | None = None
    for command in shell.run_block(blocks["quick-start-binlog"]):
        if " backup " in command and "mysql+binlog://" in command:
            before_mistake = a_day_of_work_then_a_mistake(s.source, shell)
    assert before_mistake is not None
    assert diff(shop, before_mistake) != []  # the replay has work to do
    assert diff(before_mistake, describe_database(s.db3, "shop")) == []

    # docs/binlog.md's way back, with the same snapshots, onto another fresh server.
    way_back = Shell(
        reader,
        {
            **shell.table,
            "db3.example.com": address(s.way_back),
            WAY_BACK_STOP: shell.table[STOP_DATETIME],
        },
        snapshots=shell.snapshots,
    )
    way_back.run_block_all(marked_blocks(DOCS / "binlog.md")["the-way-back"])
    assert diff(before_mistake, describe_database(s.way_back, "shop")) == []


def run_physical_quick_start(
    shell: Shell, block: Block, s: Servers, tmp_path: Path
) -> DatabaseDescription:
    """Run the physical quick start; its ``mariadbd --datadir=DIR ...`` is the test
    harness's server started on DIR.  Returns ``shop`` as that server holds it."""
    started: list[MariaDBServer] = []

    def start_on(code: str) -> None:
        datadir = re.search(r"--datadir=(\S+)", code)
        assert datadir is not None, code
        # The restored directory's accounts are the source's, root's password too.
        password = s.source.root_password
        directory = Path(datadir[1])
        started.append(DatadirServer(directory, tmp_path / "started", root_password=password))

    shell.hooks["mariadbd"] = start_on
    try:
        shell.run_block_all(block)
        assert len(started) == 1
        return describe_database(started[0], "shop")
    finally:
        for server in started:
            server.cleanup()


def a_day_of_work_then_a_mistake(source: MariaDBServer, shell: Shell) -> DatabaseDescription:
    """Changes after the base, then a ``DROP TABLE`` and a ``DELETE`` without
    ``WHERE`` a second later; the stop time of the replay is that second.
    Returns ``shop`` as it was just before the mistake."""
    for statement in (
        "CREATE TABLE shop.loyalty (customer_id INT UNSIGNED PRIMARY KEY, points INT NOT NULL)",
        "INSERT INTO shop.loyalty SELECT customer_id, customer_id % 97 FROM shop.customer",
        "DELETE FROM shop.review WHERE review_id <= 20",
        "INSERT INTO shop.orders VALUES (6001, 5, 12.50), (6002, 7, 99.90)",
    ):
        source.execute(statement)
    time.sleep(1.05 - (time.time() % 1.0))
    shell.table[STOP_DATETIME] = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    before = describe_database(source, "shop")
    source.execute("DROP TABLE shop.loyalty")
    source.execute("DELETE FROM shop.review")
    return before


# --- every account block, and the same accounts everywhere --------------------------


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_every_account_block_is_one_the_tests_run() -> None:
    """An SQL block that creates an account or grants is marked, so it runs here."""
    unmarked = []
    for path in markdown_files():
        marked = {block.text for block in marked_blocks(path).values()}
        for text in fenced_blocks(path, "sql"):
            if re.search(r"\b(GRANT|CREATE USER)\b", text, re.I) and text not in marked:
                unmarked.append(f"{path.relative_to(ROOT)}: {text.splitlines()[0]}")
    assert unmarked == []
    assert all("accounts" in marked_blocks(DOCS / page) for page in PAGES)


Rows = dict[tuple[str, str], tuple[frozenset[str], bool]]


def account_rows(server: MariaDBServer) -> Rows:
    """The global privileges of each row of the two accounts, and whether it holds
    them WITH GRANT OPTION; every grant must be global (``*.*``)."""
    rows: Rows = {}
    for user, host in server.query(
        "SELECT User, Host FROM mysql.user WHERE User IN %s", (ACCOUNTS,)
    ):
        lines = [str(r[0]) for r in server.query("SHOW GRANTS FOR %s@%s", (user, host))]
        privileges: set[str] = set()
        for line in lines:
            grant = parse_grant(line)
            assert grant is not None and (grant.database, grant.table) == ("*", "*"), line
            privileges |= grant.privileges - {"USAGE"}
        rows[(str(user), str(host))] = (
            frozenset(privileges),
            any(line.endswith("WITH GRANT OPTION") for line in lines),
        )
    return rows


def drop_accounts(server: MariaDBServer) -> None:
    for account in ACCOUNTS:
        for host in HOSTS:
            server.execute("DROP USER IF EXISTS %s@%s", (account, host))


@dataclass
class Session:
    """Connections as the docs' accounts, through their option files, by TCP
    (the ``'%'`` row) and by the socket (the ``'localhost'`` row)."""

    server: MariaDBServer
    home: Path

    def connections(self, name: str) -> Iterator[Any]:
        """Sessions as ``plakar_<name>``: the server matches TCP from 127.0.0.1 (it
        resolves no host names) to the ``'%'`` row, the socket to ``'localhost'``."""
        option_file = str(self.home / f".plakar-{name}.cnf")
        for host, where in (
            ("%", {"host": self.server.host, "port": self.server.port}),
            ("localhost", {"host": "localhost", "socket": str(self.server.socket)}),
        ):
            conn = Connection(scheme="mysql", defaults_file=option_file, **where)
            with contextlib.closing(connect(conn)) as db:
                assert current_user(db) == f"'plakar_{name}'@'{host}'"
                yield db


def check_logical(session: Session) -> None:
    """The logical backup's and restore's own checks pass (:mod:`plakar_mysql.core.server`,
    :mod:`plakar_mysql.logical.preflight`), and the restore may record its point."""
    session.server.execute("CREATE DATABASE IF NOT EXISTS shop")
    for db in session.connections("backup"):
        flags = {"routines": True, "triggers": True, "events": True}
        assert missing_privileges(db, Flavour.MARIADB, ["shop"], **flags) == []
    for db in session.connections("restore"):
        check_overwrite_grants(session_grants(db), current_user(db))
        assert session_grants(db).lacking(["SET USER", "CREATE USER"]) == []
        with db.cursor() as cursor:
            cursor.execute("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_slave_pos")


def check_physical(session: Session) -> None:
    """The physical backup's own check passes, for both rows."""
    for db in session.connections("backup"):
        assert physical_missing_privileges(db, Flavour.MARIADB) == []


def check_binlog(session: Session) -> None:
    """The archive's own check passes; the replaying account may set what
    ``mariadb-binlog`` output sets, and the restored point."""
    for db in session.connections("backup"):
        check_binlog_privileges(db, Flavour.MARIADB, current_user(db))
    for db in session.connections("restore"):
        with db.cursor() as cursor:
            cursor.execute(
                "SET @@session.pseudo_thread_id = 1, @@session.server_id = 1,"
                " @@session.gtid_domain_id = 0, @@session.gtid_seq_no = 1"
            )
            cursor.execute("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_slave_pos")


KIND_CHECKS = {
    "logical.md": check_logical,
    "physical.md": check_physical,
    "binlog.md": check_binlog,
}


def test_each_page_grants_the_readme_accounts_its_kinds_part(
    mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """Each page's account block runs as written on a server without the accounts
    and passes its kind's own privilege checks, through the README's option files;
    together the pages grant exactly the README's accounts, both rows alike; and
    every block runs again over accounts already made (``IF NOT EXISTS``)."""
    reader = Plakar(tmp_path / "reader")
    Shell(reader, {}).run_block_all(readme()["option-files"])
    session = Session(mariadb, reader.home)
    union: dict[tuple[str, str], set[str]] = {}
    for page in PAGES:
        assert account_rows(mariadb) == {}
        load_block(mariadb, marked_blocks(DOCS / page)["accounts"], tmp_path)
        rows = account_rows(mariadb)
        KIND_CHECKS[page](session)
        for key, (privileges, _) in rows.items():
            union.setdefault(key, set()).update(privileges)
        drop_accounts(mariadb)
    load_block(mariadb, readme()["accounts"], tmp_path)
    expected = account_rows(mariadb)
    assert set(expected) == {(a, h) for a in ACCOUNTS for h in HOSTS}
    assert {key: frozenset(value) for key, value in union.items()} == {
        key: privileges for key, (privileges, _) in expected.items()
    }
    for account in ACCOUNTS:
        assert expected[(account, "localhost")] == expected[(account, "%")]
    for check in KIND_CHECKS.values():
        check(session)
    for page in PAGES:
        load_block(mariadb, marked_blocks(DOCS / page)["accounts"], tmp_path)
    assert account_rows(mariadb) == expected


def example_commands() -> Iterator[tuple[str, str]]:
    """Every plakar command with a MySQL location in the Markdown files' shell and
    cron blocks and in the man page's examples, with where it is."""
    texts = [
        (path, text)
        for path in markdown_files()
        for language in ("sh", "cron")
        for text in fenced_blocks(path, language)
    ]
    man = MAN_PAGE.read_text(encoding="utf-8")
    for example in re.findall(r"^\.nf\n(.*?)^\.fi$", man, re.M | re.S):
        texts.append((MAN_PAGE, example.replace("\\-", "-").replace("\\e", "\\")))
    for path, text in texts:
        for line in re.sub(r"\\\n\s*", " ", text).splitlines():
            if re.search(r"\bplakar\b.*\bmysql(\+bin|\+binlog)?://", line):
                yield f"{path.relative_to(ROOT)}: {line.strip()}", line


def test_every_example_uses_the_accounts_option_files() -> None:
    """No example puts a password on the command line or a user in a location:
    backups name plakar_backup's option file, restores to a server plakar_restore's."""
    wrong = []
    commands = list(example_commands())
    for where, line in commands:
        if "password=" in line or re.search(r"mysql[+\w]*://[^/\s]*@", line):
            wrong.append(f"a password or a user in {where}")
        elif " backup " in line and "defaults_file=$HOME/.plakar-backup.cnf" not in line:
            wrong.append(f"a backup without ~/.plakar-backup.cnf: {where}")
        elif re.search(r" restore -to mysql(\+binlog)?://", line) and (
            "defaults_file=$HOME/.plakar-restore.cnf" not in line
        ):
            wrong.append(f"a restore without ~/.plakar-restore.cnf: {where}")
    assert wrong == []
    assert len(commands) > 20, commands
