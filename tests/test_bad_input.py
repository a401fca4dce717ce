"""Bad input through the real plakar: one clear line naming the problem, before
anything is read or written, and no snapshot."""

from __future__ import annotations

import json
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import MariaDBFactory
from support.compare import describe_database, diff
from test_backup_restore import password
from test_both_flavours import checksums
from test_both_flavours import options as flavour_options

from plakar_mysql.logical.layout import object_path
from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.plakar import Plakar


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


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("defaults_file=/nonexistent.cnf", "option defaults_file: /nonexistent.cnf does not exist"),
        ("ssl_ca=/nonexistent/ca.pem", "option ssl_ca: /nonexistent/ca.pem does not exist"),
        ("ssl_cert=/etc", "option ssl_cert: /etc is a directory, not a file"),
        ("ssl_key=/etc/hostname/key.pem", "option ssl_key: /etc/hostname/key.pem cannot be read"),
        ("bin_dir=/etc/hostname", "option bin_dir: /etc/hostname is not a directory"),
        ("socket=/etc/hostname", "option socket: /etc/hostname is not a socket"),
    ],
)
def test_path_options_checked_before_connecting(
    plakar: Plakar, mariadb: MariaDBServer, option: str, message: str
) -> None:
    """A live server that would answer "access denied": the path is named first."""
    uri = f"mysql://root@{mariadb.host}:{mariadb.port}/db"
    output = failing_backup(plakar, uri, option)
    assert message in output
    assert "access denied" not in output


