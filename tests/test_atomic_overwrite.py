"""Overwrite restores are atomic and bounded, through the real plakar CLI.

The database is generated here (:func:`make_shop`): nine tables, two of which
reference each other (a foreign-key cycle, like a store and its staff),
triggers (two on one table and event, in order), a view, a function, and a
table in *another* database (``crm.note``) whose foreign key references one
of the restored tables.  The target starts as a copy of the source, then
drifts (rows deleted and changed) before each overwrite restore, which must
bring ``shop`` back to the source object by object and leave ``crm`` - outside
the restore, but referencing it - exactly as it was, its key enforced against
the new table.

A restore that fails (the server refuses a statement), one that is cancelled
(plakar killed) and one that meets a lock (``LOCK TABLES ... WRITE``, or a
table read in an open transaction) must leave the target exactly as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pymysql
import pytest
from conftest import MariaDBFactory
from support.compare import describe_accounts, describe_database, diff, diff_accounts
from test_backup_restore import password, uri
from test_both_flavours import checksums
from test_both_flavours import options as flavour_options
from test_faults import children, gone, start, wait_for_query

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

#: Rows of the larger tables: enough for real loads, small enough for 20 restores.
ROWS = 300
#: The bound the lock tests set (seconds).
BOUND = 3
#: Metadata locks are named exactly with MariaDB's metadata_lock_info plugin.
WITH_MDL_INFO = ("--plugin-load-add=metadata_lock_info",)

SHOP_SCHEMA = (
    "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "CREATE DATABASE crm",
    # The cycle: a store has a manager, a member of its staff; staff work in a store.
    "CREATE TABLE shop.store (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL,"
    " manager_id INT NULL, CONSTRAINT store_manager FOREIGN KEY (manager_id)"
    " REFERENCES shop.staff (id) ON DELETE SET NULL)",
    "CREATE TABLE shop.staff (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL,"
    " store_id INT NOT NULL, FOREIGN KEY (store_id) REFERENCES shop.store (id))",
    "CREATE TABLE shop.category (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL UNIQUE)",
    "CREATE TABLE shop.product (id INT PRIMARY KEY, category_id INT NOT NULL,"
    " price DECIMAL(10,2) NOT NULL, FOREIGN KEY (category_id) REFERENCES shop.category (id))",
    "CREATE TABLE shop.customer (id INT PRIMARY KEY, store_id INT NOT NULL,"
    " email VARCHAR(80) NOT NULL, FOREIGN KEY (store_id) REFERENCES shop.store (id))",
    "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT NOT NULL,"
    " staff_id INT NOT NULL, total DECIMAL(10,2) NOT NULL DEFAULT 0,"
    " FOREIGN KEY (customer_id) REFERENCES shop.customer (id) ON DELETE CASCADE,"
    " FOREIGN KEY (staff_id) REFERENCES shop.staff (id))",
    "CREATE TABLE shop.order_item (order_id INT NOT NULL, product_id INT NOT NULL,"
    " qty INT NOT NULL, PRIMARY KEY (order_id, product_id),"
    " FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE,"
    " FOREIGN KEY (product_id) REFERENCES shop.product (id))",
    "CREATE TABLE shop.payment (id INT PRIMARY KEY AUTO_INCREMENT, order_id INT NOT NULL,"
    " amount DECIMAL(10,2) NOT NULL, note VARCHAR(40) NOT NULL DEFAULT '',"
    " FOREIGN KEY (order_id) REFERENCES shop.orders (id))",
    "CREATE TABLE shop.audit (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(60) NOT NULL)",
    # Outside the restore, referencing one of its tables.
    "CREATE TABLE crm.note (id INT PRIMARY KEY, customer_id INT NOT NULL, body TEXT,"
    " CONSTRAINT note_customer FOREIGN KEY (customer_id) REFERENCES shop.customer (id)"
    " ON DELETE CASCADE)",
)

SHOP_CODE = (
    "CREATE TRIGGER shop.item_audit AFTER INSERT ON shop.order_item FOR EACH ROW"
    " INSERT INTO audit (what) VALUES (CONCAT('item ', NEW.order_id, '/', NEW.product_id))",
    "CREATE TRIGGER shop.pay_note BEFORE INSERT ON shop.payment FOR EACH ROW"
    " SET NEW.note = CONCAT(NEW.note, 'a')",
    "CREATE TRIGGER shop.pay_note_2 BEFORE INSERT ON shop.payment FOR EACH ROW"
    " FOLLOWS pay_note SET NEW.note = CONCAT(NEW.note, 'b')",
    "CREATE TRIGGER shop.order_total BEFORE UPDATE ON shop.orders FOR EACH ROW"
    " SET NEW.total = GREATEST(NEW.total, 0)",
    "CREATE VIEW shop.sales AS SELECT o.id, c.email, SUM(i.qty * p.price) AS amount"
    " FROM shop.orders o JOIN shop.customer c ON c.id = o.customer_id"
    " JOIN shop.order_item i ON i.order_id = o.id JOIN shop.product p ON p.id = i.product_id"
    " GROUP BY o.id, c.email",
    "CREATE FUNCTION shop.double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
)


def make_shop(server: MariaDBServer, rows: int = ROWS) -> None:
    """The ``shop`` and ``crm`` databases, deterministically."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        for statement in SHOP_SCHEMA:
            cur.execute(statement)
        cur.execute("SET SESSION foreign_key_checks = 1")
        conn.select_db("shop")  # the seq_1_to_N tables are read in a current database
        cur.execute("INSERT INTO shop.store VALUES (1, 'North', NULL), (2, 'South', NULL)")
        cur.execute(
            "INSERT INTO shop.staff SELECT seq, CONCAT('staff ', seq), 1 + seq % 2 FROM seq_1_to_6"
        )
        cur.execute("UPDATE shop.store SET manager_id = id")
        cur.execute("INSERT INTO shop.category SELECT seq, CONCAT('cat ', seq) FROM seq_1_to_8")
        cur.execute(
            f"INSERT INTO shop.product SELECT seq, 1 + seq % 8, seq * 1.25 FROM seq_1_to_{rows}"
        )
        cur.execute(
            "INSERT INTO shop.customer SELECT seq, 1 + seq % 2, CONCAT('c', seq, '@example.org')"
            f" FROM seq_1_to_{rows}"
        )
        cur.execute(
            "INSERT INTO shop.orders SELECT seq, 1 + seq % 100, 1 + seq % 6, seq"
            f" FROM seq_1_to_{rows}"
        )
        for statement in SHOP_CODE:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO shop.order_item SELECT 1 + seq % 300, 1 + seq % 97, seq % 5 + 1"
            f" FROM seq_1_to_{rows} WHERE 1 + seq % 300 <= {rows}"
        )
        cur.execute(
            f"INSERT INTO shop.payment (order_id, amount) SELECT seq, seq / 3 FROM seq_1_to_{rows}"
        )
        cur.execute("INSERT INTO crm.note SELECT seq, seq, CONCAT('note ', seq) FROM seq_1_to_50")


