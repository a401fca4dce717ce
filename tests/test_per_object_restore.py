"""End to end, through the real plakar CLI: the per-object layout and what it
allows - restoring one table or one database out of a full-server snapshot,
refusals that change nothing, verification, accounts and definers, and files
that stay byte-identical while their table does not change."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from support import shop
from support.compare import describe_database, diff
from test_backup_restore import AWKWARD_DB, AWKWARD_TABLE, fill_awkward, password, uri
from test_both_flavours import checksums, definitions, options

from plakar_mysql.logical.layout import encode_segment, object_path
from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.plakar import Plakar


def restore_fails(plakar: Plakar, source: str, target: str, *opts: str) -> str:
    proc = plakar.restore(source, target, *opts, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_one_table_and_one_database_out_of_a_full_server_snapshot(
    plakar: Plakar, shop_server: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    fill_awkward(shop_server)
    try:
        snapshot = plakar.backup(uri(shop_server), password(shop_server))
    finally:
        shop_server.execute(f"DROP DATABASE {quote_identifier(AWKWARD_DB)}")
    awkward_dir = f"/databases/{encode_segment(AWKWARD_DB)}"
    table_path = object_path("table", AWKWARD_DB, AWKWARD_TABLE)
    assert {e.name for e in plakar.ls(snapshot, f"{awkward_dir}/tables")} == {
        table_path.rsplit("/", 1)[1]
    }
    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    assert manifest["files"][table_path]["name"] == AWKWARD_TABLE

    target = mariadb_factory()

    # One table of shop into another database.
    plakar.restore(
        f"{snapshot}:/databases/shop/tables/country.sql", uri(target, "one"), password(target)
    )
    source = describe_database(shop_server, "shop", rename={"shop": "one"})
    copy = describe_database(target, "one")
    assert set(copy.tables) == {"country"}
    assert copy.tables["country"] == source.tables["country"]
    assert set(copy.triggers) == set()  # country has none; orders' come with orders.sql

    plakar.restore(
        f"{snapshot}:/databases/shop/tables/orders.sql", uri(target, "one"), password(target)
    )
    copy = describe_database(target, "one")
    assert copy.tables["orders"] == source.tables["orders"]
    assert dict(copy.triggers) == {n: t for n, t in source.triggers.items() if t.table == "orders"}

    # One whole database into another name, views and routines included.
    proc = plakar.restore(f"{snapshot}:/databases/shop", uri(target, "whole"), password(target))
    assert "(13/13)" in proc.stderr
    expected = describe_database(shop_server, "shop", rename={"shop": "whole"})
    assert diff(expected, describe_database(target, "whole")) == []

    # A whole several-database snapshot cannot go into one database.
    message = restore_fails(plakar, snapshot, uri(target, "x"), password(target))
    assert "several databases" in message
    assert "x" not in {row[0] for row in target.query("SHOW DATABASES")}


def test_refused_overwrite_changes_nothing(
    plakar: Plakar, shop_server: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    snapshot = plakar.backup(uri(shop_server, "shop"), password(shop_server))
    target = mariadb_factory()
    # Created with the source's options: an existing database keeps its own.
    target.execute("CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    # Only a view and a function of the same names exist: still refused, naming them.
    target.execute("CREATE VIEW shop.order_totals AS SELECT 1 AS x")
    target.execute("CREATE FUNCTION shop.order_total() RETURNS INT RETURN 7")
    message = restore_fails(plakar, snapshot, uri(target), password(target))
    assert "order_totals" in message and "FUNCTION order_total" in message
    assert "nothing was restored" in message
    # The views file alone is checked against what it holds.
    message = restore_fails(
        plakar, f"{snapshot}:/databases/shop/views.sql", uri(target, "shop"), password(target)
    )
    assert "already holds order_totals" in message
    tables = target.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop'"
    )
    assert [row[0] for row in tables] == ["order_totals"]
    assert target.query("SELECT shop.order_total()")[0][0] == 7

    plakar.restore(snapshot, uri(target), password(target), "overwrite=true", "jobs=3")
    source = describe_database(shop_server, "shop")
    assert diff(source, describe_database(target, "shop")) == []


def test_unchanged_tables_give_byte_identical_files(
    plakar: Plakar, shop_server: MariaDBServer
) -> None:
    first = plakar.backup(uri(shop_server, "shop"), password(shop_server))
    shop_server.execute("UPDATE shop.country SET name = 'CHANGED' WHERE country_id = 1")
    try:
        second = plakar.backup(uri(shop_server, "shop"), password(shop_server))
    finally:
        shop_server.execute("UPDATE shop.country SET name = 'France' WHERE country_id = 1")

    def digests(snapshot: str) -> dict[str, str]:
        return {
            name: hashlib.sha256(content).hexdigest()
            for name, content in plakar.files(snapshot, "/databases/shop").items()
            if name.endswith(".sql")
        }

    before, after = digests(first), digests(second)
    assert (
        set(before) == set(after) and len(before) == len(shop.TABLES) + 4
    )  # schema, views, routines, events
    changed = sorted(path for path in before if before[path] != after[path])
    assert changed == ["/databases/shop/tables/country.sql"]
    assert plakar.cat(first, "/catalog.json") == plakar.cat(second, "/catalog.json")


def test_verify_catches_a_load_that_went_wrong(
    plakar: Plakar, shop_server: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    snapshot = plakar.backup(uri(shop_server, "shop"), password(shop_server))
    target = mariadb_factory()
    # Silently turns every InnoDB table into MyISAM: the load "succeeds".
    target.execute("SET GLOBAL enforce_storage_engine = 'MyISAM'")
    plakar.restore(snapshot, uri(target, "unverified"), password(target))
    message = restore_fails(
        plakar, snapshot, uri(target, "checked"), password(target), "verify=true"
    )
    assert (
        "verify failed" in message and "checked.audit_log differs from its snapshot file" in message
    )

    target.execute("SET GLOBAL enforce_storage_engine = NULL")
    # jobs=1 streams each table straight into the client: verified all the same.
    proc = plakar.restore(snapshot, uri(target, "good"), password(target), "verify=true", "jobs=1")
    assert "verified 13 table(s)" in proc.stderr


def test_users_roles_grants_and_definers(plakar: Plakar, mariadb_factory: MariaDBFactory) -> None:
    source = mariadb_factory()
    for statement in (
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, secret VARCHAR(10))",
        "INSERT INTO shop.t VALUES (1, 'x')",
        "CREATE ROLE reader",
        "GRANT SELECT ON shop.* TO reader",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
        "GRANT reader TO 'app'@'%'",
        "SET DEFAULT ROLE reader FOR 'app'@'%'",
        "GRANT SELECT (id) ON shop.t TO 'app'@'%'",
        "CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW shop.v AS SELECT id FROM shop.t",
    ):
        source.execute(statement)
    snapshot = plakar.backup(uri(source), password(source))
    users = plakar.cat(snapshot, "/server/users.sql")
    assert b"CREATE ROLE `reader`" in users and b"app-pw" not in users

    def grants(server: MariaDBServer) -> list[str]:
        rows = server.query("SHOW GRANTS FOR 'app'@'%'") + server.query("SHOW GRANTS FOR reader")
        return sorted(row[0] for row in rows)

    # Without users=true: said so, and the missing definer is named before loading.
    bare = mariadb_factory()
    proc = plakar.restore(snapshot, uri(bare), password(bare))
    assert "users=true" in proc.stderr
    assert "definer app@% does not exist" in proc.stderr
    assert bare.query("SELECT COUNT(*) FROM mysql.user WHERE User = 'app'")[0][0] == 0

    # users=true: accounts, roles and grants; the restoring account untouched.
    full = mariadb_factory()
    plakar.restore(snapshot, uri(full), password(full), "users=true")
    assert grants(full) == grants(source)
    assert full.query("SELECT CURRENT_USER()")[0][0]  # root's password still works
    assert full.query("SELECT id FROM shop.v")[0][0] == 1

    # definer=current: the view is defined by the restoring account instead.
    other = mariadb_factory()
    proc = plakar.restore(snapshot, uri(other), password(other), "definer=current")
    assert "does not exist" not in proc.stderr
    definer = other.query("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME='v'")
    assert definer[0][0].startswith("root@")
    assert other.query("SELECT id FROM shop.v")[0][0] == 1


#: Values that look like row boundaries, quotes or escapes to a careless count.
TRICKY_TEXT = (
    "),(",
    "a'),('b",
    "\\",
    "\\'),(\\",
    "line\nbreak),(\r\n",
    "''",
    "it's",
    '"),("',
    "\x00\x1a",
    "",
)


def fill_tricky(server: MariaDBServer) -> dict[str, int]:
    """``tricky.text_rows`` and ``tricky.blobs``, whose values hold ``),(``, quotes,
    backslashes, line breaks, NUL, bytes of every value, NULL and JSON; enough rows
    that the dump writes several ``INSERT`` statements per table.  Their row counts."""
    server.execute("CREATE DATABASE tricky CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    server.execute("CREATE TABLE tricky.text_rows (id INT PRIMARY KEY, t TEXT, j JSON, n INT NULL)")
    server.execute("CREATE TABLE tricky.blobs (id INT PRIMARY KEY, b LONGBLOB, v VARBINARY(64))")
    texts = [
        (i, TRICKY_TEXT[i % len(TRICKY_TEXT)] * (1 + i % 7), json.dumps({"k": TRICKY_TEXT[i % 5]}))
        for i in range(1000)
    ]
    with server.connect() as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tricky.text_rows VALUES (%s, %s, %s, NULL)",
            texts,
        )
        cur.executemany(
            "INSERT INTO tricky.blobs VALUES (%s, %s, %s)",
            [
                (i, bytes(range(256)) * (1 + i % 40) + b"'),(\\", b"),('\\" * (i % 4))
                for i in range(350)
            ],
        )
        cur.execute("INSERT INTO tricky.blobs VALUES (1000, NULL, NULL), (1001, '', '')")
        conn.commit()
    return {"text_rows": 1000, "blobs": 352}


@pytest.mark.parametrize(
    ("flavour", "hex_blob"), [("mariadb", "false"), ("mysql", "false"), ("mysql", "true")]
)
def test_rows_are_counted_and_verified_on_both_flavours(
    plakar: Plakar, server_factory: MariaDBFactory, hex_blob: str
) -> None:
    """The manifest counts every table's rows exactly, whatever the tool's format
    (MariaDB: one row per line; MySQL: a whole ``INSERT`` on one line) and whatever
    the values hold; ``verify=true`` compares those counts with the restored tables."""
    server = server_factory()
    expected = fill_tricky(server)
    snapshot = plakar.backup(uri(server, "tricky"), *options(server, f"hex_blob={hex_blob}"))
    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    counted = {t["name"]: t["rows"] for t in manifest["databases"][0]["tables"]}
    assert counted == expected
    inserts = plakar.cat(snapshot, "/databases/tricky/tables/blobs.sql").count(b"INSERT INTO")
    assert inserts > 1  # several statements, each counted
    # verify dumps each table again as the snapshot's header says it was dumped
    # (with --hex-blob or not), so its bytes match too.
    proc = plakar.restore(snapshot, uri(server, "tricky_copy"), *options(server, "verify=true"))
    assert "verified 2 table(s)" in proc.stderr, proc.stderr
    for table, rows in expected.items():
        assert server.query(f"SELECT COUNT(*) FROM tricky_copy.{table}") == [(rows,)]


def _official_dump(server: MariaDBServer, defaults: Path, out: Path, *args: str) -> None:
    """``out``: the flavour's own dump tool's output for ``args``, as the official
    integration stores it (``mysqldump`` for MySQL, from the server's ``bin_dir``)."""
    tool = "mariadb-dump" if server.bin_dir is None else str(Path(server.bin_dir) / "mysqldump")
    with out.open("wb") as sink:
        subprocess.run(
            [tool, f"--defaults-file={defaults}", "-h", server.host, "-P", str(server.port), *args],
            stdout=sink,
            check=True,
        )


@pytest.mark.parametrize("flavour", ["mysql"])
def test_official_layout_dumped_by_mysqls_own_mysqldump(
    plakar: Plakar, server_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """MySQL's ``mysqldump`` (binary log with GTIDs on the source, so the dumps set
    ``GTID_PURGED``) in the official layout: ``/shop.sql`` restores into a new
    server's ``shop``, and ``/all.sql`` back onto the source with ``overwrite=true``, each table's
    ``CHECKSUM TABLE`` and every routine, trigger, view and event as the source's.
    (MariaDB: ``test_snapshot_in_the_official_integrations_layout`` and the
    ``/all.sql`` test of ``test_atomic_overwrite``.)"""
    source = server_factory()
    shop.load_shop(source)
    source.execute("CREATE DATABASE other")
    source.execute("CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(10))")
    source.execute("INSERT INTO other.t VALUES (1, 'a'), (2, 'b')")
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{source.root_password}"\n')
    layouts = {}
    for name, args in (
        ("shop.sql", ("--single-transaction", "--routines", "--events", "shop")),
        ("all.sql", ("--single-transaction", "--routines", "--events", "--all-databases")),
    ):
        layout = tmp_path / name.removesuffix(".sql")
        layout.mkdir()
        (layout / "manifest.json").write_text('{"version": 1, "connector": "mysql"}\n')
        _official_dump(source, defaults, layout / name, *args)
        layouts[name] = (plakar.backup(str(layout)), layout)

    target = server_factory()
    target.execute("CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    snapshot, layout = layouts["shop.sql"]
    plakar.restore(f"{snapshot}:{layout}/", uri(target, "shop"), *options(target))
    assert checksums(target, "shop") == checksums(source, "shop")
    assert definitions(target, "shop") == definitions(source, "shop")

    # /all.sql back onto its own source, which ran every transaction of the dump's
    # GTID_PURGED: MySQL refuses to add them again (ERROR 3546); that statement is
    # left out and said.
    before = {database: checksums(source, database) for database in ("shop", "other")}
    source.execute("UPDATE shop.country SET name = 'drifted' WHERE country_id = 1")
    source.execute("DELETE FROM other.t WHERE id = 2")
    snapshot, layout = layouts["all.sql"]
    proc = plakar.restore(f"{snapshot}:{layout}/", uri(source), *options(source, "overwrite=true"))
    assert "left @@GLOBAL.gtid_purged as it was" in proc.stderr, proc.stderr
    assert {database: checksums(source, database) for database in before} == before
    assert definitions(source, "shop") == definitions(target, "shop")


@pytest.mark.parametrize("flavour", ["mysql"])
def test_filters_several_databases_and_whole_server_on_mysql(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """MySQL's ``mysqldump`` runs the filters (``--ignore-table``, the databases
    listed): several databases and the whole server, each with ``exclude_tables``
    and ``exclude_databases``, restore into a fresh server with exactly what was
    kept, each table as the source's; a pattern that matches nothing is refused.
    (MariaDB: ``test_table_filters``, ``test_full_server_into_a_fresh_server``.)"""
    source = server_factory()
    for database in ("sales", "stock", "scratch"):
        source.execute(f"CREATE DATABASE {database}")
        for table in ("items", "items_old", "notes"):
            source.execute(f"CREATE TABLE {database}.{table} (id INT PRIMARY KEY, v TEXT)")
            source.execute(
                f"INSERT INTO {database}.{table} VALUES (1, %s), (2, %s), (3, NULL)",
                (f"{database}.{table}", "),('x'),("),
            )
    several = plakar.backup(
        uri(source),
        *options(source, "databases=sales,stock", "exclude_tables=sales.items_old"),
    )
    whole = plakar.backup(
        uri(source),
        *options(source, "exclude_databases=scratch", "exclude_tables=*.notes"),
    )
    refused = plakar.at(
        "backup",
        *(arg for option in options(source, "tables=sales.nothing*") for arg in ("-o", option)),
        uri(source),
        check=False,
    )
    assert refused.returncode != 0 and "matches no table" in refused.stdout + refused.stderr

    def tables(server: MariaDBServer) -> dict[str, dict[str, int]]:
        return {
            database: checksums(server, database)
            for (database,) in server.query(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
                " WHERE SCHEMA_NAME IN ('sales', 'stock', 'scratch')"
            )
        }

    everything = tables(source)
    for snapshot, kept in (
        (several, {"sales": ("items", "notes"), "stock": ("items", "items_old", "notes")}),
        (whole, {"sales": ("items", "items_old"), "stock": ("items", "items_old")}),
    ):
        target = server_factory()
        proc = plakar.restore(snapshot, uri(target), *options(target, "verify=true"))
        assert f"verified {sum(map(len, kept.values()))} table(s)" in proc.stderr, proc.stderr
        expected = {
            database: {name: everything[database][name] for name in names}
            for database, names in kept.items()
        }
        assert tables(target) == expected
