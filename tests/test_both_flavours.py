"""End to end on both flavours: each test runs once against MariaDB and once against
Oracle MySQL (``make mysql``'s 9.7 from Debian sid), through the real plakar CLI.

A MySQL server runs as a DBA runs it (binary log with GTIDs,
``caching_sha2_password``); the integration is pointed at MySQL's client tools
with ``bin_dir`` (:attr:`MySQLServer.bin_dir`), as a user whose ``PATH`` holds
MariaDB's would do.  Copies are compared with ``CHECKSUM TABLE`` for every table
and object by object (:mod:`support.compare`).
"""

from __future__ import annotations

from conftest import MariaDBFactory
from support import shop
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.plakar import Plakar


def options(server: MariaDBServer, *more: str) -> tuple[str, ...]:
    """The password, this flavour's client tools when they are not on PATH, and ``more``."""
    tools = () if server.bin_dir is None else (f"bin_dir={server.bin_dir}",)
    return (password(server), *tools, *more)


def checksums(server: MariaDBServer, database: str) -> dict[str, int]:
    """``CHECKSUM TABLE`` of every base table of ``database``, by table name."""
    tables = server.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
        (database,),
    )
    db = quote_identifier(database)
    sums = {}
    for (name,) in tables:
        [(_, value)] = server.query(f"CHECKSUM TABLE {db}.{quote_identifier(name)} EXTENDED")
        sums[name] = value
    return sums


def definitions(server: MariaDBServer, database: str) -> dict[str, list[tuple[str, ...]]]:
    """The routines, triggers, views and events of ``database`` with their bodies, and
    each table's row count, as ``information_schema`` shows them on either flavour;
    the database's own name in a body is written ``@db``."""
    queries = {
        "routines": "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, SECURITY_TYPE "
        "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
        "triggers": "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, "
        "EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
        "views": "SELECT TABLE_NAME, VIEW_DEFINITION, SECURITY_TYPE "
        "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
        "events": "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD "
        "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
    }
    quoted = quote_identifier(database)
    found = {
        kind: sorted(
            tuple(str(value).replace(quoted, "@db") for value in row)
            for row in server.query(sql, (database,))
        )
        for kind, sql in queries.items()
    }
    found["rows"] = sorted(
        (name, str(server.query(f"SELECT COUNT(*) FROM {quoted}.{quote_identifier(name)}")[0][0]))
        for name in shop.TABLES
    )
    return found


def test_one_database_into_another_name_verified(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """``shop`` backed up and restored beside itself as ``shop_copy`` with ``verify=true``:
    every table's ``CHECKSUM TABLE`` and row count, its routines, triggers, views and
    event match."""
    source = server_factory()
    shop.load_shop(source)
    snapshot = plakar.backup(uri(source, "shop"), *options(source))

    proc = plakar.restore(snapshot, uri(source, "shop_copy"), *options(source, "verify=true"))
    assert f"verified {len(shop.TABLES)} table(s)" in proc.stderr

    before = checksums(source, "shop")
    assert sorted(before) == sorted(shop.TABLES) and all(before.values())
    assert checksums(source, "shop_copy") == before
    original = definitions(source, "shop")
    assert len(original["routines"]) == len(shop.ROUTINES)
    assert len(original["triggers"]) == len(shop.TRIGGERS)
    assert len(original["views"]) == len(shop.VIEWS)
    assert len(original["events"]) == len(shop.EVENTS)
    assert dict(original["rows"]) == {k: str(v) for k, v in shop.row_counts().items()}
    assert definitions(source, "shop_copy") == original


def test_whole_server_with_accounts_into_a_fresh_server(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """A whole server with ``users=true`` into a fresh server: the account logs in
    there with its password (``caching_sha2_password`` on MySQL), holds its role as
    its default role, which gives it what it had; no password is in the snapshot.

    On MySQL, ``SHOW CREATE USER`` names the default role, which failed the restore
    ("Authorization ID ... does not exist") before the accounts restore set it after
    the grants."""
    source = server_factory()
    set_default = {"mariadb": "FOR", "mysql": "TO"}[source.flavour]
    for statement in (
        "CREATE DATABASE sales",
        "CREATE TABLE sales.t (id INT PRIMARY KEY, note VARCHAR(20))",
        "INSERT INTO sales.t VALUES (1, 'one'), (2, 'two')",
        "CREATE ROLE reader",
        "GRANT SELECT ON sales.* TO reader",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw-5e3'",
        "GRANT reader TO 'app'@'%'",
        "GRANT INSERT ON sales.t TO 'app'@'%'",
        f"SET DEFAULT ROLE reader {set_default} 'app'@'%'",
    ):
        source.execute(statement)
    snapshot = plakar.backup(uri(source), *options(source))
    assert b"app-pw-5e3" not in plakar.cat(snapshot, "/server/users.sql")

    target = server_factory()
    plakar.restore(snapshot, uri(target), *options(target, "users=true", "verify=true"))
    assert checksums(target, "sales") == checksums(source, "sales")

    def grants(server: MariaDBServer) -> list[str]:
        rows = server.query("SHOW GRANTS FOR 'app'@'%'") + server.query("SHOW GRANTS FOR reader")
        return sorted(row[0] for row in rows)

    assert grants(target) == grants(source)
    if target.flavour == "mysql":
        plugin = "SELECT plugin FROM mysql.user WHERE User = 'app'"
        assert target.query(plugin) == [("caching_sha2_password",)]
    with target.connect("sales", user="app", password="app-pw-5e3") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_ROLE()")
        assert cur.fetchall()[0][0] in ("reader", "`reader`@`%`")
        cur.execute("SELECT note FROM sales.t ORDER BY id")
        assert [row[0] for row in cur.fetchall()] == ["one", "two"]
        cur.execute("INSERT INTO sales.t VALUES (3, 'three')")