def drift(server: MariaDBServer, run: int) -> None:
    """Change the target the way a day of use (or an incident) would."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM shop.payment WHERE id = %s", (run + 1,))
        cur.execute("UPDATE shop.product SET price = price + 1 WHERE id = %s", (run + 1,))
        cur.execute("DELETE FROM shop.order_item WHERE order_id = %s", (run + 2,))
        cur.execute("UPDATE shop.store SET name = %s WHERE id = 1", (f"drifted {run}",))


def leftovers(server: MariaDBServer) -> list[str]:
    """Shadow databases and set-aside tables the restore should not leave behind."""
    rows = server.query(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'plakar%'"
        " UNION ALL SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES"
        " WHERE TABLE_NAME LIKE 'plakar%'"
    )
    return [row[0] for row in rows]


def state(server: MariaDBServer) -> tuple[object, ...]:
    """Everything the restores may touch: both databases, the accounts, no leftovers."""
    return (
        describe_database(server, "shop"),
        describe_database(server, "crm"),
        describe_accounts(server),
        leftovers(server),
    )


def assert_unchanged(server: MariaDBServer, before: tuple[object, ...]) -> None:
    after = state(server)
    assert diff(before[0], after[0]) == []  # type: ignore[arg-type]
    assert diff(before[1], after[1]) == []  # type: ignore[arg-type]
    assert diff_accounts(before[2], after[2]) == []  # type: ignore[arg-type]
    assert after[3] == before[3] == []


def keys_enforced(server: MariaDBServer) -> None:
    """The foreign keys work against the restored tables, inside and outside the restore."""
    with server.connect() as conn, conn.cursor() as cur:
        for statement in (
            "INSERT INTO crm.note VALUES (999, 999999, 'no such customer')",
            "INSERT INTO shop.staff VALUES (999, 'nowhere', 999)",
            "INSERT INTO shop.store VALUES (999, 'x', 999)",
        ):
            with pytest.raises(pymysql.err.IntegrityError, match="foreign key constraint fails"):
                cur.execute(statement)
        # The cascade from the restored customer table reaches crm.note.
        # (customer 250 has no orders, which would refuse the delete.)
        conn.begin()
        cur.execute("INSERT INTO crm.note VALUES (999, 250, 'cascades')")
        cur.execute("DELETE FROM shop.customer WHERE id = 250")
        cur.execute("SELECT COUNT(*) FROM crm.note WHERE customer_id = 250")
        assert cur.fetchone() == (0,)
        conn.rollback()


@pytest.fixture
def shop(mariadb_factory: MariaDBFactory) -> MariaDBServer:
    server = mariadb_factory()
    make_shop(server)
    return server


def shop_target(mariadb_factory: MariaDBFactory, *extra: str) -> MariaDBServer:
    """A target holding its own copy of both databases, a grant on a restored table."""
    target = mariadb_factory(extra_args=extra)
    make_shop(target)
    target.execute("CREATE USER 'reporter'@'%' IDENTIFIED BY 'r-pw'")
    target.execute("GRANT SELECT ON shop.customer TO 'reporter'@'%'")
    target.execute("GRANT SELECT (email) ON shop.customer TO 'reporter'@'%'")
    return target


def test_twenty_overwrite_restores_in_a_row(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    source = describe_database(shop, "shop")
    crm = describe_database(target, "crm")
    accounts = describe_accounts(target)
    started = time.monotonic()
    for run in range(20):
        drift(target, run)
        assert diff(source, describe_database(target, "shop")) != []
        proc = plakar.restore(snapshot, uri(target), password(target), "overwrite=true", "jobs=4")
        assert "swapped in 9 table(s) in one statement" in proc.stderr, proc.stderr
        assert diff(source, describe_database(target, "shop")) == [], f"run {run + 1}"
        assert diff(crm, describe_database(target, "crm")) == [], f"run {run + 1}"
        assert diff_accounts(accounts, describe_accounts(target)) == [], f"run {run + 1}"
        assert leftovers(target) == []
    elapsed = time.monotonic() - started
    print(f"20 overwrite restores (jobs=4) with checks: {elapsed:.1f} s")
    keys_enforced(target)

    # One table alone: its keys reference tables outside the restore (customer,
    # staff), and tables outside it reference it (order_item, payment).
    drift(target, 20)
    target.execute("UPDATE shop.orders SET total = total + 1 WHERE id = 3")
    proc = plakar.restore(
        f"{snapshot}:/databases/shop/tables/orders.sql",
        uri(target, "shop"),
        password(target),
        "overwrite=true",
    )
    assert "swapped in 1 table(s)" in proc.stderr, proc.stderr
    restored = describe_database(target, "shop")
    assert restored.tables["orders"] == source.tables["orders"]
    assert restored.triggers["order_total"] == source.triggers["order_total"]
    for name in ("order_item", "payment", "customer", "staff"):
        expected = source.tables[name].create_statement
        assert restored.tables[name].create_statement == expected, name
    with target.connect() as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.IntegrityError, match="foreign key constraint fails"):
            cur.execute("INSERT INTO shop.orders VALUES (9999, 999999, 1, 0)")
        with pytest.raises(pymysql.err.IntegrityError, match="foreign key constraint fails"):
            cur.execute("INSERT INTO shop.payment (order_id, amount) VALUES (999999, 1)")

    # Streamed straight into the client (jobs=1), and verified against the snapshot;
    # a view has taken the name of a restored table meanwhile.
    target.execute("DROP TABLE shop.audit")
    target.execute("CREATE VIEW shop.audit AS SELECT 1 AS id, 'x' AS what")
    proc = plakar.restore(
        snapshot, uri(target), password(target), "overwrite=true", "jobs=1", "verify=true"
    )
    assert "verified 9 table(s)" in proc.stderr, proc.stderr
    assert diff(source, describe_database(target, "shop")) == []
    assert diff(crm, describe_database(target, "crm")) == []
    assert leftovers(target) == []
    # The triggers fire, in their order, on the restored tables.
    target.execute("INSERT INTO shop.payment (order_id, amount) VALUES (1, 1)")
    assert target.query("SELECT note FROM shop.payment ORDER BY id DESC LIMIT 1") == [("ab",)]


def test_a_refused_statement_leaves_the_target_as_it_was(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """The restoring account may not create triggers: the load of the first table
    with triggers fails midway through the restore; nothing of the target changed."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    drift(target, 0)
    target.execute("CREATE USER 'loader'@'%' IDENTIFIED BY 'l-pw'")
    target.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES,"
        " CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, LOCK TABLES, PROCESS,"
        " SET USER ON *.* TO 'loader'@'%'"
    )
    before = state(target)
    loader = f"mysql://loader@{target.host}:{target.port}/"
    proc = plakar.at(
        "restore",
        "-to",
        loader,
        "-o",
        "password=l-pw",
        "-o",
        "overwrite=true",
        "-o",
        "jobs=4",
        snapshot,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "TRIGGER command denied" in output, output
    assert "loaded table shop.audit" in output, output  # midway: some tables had loaded
    assert "dropped the shadow database" in output, output
    assert_unchanged(target, before)


def test_a_cancelled_restore_leaves_the_target_as_it_was(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """plakar killed while a large table loads: the target is as it was; the next
    overwrite restore drops what the killed one left and completes."""
    shop.execute("CREATE TABLE shop.bulk (id INT PRIMARY KEY, pad VARCHAR(200))")
    shop.execute(
        "INSERT INTO bulk SELECT seq, REPEAT('x', 200) FROM seq_1_to_400000", database="shop"
    )
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    drift(target, 0)
    before = state(target)
    args = ["restore", "-to", uri(target), "-o", password(target), "-o", "overwrite=true"]
    restore = start(plakar, *args, "-o", "jobs=4", snapshot)
    wait_for_query(target, "INSERT INTO `bulk` VALUES%", restore)
    plugins = [pid for pid, argv in children(restore.pid) if argv[0].endswith(b"mysql-exporter")]
    os.kill(restore.pid, signal.SIGKILL)
    restore.communicate()
    for pid in plugins:
        assert gone(pid, timeout=60), f"mysql-exporter {pid} still runs"
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and target.query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO%'"
        )[0][0]
    ):
        time.sleep(0.2)
    left = leftovers(target)
    assert_unchanged(target, (*before[:3], left))
    proc = plakar.restore(snapshot, uri(target), password(target), "overwrite=true", "jobs=4")
    if left:
        assert "by an interrupted restore" in proc.stderr, proc.stderr
    assert diff(describe_database(shop, "shop"), describe_database(target, "shop")) == []
    assert diff(before[1], describe_database(target, "crm")) == []  # type: ignore[arg-type]
    assert leftovers(target) == []


