"""Tests of the test harness itself: throwaway servers and the database comparator.

The restore tests trust ``diff(describe(source), describe(restored)) == []`` to
mean "restored exactly", so the comparator must see every kind of change a
broken backup could cause - one changed value, a lost or duplicated row, NULL
turned into an empty string, a value moved between columns - and must cope
with names that need quoting.  These tests run real servers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest
from support import shop
from support.compare import describe_database, describe_server, diff

from plakar_mysql_harness.mariadb import MariaDBError, MariaDBServer, quote_identifier

_counter = itertools.count(1)


@contextmanager
def scratch_databases(server: MariaDBServer, *names: str) -> Iterator[tuple[str, ...]]:
    """Create empty databases with unique names derived from ``names``; drop them after."""
    suffix = next(_counter)
    created = tuple(f"{name}_{suffix}" for name in names)
    for name in created:
        server.execute(f"CREATE DATABASE {quote_identifier(name)}")
    try:
        yield created
    finally:
        for name in created:
            server.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")


def run_script(server: MariaDBServer, database: str, statements: list[str]) -> None:
    """Run statements in order in ``database`` on one connection."""
    with server.connect(database) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


# -- the servers -------------------------------------------------------------------------


def test_root_can_log_in_over_tcp_and_nobody_else(mariadb: MariaDBServer) -> None:
    assert mariadb.host == "127.0.0.1"
    assert "MariaDB" in mariadb.version
    assert mariadb.query("SELECT @@port, @@datadir") == [(mariadb.port, f"{mariadb.datadir}/")]
    accounts = set(mariadb.query("SELECT User, Host FROM mysql.user WHERE User <> 'mariadb.sys'"))
    assert accounts == {("root", host) for host in ("localhost", "127.0.0.1", "::1", "%")}
    assert mariadb.query("SELECT CURRENT_USER()") == [("root@127.0.0.1",)]
    with pytest.raises(pymysql.err.OperationalError) as denied:
        mariadb.connect(password=mariadb.root_password + "x")
    assert denied.value.args[0] == 1045
    with pytest.raises(pymysql.err.OperationalError):
        mariadb.connect(user="nobody")


def test_several_servers_run_at_once(mariadb_factory: Callable[..., MariaDBServer]) -> None:
    password = "p'a\"s\\s w#rd;ü"
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(
            lambda args: mariadb_factory(**args),
            [
                {"root_password": password},
                {"extra_args": ["--log-bin=binlog", "--server-id=7"]},
            ],
        )
    assert first.port != second.port
    assert first.socket != second.socket
    assert first.root_password == password
    assert second.query("SELECT @@log_bin, @@server_id") == [(1, 7)]
    first.execute("CREATE DATABASE only_here")
    assert first.query("SHOW DATABASES LIKE 'only_here'") == [("only_here",)]
    assert second.query("SHOW DATABASES LIKE 'only_here'") == []
    # The mariadb client gets the unusual password right through the option file.
    script = first.base_dir / "script.sql"
    script.write_text("CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2);\n")
    first.load_sql_file(script, database="only_here")
    assert first.query("SELECT COUNT(*) FROM only_here.t") == [(2,)]


def test_load_sql_file_reports_client_errors(mariadb: MariaDBServer, tmp_path: Path) -> None:
    script = tmp_path / "broken.sql"
    script.write_text("CREATE DATABASE d;\nSELECT * FROM d.missing;\n")
    with pytest.raises(MariaDBError, match=r"doesn't exist"):
        mariadb.load_sql_file(script)
    assert not list(mariadb.base_dir.glob(".client-*.cnf")), "option file left behind"


def test_kill_stop_and_restart(mariadb: MariaDBServer) -> None:
    mariadb.execute("CREATE DATABASE kept")
    mariadb.execute("CREATE TABLE kept.t (a INT) ENGINE=InnoDB")
    mariadb.execute("INSERT INTO kept.t VALUES (42)")
    port = mariadb.port
    mariadb.kill()
    assert not mariadb.running
    with pytest.raises(pymysql.err.OperationalError):
        mariadb.connect()
    mariadb.start()  # crash recovery on the same data directory and port
    assert mariadb.port == port
    assert mariadb.query("SELECT a FROM kept.t") == [(42,)]
    mariadb.stop()
    assert not mariadb.running
    assert mariadb.pid is None


# -- shop and the comparator -------------------------------------------------------------


def test_shop_is_loaded_completely(shop_server: MariaDBServer) -> None:
    description = describe_database(shop_server, "shop")
    assert {name: t.row_count for name, t in description.tables.items()} == shop.row_counts()
    assert {t.kind for t in description.tables.values()} == {"BASE TABLE"}
    assert set(description.views) == shop.VIEWS
    assert set(description.routines) == shop.ROUTINES
    assert {
        name: (t.table, t.timing, t.event) for name, t in description.triggers.items()
    } == shop.TRIGGERS
    assert set(description.events) == shop.EVENTS
    # Cross-check the object counts against information_schema directly.
    assert shop_server.query(
        "SELECT TABLE_TYPE, COUNT(*) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = 'shop' GROUP BY TABLE_TYPE ORDER BY TABLE_TYPE"
    ) == [("BASE TABLE", len(shop.TABLES)), ("VIEW", len(shop.VIEWS))]
    assert "AUTO_INCREMENT=" not in description.tables["customer"].create_statement
    assert "AUTO_INCREMENT" in description.tables["customer"].create_statement
    assert "`shop`." in description.views["customer_revenue"].definition


def test_shop_compared_with_itself_has_no_difference(shop_server: MariaDBServer) -> None:
    first = describe_database(shop_server, "shop")
    second = describe_server(shop_server, ["shop"])["shop"]
    assert diff(first, second) == []
    assert first == second
    renamed = describe_database(shop_server, "shop", rename={"shop": "copy"})
    assert renamed.name == "copy"
    assert "`copy`." in renamed.views["customer_revenue"].definition
    differences = diff(first, renamed)
    assert differences[0] == "database: name differs: 'shop' != 'copy'"
    assert {line.split(":")[0] for line in differences[1:]} == {
        f"view `{name}`" for name in shop.VIEWS
    }


def test_one_changed_value_in_shop_names_its_table(shop_server: MariaDBServer) -> None:
    before = describe_database(shop_server, "shop")
    ((name,),) = shop_server.query("SELECT name FROM shop.category WHERE category_id = 5")
    shop_server.execute("UPDATE shop.category SET name = 'Toys!' WHERE category_id = 5")
    try:
        differences = diff(before, describe_database(shop_server, "shop"))
    finally:
        shop_server.execute("UPDATE shop.category SET name = %s WHERE category_id = 5", (name,))
    assert len(differences) == 1, differences
    rows = shop.row_counts()["category"]
    assert differences[0].startswith(f"table `category`: rows differ ({rows} rows"), differences
    assert diff(before, describe_database(shop_server, "shop")) == []


TABLES = [
    "CREATE TABLE keyed (id INT PRIMARY KEY, s VARCHAR(20) NULL, b VARBINARY(20) NULL, "
    "f FLOAT NULL, d DOUBLE NULL, ts TIMESTAMP(6) NULL) DEFAULT CHARSET=utf8mb4",
    "INSERT INTO keyed VALUES (1, 'a', x'00', 1.0000001, 0.1, '2024-01-01 00:00:00.000001'), "
    "(2, 'b', x'27', NULL, NULL, NULL), (3, NULL, NULL, NULL, NULL, NULL), "
    "(4, '', '', NULL, NULL, NULL), (5, 'NULL', 'NULL', NULL, NULL, NULL)",
    "CREATE TABLE heap (x VARCHAR(10) NULL, y VARCHAR(10) NULL)",
    "INSERT INTO heap VALUES ('a', 'b'), ('a', 'b'), ('c', 'd'), ('a|', 'b')",
    "CREATE TABLE other (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)",
    "INSERT INTO other (v) VALUES ('unchanged')",
]

MUTATIONS = {
    "one column of one row": ("keyed", ["UPDATE keyed SET s = 'z' WHERE id = 1"]),
    "NULL to empty string": ("keyed", ["UPDATE keyed SET s = '' WHERE id = 3"]),
    "NULL to the string NULL": ("keyed", ["UPDATE keyed SET s = 'NULL' WHERE id = 3"]),
    "empty string to NULL": ("keyed", ["UPDATE keyed SET b = NULL WHERE id = 4"]),
    "binary zero byte doubled": ("keyed", ["UPDATE keyed SET b = x'0000' WHERE id = 1"]),
    "last bit of a FLOAT": ("keyed", ["UPDATE keyed SET f = 1.0000002 WHERE id = 1"]),
    "last digit of a DOUBLE": ("keyed", ["UPDATE keyed SET d = 0.1 + 1e-17 * 2 WHERE id = 1"]),
    "one microsecond": (
        "keyed",
        ["UPDATE keyed SET ts = '2024-01-01 00:00:00.000002' WHERE id = 1"],
    ),
    "values swapped between rows": (
        "keyed",
        ["UPDATE keyed SET s = IF(id = 1, 'b', 'a') WHERE id IN (1, 2)"],
    ),
    "duplicate row added to a table without key": (
        "heap",
        ["INSERT INTO heap VALUES ('c', 'd')"],
    ),
    "duplicate traded for another, same row count": (
        "heap",
        ["DELETE FROM heap WHERE x = 'a' LIMIT 1", "INSERT INTO heap VALUES ('c', 'd')"],
    ),
    "character moved to the next column": (
        "heap",
        ["UPDATE heap SET x = 'a', y = '|b' WHERE x = 'a|'"],
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_change_is_reported_for_its_table(shop_server: MariaDBServer, mutation: str) -> None:
    table, statements = MUTATIONS[mutation]
    with scratch_databases(shop_server, "source", "target") as (source, target):
        run_script(shop_server, source, TABLES)
        run_script(shop_server, target, TABLES)
        shop_server.execute(f"INSERT INTO {target}.other (v) VALUES ('bumps the counter')")
        shop_server.execute(f"DELETE FROM {target}.other WHERE v = 'bumps the counter'")
        expected = describe_database(shop_server, source, rename={source: target})
        assert diff(expected, describe_database(shop_server, target)) == []
        run_script(shop_server, target, statements)
        differences = diff(expected, describe_database(shop_server, target))
    assert differences, f"{mutation} was not detected"
    assert {line.split(":")[0] for line in differences} == {f"table `{table}`"}, differences


SCHEMA_OBJECTS = [
    # A fixed clock, so that the row start times of `h` are the same in both copies.
    "SET timestamp = UNIX_TIMESTAMP('2024-05-01 12:00:00')",
    "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
    "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    "CREATE TABLE h (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
    "INSERT INTO h VALUES (1, 10)",
    "CREATE VIEW v AS SELECT id, v FROM t WHERE id > 0 WITH CHECK OPTION",
    "CREATE PROCEDURE p(IN a INT, OUT b VARCHAR(10)) SELECT v INTO b FROM t WHERE id = a",
    "CREATE FUNCTION f(a INT) RETURNS INT DETERMINISTIC RETURN a + 1",
    "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
    "CREATE EVENT e ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE "
    "DO DELETE FROM t WHERE id < 0",
]


def test_rename_and_changes_to_every_kind_of_object(shop_server: MariaDBServer) -> None:
    with scratch_databases(shop_server, "orig", "restored") as (orig, restored):
        run_script(shop_server, orig, SCHEMA_OBJECTS)
        run_script(shop_server, restored, SCHEMA_OBJECTS)
        source = describe_database(shop_server, orig)
        assert set(source.tables) == {"t", "h"}
        assert source.tables["h"].kind == "SYSTEM VERSIONED"
        assert set(source.views) == {"v"}
        assert set(source.routines) == {("PROCEDURE", "p"), ("FUNCTION", "f")}
        assert set(source.triggers) == {"tr"}
        assert set(source.events) == {"e"}
        assert source.events["e"].status == "DISABLED"
        assert source.routines[("PROCEDURE", "p")].parameters == (
            (1, "IN", "a", "int(11)"),
            (2, "OUT", "b", "varchar(10)"),
        )
        # Under another name the view definitions differ, until renamed.
        plain = diff(source, describe_database(shop_server, restored))
        assert {line.split(":")[0] for line in plain} == {"database", "view `v`"}
        expected = describe_database(shop_server, orig, rename={orig: restored})
        assert diff(expected, describe_database(shop_server, restored)) == []

        changes = [
            # History only: the current row is the same as before.
            "UPDATE h SET v = 11 WHERE id = 1",
            "UPDATE h SET v = 10 WHERE id = 1",
            "CREATE OR REPLACE VIEW v AS SELECT id, v FROM t WHERE id > 1 WITH CHECK OPTION",
            "DROP PROCEDURE p",
            "CREATE PROCEDURE p(IN a INT, OUT b VARCHAR(10)) SELECT v INTO b FROM t WHERE id = a+0",
            "DROP FUNCTION f",
            "CREATE FUNCTION f(a BIGINT) RETURNS INT DETERMINISTIC RETURN a + 1",
            "DROP TRIGGER tr",
            "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW SET @x = 1",
            "ALTER EVENT e ENABLE",
        ]
        run_script(shop_server, restored, changes)
        changed = describe_database(shop_server, restored)
        assert changed.tables["h"].row_count == 1
        assert changed.tables["h"].digested_rows == 3
        differences = diff(expected, changed)
    objects = {line.split(":")[0] for line in differences}
    assert objects == {
        "table `h`",
        "view `v`",
        "procedure `p`",
        "function `f`",
        "trigger `tr`",
        "event `e`",
    }, differences


AWKWARD_DATABASE = "we`ird db ü'\""
AWKWARD_TABLE = "ta ble'\"x `ñ`"
AWKWARD_COLUMN = "co`l 'ü' \"c\""


def test_awkward_names_are_quoted(shop_server: MariaDBServer) -> None:
    db = quote_identifier(AWKWARD_DATABASE)
    table = quote_identifier(AWKWARD_TABLE)
    column = quote_identifier(AWKWARD_COLUMN)
    shop_server.execute(f"CREATE DATABASE {db} DEFAULT CHARSET utf8mb4")
    try:
        run_script(
            shop_server,
            AWKWARD_DATABASE,
            [
                f"CREATE TABLE {table} (id INT PRIMARY KEY, {column} VARCHAR(20))",
                f"INSERT INTO {table} VALUES (1, 'ü`\\'\"'), (2, NULL)",
                f"CREATE VIEW `vi``ew ü` AS SELECT {column} FROM {table}",
                "CREATE PROCEDURE `pr``oc ü`() SELECT 1",
                f"CREATE TRIGGER `tr``ig ü` BEFORE UPDATE ON {table} FOR EACH ROW SET @x = 1",
                "CREATE EVENT `ev``ent ü` ON SCHEDULE AT '2030-01-01 00:00:00' DISABLE "
                "DO SET @y = 1",
            ],
        )
        before = describe_server(shop_server, [AWKWARD_DATABASE])[AWKWARD_DATABASE]
        assert before.tables[AWKWARD_TABLE].row_count == 2
        assert set(before.views) == {"vi`ew ü"}
        assert set(before.routines) == {("PROCEDURE", "pr`oc ü")}
        assert set(before.triggers) == {"tr`ig ü"}
        assert set(before.events) == {"ev`ent ü"}
        assert diff(before, describe_database(shop_server, AWKWARD_DATABASE)) == []
        shop_server.execute(
            f"UPDATE {db}.{table} SET {column} = '' WHERE id = 2", database=AWKWARD_DATABASE
        )
        differences = diff(before, describe_database(shop_server, AWKWARD_DATABASE))
    finally:
        shop_server.execute(f"DROP DATABASE {db}")
    assert len(differences) == 1, differences
    assert differences[0].startswith(f"table {table}: rows differ"), differences


def test_large_values_are_digested_whole(shop_server: MariaDBServer) -> None:
    """Values beyond max_allowed_packet (16M) must not all look alike (or like NULL)."""
    size = 20_000_000
    with scratch_databases(shop_server, "big_a", "big_b", "big_c") as (a, b, c):
        shop_server.execute("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
        try:
            for database in (a, b, c):
                run_script(
                    shop_server,
                    database,
                    [
                        "CREATE TABLE big (id INT PRIMARY KEY, v LONGBLOB)",
                        f"INSERT INTO big VALUES (1, REPEAT('x', {size})), (2, NULL)",
                    ],
                )
            run_script(shop_server, c, [f"UPDATE big SET v = INSERT(v, {size // 2}, 1, 'y')"])
        finally:
            shop_server.execute("SET GLOBAL max_allowed_packet = DEFAULT")
        assert shop_server.query("SELECT @@max_allowed_packet") == [(16 * 1024 * 1024,)]
        expected_b = describe_database(shop_server, a, rename={a: b})
        expected_c = describe_database(shop_server, a, rename={a: c})
        assert diff(expected_b, describe_database(shop_server, b)) == []
        differences = diff(expected_c, describe_database(shop_server, c))
    assert [line.split(":")[0] for line in differences] == ["table `big`"], differences