def test_missing_defaults_file_is_named_on_restore(plakar: Plakar, mariadb: MariaDBServer) -> None:
    mariadb.execute("CREATE DATABASE db")
    mariadb.execute("CREATE TABLE db.t (id INT PRIMARY KEY)")
    uri = f"mysql://root@{mariadb.host}:{mariadb.port}"
    snapshot = plakar.backup(f"{uri}/db", password(mariadb))
    proc = plakar.at(
        "restore",
        "-to",
        f"{uri}/copy",
        "-o",
        "defaults_file=/nonexistent.cnf",
        snapshot,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "option defaults_file: /nonexistent.cnf does not exist" in output
    assert "copy" not in {row[0] for row in mariadb.query("SHOW DATABASES")}


def test_unreachable_host_is_bounded_by_connect_timeout(plakar: Plakar, silent_port: int) -> None:
    started = time.monotonic()
    output = failing_backup(plakar, f"mysql://127.0.0.1:{silent_port}/db", "connect_timeout=2")
    assert time.monotonic() - started < 30
    assert f"cannot connect to 127.0.0.1:{silent_port}: no answer within 2 s" in output


def test_missing_database(plakar: Plakar, shop_server: MariaDBServer) -> None:
    uri = f"mysql://root@{shop_server.host}:{shop_server.port}/no_such_db"
    output = failing_backup(plakar, uri, f"password={shop_server.root_password}")
    assert "database 'no_such_db' does not exist" in output


def test_read_only_target_is_refused(
    plakar: Plakar, shop_server: MariaDBServer, mariadb: MariaDBServer
) -> None:
    snapshot = plakar.backup(
        f"mysql://root@{shop_server.host}:{shop_server.port}/shop",
        f"password={shop_server.root_password}",
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


# -- crafted identifiers ---------------------------------------------------------------

#: A file the shell would create if a name ever reached one.
PWNED = Path(tempfile.gettempdir()) / f"pwned-{secrets.token_hex(4)}"

#: Names crafted to break out of SQL quoting, a comment or a shell command line.
CRAFTED = (
    "x`; DROP DATABASE victim; -- x",
    "x'; DROP DATABASE victim; -- x",
    'x"; DROP DATABASE victim; #',
    f"$(touch {PWNED})",
    f"`touch {PWNED}`",
    "x\nDROP DATABASE victim;\n-- x",
)
#: All of them at once.
WORST = f"x`'\"; DROP DATABASE victim; $(touch {PWNED})\n-- x"


def store_files(plakar: Plakar) -> dict[str, int]:
    """Every file of the store with its size: what a run wrote, if anything."""
    return {
        str(path.relative_to(plakar.store)): path.stat().st_size
        for path in plakar.store.rglob("*")
        if path.is_file()
    }


def one_line_with(output: str, message: str) -> bool:
    return any(message in line for line in output.splitlines())


def test_crafted_names_in_database_and_filters(plakar: Plakar, mariadb: MariaDBServer) -> None:
    """Each crafted name is refused in one line that quotes it exactly, before
    anything is dumped or stored, and nothing it holds ever runs."""
    mariadb.execute("CREATE DATABASE victim")
    mariadb.execute("CREATE DATABASE small")
    mariadb.execute("CREATE TABLE small.t (id INT PRIMARY KEY)")
    base = f"mysql://root@{mariadb.host}:{mariadb.port}"
    secret = f"password={mariadb.root_password}"
    store = store_files(plakar)
    missing = "database {!r} does not exist".format
    cases = [(f"{base}/small", [f"database={name}"], missing(name)) for name in CRAFTED]
    cases += [
        (f"{base}/{quote(WORST, safe='')}", [], missing(WORST)),
        (base, [f"databases=small,{WORST}"], missing(WORST)),
        (f"{base}/small", [f"tables=small.{WORST}"], f"tables pattern {'small.' + WORST!r}"),
        (
            f"{base}/small",
            [f"exclude_tables=small.{WORST}"],
            f"exclude_tables pattern {'small.' + WORST!r}",
        ),
        (base, [f"exclude_databases={WORST}"], f"exclude_databases pattern {WORST!r}"),
    ]
    for uri, options, message in cases:
        args = ["backup", "-o", secret]
        for option in options:
            args += ["-o", option]
        proc = plakar.at(*args, uri, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert one_line_with(output, message), (options, output)
        assert "dumping" not in output  # refused before the dump started
    assert plakar.snapshots() == []
    assert store_files(plakar) == store  # nothing was written to the store
    assert mariadb.query("SHOW DATABASES LIKE 'victim'") == [("victim",)]
    assert not PWNED.exists()


def test_crafted_table_names_round_trip(plakar: Plakar, server_factory: MariaDBFactory) -> None:
    """Tables (and columns) named to break out of quoting, comments or a shell
    are backed up under their exact names (paths, manifest, catalog, row
    counts), restored exactly, and never run.

    The dump tools write a line break of a name as "\\n-- " in their comments;
    read back as it stood, a name with line breaks was filed under another name,
    so the check before a restore missed it and the restore silently replaced
    the table of that name in the target.  On both flavours: MySQL's tools quote
    and comment names their own way, and write each INSERT on one line."""
    source = server_factory()
    source.execute("CREATE DATABASE victim")
    source.execute("CREATE DATABASE inj")
    for number, name in enumerate(CRAFTED):
        table, column = quote_identifier(name), quote_identifier(name + "c")
        source.execute(f"CREATE TABLE inj.{table} (id INT PRIMARY KEY, {column} TEXT)")
        source.execute(f"INSERT INTO inj.{table} VALUES (%s, %s)", (number, name))
    snapshot = plakar.backup(
        f"mysql://root@{source.host}:{source.port}/inj", *flavour_options(source)
    )

    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    tables = {
        (path, entry["name"])
        for path, entry in manifest["files"].items()
        if entry["kind"] == "table"
    }
    assert tables == {(object_path("table", "inj", name), name) for name in CRAFTED}
    rows = {t["name"]: t["rows"] for t in manifest["databases"][0]["tables"]}
    assert rows == dict.fromkeys(CRAFTED, 1)
    catalog = json.loads(plakar.cat(snapshot, "/catalog.json"))
    assert sorted(catalog["databases"][0]["tables"]) == sorted(CRAFTED)

    target = server_factory()
    target.execute("CREATE DATABASE victim")
    plakar.restore(
        snapshot, f"mysql://root@{target.host}:{target.port}/inj", *flavour_options(target)
    )
    if source.flavour == "mariadb":  # support.compare reads MariaDB's information_schema
        assert diff(describe_database(source, "inj"), describe_database(target, "inj")) == []
    sums = checksums(target, "inj")
    assert sorted(sums) == sorted(CRAFTED) and sums == checksums(source, "inj")
    for server in (source, target):
        assert server.query("SHOW DATABASES LIKE 'victim'") == [("victim",)]
    assert not PWNED.exists()

    # The check before writing knows every one of them by its exact name: a
    # target holding only the one with line breaks is refused, and kept.
    other = server_factory()
    newline = CRAFTED[-1]
    other.execute("CREATE DATABASE inj")
    other.execute(f"CREATE TABLE inj.{quote_identifier(newline)} (kept INT)")
    proc = plakar.at(
        "restore",
        "-to",
        f"mysql://root@{other.host}:{other.port}/inj",
        *(arg for option in flavour_options(other) for arg in ("-o", option)),
        snapshot,
        check=False,
    )
    assert proc.returncode != 0 and "nothing was restored" in proc.stdout + proc.stderr
    assert other.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'inj'"
    ) == [("kept",)]


# -- not one of our snapshots ------------------------------------------------------------


def test_snapshot_path_that_is_not_ours(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """A plain directory backed up by Plakar's fs importer, restored to mysql://:
    refused with the file's name, before the target is touched."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "random.bin").write_bytes(secrets.token_bytes(4096))
    snapshot = plakar.backup(str(plain))
    before = mariadb.query("SHOW DATABASES")
    proc = plakar.at(
        "restore",
        "-to",
        f"mysql://root@{mariadb.host}:{mariadb.port}/copy",
        "-o",
        f"password={mariadb.root_password}",
        f"{snapshot}:{plain}",
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert one_line_with(output, "random.bin is not part of a MySQL snapshot"), output
    assert mariadb.query("SHOW DATABASES") == before


# -- privileges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "missing"),
    [
        (
            (
                "GRANT SELECT, SHOW VIEW, TRIGGER ON `shop`.* TO {user}",
                "GRANT SELECT ON `mysql`.`proc` TO {user}",
            ),
            "EVENT ON shop.* (for events; or set events=false)",
        ),
        (
            ("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO {user}",),
            "SELECT ON mysql.proc (for stored routines; or set routines=false)",
        ),
        (
            # Reading mysql.* shows every account's privileges (root's TRIGGER
            # too): only the backup account's own count.
            (
                "GRANT SELECT, SHOW VIEW, EVENT ON `shop`.* TO {user}",
                "GRANT SELECT ON `mysql`.* TO {user}",
            ),
            "TRIGGER ON shop.* (for triggers; or set triggers=false)",
        ),
    ],
    ids=["no EVENT", "no mysql.proc", "no TRIGGER, reads mysql.*"],
)
def test_missing_privilege_is_named(
    plakar: Plakar, shop_server: MariaDBServer, grants: tuple[str, ...], missing: str
) -> None:
    """The tool would leave events or routines out without a word: the backup
    refuses first and names the grant.  (Without TRIGGER: see
    test_backup_restore.py::test_least_privilege_backup_and_restore.)"""
    user = "'lacking'@'%'"
    shop_server.execute(f"CREATE USER {user} IDENTIFIED BY 'pw-lacking'")
    try:
        for grant in grants:
            shop_server.execute(grant.format(user=user))
        uri = f"mysql://lacking@{shop_server.host}:{shop_server.port}/shop"
        output = failing_backup(plakar, uri, "password=pw-lacking")
        assert one_line_with(output, f"'lacking'@'%' lacks what the backup needs: {missing}")
    finally:
        shop_server.execute(f"DROP USER IF EXISTS {user}")


# -- an unreachable restore target ---------------------------------------------------------


def test_unreachable_restore_target_is_bounded_by_connect_timeout(
    plakar: Plakar, silent_port: int, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "shop.sql").write_text("CREATE TABLE t (id INT);\n")
    snapshot = plakar.backup(str(plain))
    started = time.monotonic()
    proc = plakar.at(
        "restore",
        "-to",
        f"mysql://127.0.0.1:{silent_port}/shop",
        "-o",
        "connect_timeout=2",
        f"{snapshot}:{plain}",
        check=False,
    )
    assert time.monotonic() - started < 30
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert one_line_with(output, f"cannot connect to 127.0.0.1:{silent_port}: no answer within 2 s")


@pytest.mark.parametrize("flavour", ["mysql"])
def test_missing_database_and_read_only_target_on_mysql(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """On MySQL too: a database that does not exist is named and leaves no snapshot;
    a target with ``read_only`` (which MySQL's root may write through) is refused
    before anything is written, and so is one with ``super_read_only``.
    (MariaDB: ``test_missing_database``, ``test_read_only_target_is_refused``.)"""
    server = server_factory()
    base = f"mysql://root@{server.host}:{server.port}"
    output = failing_backup(plakar, f"{base}/no_such_db", *flavour_options(server))
    assert "database 'no_such_db' does not exist" in output
    server.execute("CREATE DATABASE small")
    server.execute("CREATE TABLE small.t (id INT PRIMARY KEY)")
    snapshot = plakar.backup(f"{base}/small", *flavour_options(server))
    for setting in ("read_only", "super_read_only"):
        server.execute(f"SET GLOBAL {setting} = ON")
        proc = plakar.restore(snapshot, f"{base}/copy", *flavour_options(server), check=False)
        assert proc.returncode != 0 and "is read-only" in proc.stdout + proc.stderr, setting
        server.execute("SET GLOBAL super_read_only = OFF")
        server.execute("SET GLOBAL read_only = OFF")
        assert server.query("SHOW DATABASES LIKE 'copy'") == []