def _holder(target: MariaDBServer, how: str) -> tuple[pymysql.connections.Connection, int]:  # type: ignore[type-arg]
    """A client holding a lock on shop.customer, ``how``: "lock" or "transaction"."""
    holder = target.connect(autocommit=False)
    with holder.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        ident = int(cur.fetchone()[0])  # type: ignore[index]
        if how == "lock":
            cur.execute("LOCK TABLES shop.customer WRITE")
        else:
            cur.execute("START TRANSACTION")
            cur.execute("SELECT COUNT(*) FROM shop.customer")
            cur.fetchall()
    return holder, ident


def sleep_in(holder: pymysql.connections.Connection) -> None:  # type: ignore[type-arg]
    """Keep ``holder`` busy with a statement until it is killed."""
    with contextlib.suppress(pymysql.err.OperationalError):  # Query execution was interrupted
        holder.query("SELECT SLEEP(20)")


@pytest.mark.parametrize("how", ["lock", "transaction"])
def test_a_lock_held_by_another_client_fails_within_the_bound(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory, how: str
) -> None:
    """LOCK TABLES ... WRITE, or a table read in an open transaction: the restore
    gives up after lock_wait_timeout, names the holder, changes nothing."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory, *WITH_MDL_INFO)
    drift(target, 0)
    before = state(target)
    holder, ident = _holder(target, how)
    sleeper = None
    try:
        if how == "lock":
            # Busy with a statement while it holds the lock: the message shows it.
            sleeper = threading.Thread(target=sleep_in, args=(holder,))
            sleeper.start()
        started = time.monotonic()
        proc = plakar.at(
            "restore",
            "-to",
            uri(target),
            "-o",
            password(target),
            "-o",
            "overwrite=true",
            "-o",
            "jobs=4",
            "-o",
            f"lock_wait_timeout={BOUND}",
            snapshot,
            check=False,
            timeout=120,
        )
        elapsed = time.monotonic() - started
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        print(f"{how}: the restore failed after {elapsed:.1f} s (bound {BOUND} s)")
        assert elapsed < 20, output  # well before the holder lets go
        assert f"gave up after {BOUND} s (lock_wait_timeout)" in output, output
        # (LOCK TABLES also locks the tables its foreign keys and triggers reach.)
        held = re.search(rf"(shop\.[^:]*) locked by session {ident} \(root@127\.0\.0\.1:", output)
        assert held is not None and "shop.customer" in held[1].split(", "), output
        if how == "lock":
            assert "SELECT SLEEP(20)" in output, output
        else:
            assert "Sleep for" in output and "no statement running" in output, output
        assert "nothing was restored" in output, output
    finally:
        if sleeper is not None:
            target.execute(f"KILL QUERY {ident}")
            sleeper.join()
        holder.rollback()
        holder.close()
    assert_unchanged(target, before)


def test_lock_holder_candidates_without_lock_information(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """Without metadata_lock_info the server cannot say who holds a metadata lock:
    the open transactions are named as the candidates."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    before = state(target)
    holder, ident = _holder(target, "transaction")
    try:
        proc = plakar.at(
            "restore",
            "-to",
            uri(target),
            "-o",
            password(target),
            "-o",
            "overwrite=true",
            "-o",
            f"lock_wait_timeout={BOUND}",
            snapshot,
            check=False,
            timeout=120,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "cannot say which session holds it" in output, output
        assert f"sessions with an open transaction: session {ident} (root@" in output, output
    finally:
        holder.rollback()
        holder.close()
    assert_unchanged(target, before)


def test_flush_privileges_after_an_official_whole_server_dump(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """The official integration's /all.sql loads the mysql schema's tables: the
    accounts it holds take effect (SHOW GRANTS as on the source)."""
    source = mariadb_factory(root_password="same-root-pw")
    for statement in (
        "CREATE DATABASE app",
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
        "GRANT SELECT, INSERT ON app.* TO 'app'@'%'",
        "CREATE USER 'ops'@'localhost' IDENTIFIED BY 'ops-pw'",
        "GRANT PROCESS ON *.* TO 'ops'@'localhost'",
    ):
        source.execute(statement)
    layout = tmp_path / "official"
    layout.mkdir()
    (layout / "manifest.json").write_text('{"version": 1, "connector": "mariadb"}\n')
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{source.root_password}"\n')
    with (layout / "all.sql").open("wb") as out:
        subprocess.run(
            [
                "mariadb-dump",
                f"--defaults-file={defaults}",
                "-h",
                source.host,
                "-P",
                str(source.port),
                "--single-transaction",
                "--all-databases",
            ],
            stdout=out,
            check=True,
        )
    snapshot = plakar.backup(str(layout))
    target = mariadb_factory(root_password="same-root-pw")
    proc = plakar.restore(f"{snapshot}:{layout}/", uri(target), password(target), "overwrite=true")
    assert "FLUSH PRIVILEGES" in proc.stderr, proc.stderr
    for account in ("'app'@'%'", "'ops'@'localhost'"):
        assert target.query(f"SHOW GRANTS FOR {account}") == source.query(
            f"SHOW GRANTS FOR {account}"
        )
    with target.connect(user="app", password="app-pw") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (1)")


# -- issue 20: clean-up, triggers after a failed swap, global settings put back -----------

#: What a restoring account needs on the shadow databases (docs/overwrite.md, Privileges).
SHADOW_GRANTS = (
    "GRANT ALL ON `plakar\\_restore\\_%`.* TO {who}",
    "GRANT ALL ON `plakar\\_old\\_%`.* TO {who}",
)


def account(server: MariaDBServer, name: str, *grants: str) -> str:
    """Create ``name``@'%' with ``grants`` (``{who}`` stands for the account) and
    the shadow databases' privileges; return its restore URI."""
    who = f"'{name}'@'%'"
    server.execute(f"CREATE USER {who} IDENTIFIED BY '{name}-pw'")
    for grant in (*SHADOW_GRANTS, *grants):
        server.execute(grant.format(who=who))
    return f"mysql://{name}@{server.host}:{server.port}/"


def restore_as(
    plakar: Plakar, snapshot: str, to: str, name: str, *opts: str, check: bool = True
) -> str:
    proc = plakar.restore(snapshot, to, f"password={name}-pw", "overwrite=true", *opts, check=check)
    return proc.stdout + proc.stderr


def tag(account_name: str) -> str:
    """The account tag a restore puts in its databases' names (docs/overwrite.md)."""
    return hashlib.sha256(account_name.encode()).hexdigest()[:8]


def fake_shadow(
    server: MariaDBServer,
    owner: pymysql.connections.Connection,  # type: ignore[type-arg]
    *,
    legacy: bool = False,
) -> str:
    """A shadow database as ``owner``'s restore makes it, holding a loaded table
    (``legacy``: named as release 0.1.0 did, without the account's tag)."""
    with owner.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID(), CURRENT_USER()")
        ident, who = cur.fetchone()  # type: ignore[misc]
        name = f"plakar_restore_{ident}_1" + ("" if legacy else f"_{tag(who)}")
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"CREATE TABLE {name}.customer (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {name}.customer VALUES (1), (2)")
    return name


def schemas(server: MariaDBServer) -> set[str]:
    return {row[0] for row in server.query("SHOW DATABASES LIKE 'plakar%'")}


def test_clean_up_drops_only_what_is_proven_abandoned(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """A restoring account without PROCESS (but able to read mysql.*, which fooled
    the old check) leaves another account's running shadow database, and one
    whose session it cannot see; no restore drops the plakar_old_* database it
    told the user is kept; an account with PROCESS through a role drops the
    shadow of a session that is gone, and only that."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    loader = account(
        target,
        "loader",
        "GRANT ALL ON shop.* TO {who}",
        "GRANT SELECT ON crm.* TO {who}",  # crm.note's key is hidden from it
        "GRANT SELECT ON mysql.* TO {who}",
        "GRANT SET USER ON *.* TO {who}",  # the triggers' definer is root
    )
    target.execute("CREATE ROLE watcher")
    target.execute("GRANT PROCESS ON *.* TO watcher")
    ops = account(
        target,
        "ops",
        "GRANT ALL ON shop.* TO {who}",
        "GRANT ALL ON crm.* TO {who}",
        "GRANT SET USER ON *.* TO {who}",
        "GRANT watcher TO {who}",
        "SET DEFAULT ROLE watcher FOR {who}",
    )
    running = target.connect()  # another account's restore, still loading
    live = fake_shadow(target, running, legacy=True)
    gone = target.connect()  # one killed before it could clean up
    dead = fake_shadow(target, gone)
    gone.close()
    try:
        # 1. A step after the swap fails: the replaced tables are kept, and the user told so.
        output = restore_as(plakar, snapshot, loader, "loader", "jobs=2", check=False)
        assert {live, dead} <= schemas(target), output
        found = re.search(
            r"the replaced tables not dropped are kept in (plakar_old_\w+) \(", output
        )
        assert found is not None, output
        kept = found[1]
        # crm.note's key, invisible to the account, still references a replaced table.
        assert "dropping the tables replaced failed: Cannot delete" in output, output
        assert kept.endswith(tag("loader@%")), kept
        held = {row[0] for row in target.query(f"SHOW TABLES FROM {kept}")}
        assert "customer" in held, held  # the one crm.note references
        customers = target.query(f"SELECT COUNT(*) FROM {kept}.customer")
        others = ", ".join(sorted([live, dead]))
        assert f"left {others}: made by another account's session" in output, output
        assert schemas(target) == {live, dead, kept}

        # 2. The same account again (its own leftover, its session gone): kept, and said.
        output = restore_as(
            plakar, f"{snapshot}:/databases/shop/tables/audit.sql", loader + "shop", "loader"
        )
        assert f"kept {kept}: the tables an earlier overwrite restore replaced" in output, output
        assert f"left {others}: made by" in output, output
        assert schemas(target) == {live, dead, kept}

        # 3. PROCESS through a default role: the dead session's shadow goes, nothing else.
        output = restore_as(
            plakar, f"{snapshot}:/databases/shop/tables/audit.sql", ops + "shop", "ops"
        )
        assert f"dropped '{dead}', left behind by an interrupted restore" in output, output
        assert f"kept {kept}:" in output, output
        assert live not in output, output
        assert schemas(target) == {live, kept}
        assert target.query(f"SELECT COUNT(*) FROM {live}.customer") == [(2,)]
        assert {row[0] for row in target.query(f"SHOW TABLES FROM {kept}")} == held
        assert target.query(f"SELECT COUNT(*) FROM {kept}.customer") == customers == [(ROWS,)]
    finally:
        running.close()


def test_a_failed_swap_leaves_the_triggers_in_place(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """The RENAME fails (the account may not drop shop.category) after the replaced
    tables' triggers were dropped for it: they are created again, the target is
    exactly as it was, and the message says so."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    drift(target, 0)
    tables = [
        row[0] for row in target.query("SHOW FULL TABLES FROM shop WHERE Table_type = 'BASE TABLE'")
    ]
    loader = account(
        target,
        "loader",
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW,"
        " TRIGGER, LOCK TABLES, CREATE ROUTINE, ALTER ROUTINE, EVENT ON shop.* TO {who}",
        *(f"GRANT ALTER, DROP ON shop.{t} TO {{who}}" for t in tables if t != "category"),
        "GRANT ALL ON crm.* TO {who}",
        "GRANT SET USER ON *.* TO {who}",
    )
    before = state(target)
    assert len(before[0].triggers) == 4  # type: ignore[attr-defined]
    output = restore_as(plakar, snapshot, loader, "loader", "jobs=2", check=False)
    assert "swapping the restored tables in failed:" in output, output
    assert "for table `shop`.`category`" in output, output
    assert "nothing was restored, the target is as it was" in output, output
    assert_unchanged(target, before)


def test_triggers_that_cannot_be_created_again_are_named(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """As above, but the account may not create a trigger defined by root (no SET
    USER): each trigger lost is named in the error, its definition is in the log,
    and nothing else changed."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = shop_target(mariadb_factory)
    tables = [
        row[0] for row in target.query("SHOW FULL TABLES FROM shop WHERE Table_type = 'BASE TABLE'")
    ]
    loader = account(
        target,
        "loader",
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW,"
        " TRIGGER, LOCK TABLES, CREATE ROUTINE, ALTER ROUTINE, EVENT ON shop.* TO {who}",
        *(f"GRANT ALTER, DROP ON shop.{t} TO {{who}}" for t in tables if t != "category"),
    )
    before = state(target)
    definitions = {
        name: target.query(f"SHOW CREATE TRIGGER shop.{name}")[0][2]
        for (name,) in target.query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS")
    }
    proc = plakar.restore(
        snapshot, loader, "password=loader-pw", "overwrite=true", "definer=current", check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    after = describe_database(target, "shop")
    lost = sorted(set(before[0].triggers) - set(after.triggers))  # type: ignore[attr-defined]
    assert lost == ["item_audit", "order_total", "pay_note", "pay_note_2"], output
    error = next(line for line in output.splitlines() if "the target is as it was except" in line)
    for name, table in (
        ("item_audit", "order_item"),
        ("order_total", "orders"),
        ("pay_note", "payment"),
        ("pay_note_2", "payment"),
    ):
        assert f"shop.{name} (on {table})" in error, error
        assert f"trigger shop.{table}.{name} could not be created again" in output, output
    for name in lost:  # each definition is in the log, as the server showed it
        assert definitions[name] in output, output
    assert after.tables == before[0].tables  # type: ignore[attr-defined]
    assert diff(before[1], describe_database(target, "crm")) == []  # type: ignore[arg-type]
    assert leftovers(target) == []


def test_max_allowed_packet_is_put_back(plakar: Plakar, mariadb_factory: MariaDBFactory) -> None:
    """A source with a larger max_allowed_packet: the restore raises the target's
    for its rows and puts it back, after a success and after a failure."""
    source = mariadb_factory(extra_args=("--max-allowed-packet=64M",))
    make_shop(source)
    snapshot = plakar.backup(uri(source, "shop"), password(source))
    target = mariadb_factory()
    (original,) = target.query("SELECT @@GLOBAL.max_allowed_packet")[0]
    assert original < 64 << 20
    proc = plakar.restore(snapshot, uri(target), password(target), "jobs=2")
    assert f"raised max_allowed_packet from {original} to {64 << 20}" in proc.stderr, proc.stderr
    assert f"put max_allowed_packet back to {original}" in proc.stderr, proc.stderr
    assert target.query("SELECT @@GLOBAL.max_allowed_packet") == [(original,)]
    # A failure (a lock the swap cannot get): put back all the same.
    holder, _ = _holder(target, "lock")
    try:
        proc = plakar.restore(
            snapshot,
            uri(target),
            password(target),
            "overwrite=true",
            f"lock_wait_timeout={BOUND}",
            check=False,
        )
    finally:
        holder.close()
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "gave up after" in output, output
    assert f"put max_allowed_packet back to {original}" in output, output
    assert target.query("SELECT @@GLOBAL.max_allowed_packet") == [(original,)]


def test_the_restored_point_is_stated_with_its_old_value(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    """A restore asked to (restore_point=true: the default only for a whole
    server) sets the server-wide @@gtid_slave_pos: the output says so, with the
    value it had and the new one."""
    source = mariadb_factory(extra_args=("--log-bin=binlog", "--server-id=1"))
    make_shop(source)
    gtid = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
    snapshot = plakar.backup(uri(source, "shop"), password(source))
    target = mariadb_factory()
    target.execute("SET GLOBAL gtid_slave_pos = '0-9-5'")
    proc = plakar.restore(snapshot, uri(target), password(target), "restore_point=true")
    assert (
        f"recorded the base's point {gtid} in @@gtid_slave_pos (where a binlog replay starts;"
        f" server-wide: it was 0-9-5, it is now {gtid})"
    ) in proc.stderr, proc.stderr
    assert target.query("SELECT @@GLOBAL.gtid_slave_pos") == [(gtid,)]


def test_jobs_are_capped_by_the_servers_free_connections(
    plakar: Plakar, shop: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """A target allowing 10 connections: jobs=8 is lowered (and said), and the
    restore, its loads and verify dumps all within that, completes exactly."""
    snapshot = plakar.backup(uri(shop, "shop"), password(shop))
    target = mariadb_factory(extra_args=("--max-connections=10",))
    proc = plakar.restore(snapshot, uri(target), password(target), "jobs=8", "verify=true")
    lowered = re.search(
        r"jobs lowered from 8 to (\d+): the server allows 10 connections", proc.stderr
    )
    assert lowered is not None and 1 <= int(lowered[1]) < 8, proc.stderr
    assert diff(describe_database(shop, "shop"), describe_database(target, "shop")) == []


#: Sakila's shape where it matters: ``store`` and ``staff`` reference each other,
#: ``rental`` and ``payment`` (the large tables) reference ``staff``, every key
#: ``ON UPDATE CASCADE``.
RENTAL_SCHEMA = (
    "CREATE DATABASE rental_shop",
    "CREATE TABLE rental_shop.address (address_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,"
    " address VARCHAR(50) NOT NULL)",
    "CREATE TABLE rental_shop.staff (staff_id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
    " name VARCHAR(45) NOT NULL, address_id SMALLINT UNSIGNED NOT NULL, picture BLOB,"
    " store_id TINYINT UNSIGNED NOT NULL, KEY (store_id), CONSTRAINT fk_staff_address"
    " FOREIGN KEY (address_id) REFERENCES address (address_id) ON UPDATE CASCADE,"
    " CONSTRAINT fk_staff_store FOREIGN KEY (store_id) REFERENCES store (store_id)"
    " ON UPDATE CASCADE)",
    "CREATE TABLE rental_shop.store (store_id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
    " manager_staff_id TINYINT UNSIGNED NOT NULL UNIQUE, address_id SMALLINT UNSIGNED NOT NULL,"
    " CONSTRAINT fk_store_staff FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id)"
    " ON UPDATE CASCADE, CONSTRAINT fk_store_address FOREIGN KEY (address_id)"
    " REFERENCES address (address_id) ON UPDATE CASCADE)",
    "CREATE TABLE rental_shop.customer (customer_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,"
    " store_id TINYINT UNSIGNED NOT NULL, CONSTRAINT fk_customer_store FOREIGN KEY (store_id)"
    " REFERENCES store (store_id) ON UPDATE CASCADE)",
    "CREATE TABLE rental_shop.inventory (inventory_id MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,"
    " store_id TINYINT UNSIGNED NOT NULL, CONSTRAINT fk_inventory_store FOREIGN KEY (store_id)"
    " REFERENCES store (store_id) ON UPDATE CASCADE)",
    "CREATE TABLE rental_shop.rental (rental_id INT NOT NULL PRIMARY KEY,"
    " inventory_id MEDIUMINT UNSIGNED NOT NULL, customer_id SMALLINT UNSIGNED NOT NULL,"
    " staff_id TINYINT UNSIGNED NOT NULL,"
    " CONSTRAINT fk_rental_staff FOREIGN KEY (staff_id) REFERENCES staff (staff_id)"
    " ON UPDATE CASCADE, CONSTRAINT fk_rental_inventory FOREIGN KEY (inventory_id)"
    " REFERENCES inventory (inventory_id) ON UPDATE CASCADE, CONSTRAINT fk_rental_customer"
    " FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON UPDATE CASCADE)",
    "CREATE TABLE rental_shop.payment (payment_id INT NOT NULL PRIMARY KEY,"
    " customer_id SMALLINT UNSIGNED NOT NULL, staff_id TINYINT UNSIGNED NOT NULL,"
    " rental_id INT NULL, amount DECIMAL(5,2) NOT NULL,"
    " CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id) REFERENCES rental (rental_id)"
    " ON DELETE SET NULL ON UPDATE CASCADE, CONSTRAINT fk_payment_customer FOREIGN KEY"
    " (customer_id) REFERENCES customer (customer_id) ON UPDATE CASCADE,"
    " CONSTRAINT fk_payment_staff FOREIGN KEY (staff_id) REFERENCES staff (staff_id)"
    " ON UPDATE CASCADE)",
)


def make_rental_shop(server: MariaDBServer) -> None:
    """``rental_shop``, deterministically, with SQL both flavours run (no ``seq_``)."""
    numbers = "WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {})"
    fills = (
        ("address", 600, "n, CONCAT('street ', n)"),
        ("customer", 599, "n, 1 + n % 2"),
        ("inventory", 4000, "n, 1 + n % 2"),
        ("rental", 12000, "n, 1 + n % 4000, 1 + n % 599, 1 + n % 2"),
        ("payment", 12000, "n, 1 + n % 599, 1 + n % 2, n, 2.99"),
    )
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        if server.flavour == "mysql":
            cur.execute("SET SESSION cte_max_recursion_depth = 20000")
        for statement in RENTAL_SCHEMA:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO rental_shop.staff VALUES (1, 'Mike', 3, REPEAT('p', 30000), 1),"
            " (2, 'Jon', 4, NULL, 2)"
        )
        cur.execute("INSERT INTO rental_shop.store VALUES (1, 1, 1), (2, 2, 2)")
        for table, count, values in fills:
            cur.execute(
                f"INSERT INTO rental_shop.{table} {numbers.format(count)} SELECT {values} FROM seq"
            )
        conn.commit()


@pytest.mark.parametrize("flavour", ["mysql"])
def test_parallel_overwrites_of_tables_related_by_keys_do_not_deadlock(
    plakar: Plakar, server_factory: MariaDBFactory
) -> None:
    """MySQL locks the tables a ``CREATE TABLE`` is related to by keys: four clients
    creating ``store``, ``staff``, ``rental`` and ``payment`` at once deadlocked
    (``ERROR 1213``) in about one restore of two.  Eight overwrite restores with
    ``jobs=4`` in a row now all complete, each table as the source's.  (MariaDB
    takes no such locks: the shop tests above run this there.)"""
    server = server_factory()
    make_rental_shop(server)
    snapshot = plakar.backup(uri(server, "rental_shop"), *flavour_options(server))
    source = checksums(server, "rental_shop")
    server.execute("UPDATE rental_shop.payment SET amount = 0 WHERE payment_id < 100")
    failed = []
    for run in range(8):
        proc = plakar.restore(
            snapshot,
            uri(server, "rental_shop"),
            *flavour_options(server, "overwrite=true", "jobs=4"),
            check=False,
        )
        if proc.returncode != 0:
            lines = (proc.stdout + proc.stderr).splitlines()
            failed.append(f"run {run + 1}: {[line for line in lines if 'ERROR' in line]}")
        else:
            assert "swapped in 7 table(s) in one statement" in proc.stderr, proc.stderr
            assert checksums(server, "rental_shop") == source, f"run {run + 1}"
        assert leftovers(server) == []
    assert failed == []
