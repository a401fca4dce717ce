"""End to end: the packaged integration, driven through the real plakar CLI, against
private MariaDB servers.  Sources and restored copies are compared object by
object (row counts and digests of every row, definitions of views, routines,
triggers and events), never by a row count alone."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import MariaDBFactory
from support import shop
from support.compare import describe_database, describe_server, diff
from support.scripts import executable

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.plakar import Plakar

AWKWARD_DB = "we`ird db ü'\""
AWKWARD_TABLE = "ta ble'\"`x"


def uri(server: MariaDBServer, database: str = "") -> str:
    return f"mysql://root@{server.host}:{server.port}/{quote(database, safe='')}"


def password(server: MariaDBServer) -> str:
    return f"password={server.root_password}"


def fill_awkward(server: MariaDBServer) -> None:
    db, table = quote_identifier(AWKWARD_DB), quote_identifier(AWKWARD_TABLE)
    server.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    server.execute(
        f"CREATE TABLE {db}.{table} (id INT PRIMARY KEY, b BLOB, t TEXT, j JSON, d DATETIME(6))"
    )
    server.execute(
        f"INSERT INTO {db}.{table} VALUES (1, %s, 'line\\nbreak ; -- not a comment', "
        "'{\"k\": [1, 2]}', '2038-01-19 03:14:07.999999'), (2, NULL, '', NULL, NULL),"
        " (3, '', 'NULL', 'null', '1000-01-01 00:00:00')",
        (bytes(range(256)),),
    )
    server.execute(f"CREATE VIEW {db}.`v``iew` AS SELECT id, t FROM {db}.{table} WHERE id > 1")


def test_shop_single_database_into_a_renamed_database(
    plakar: Plakar, shop_server: MariaDBServer
) -> None:
    snapshot = plakar.backup(uri(shop_server, "shop"), password(shop_server))
    names = {entry.name for entry in plakar.ls(snapshot)}
    assert names == {"catalog.json", "databases", "manifest.json"}
    layout = {e.name for e in plakar.ls(snapshot, "/databases/shop")}
    assert layout == {"schema.sql", "tables", "views.sql", "routines.sql", "events.sql"}
    tables = {e.name for e in plakar.ls(snapshot, "/databases/shop/tables")}
    assert tables == {f"{name}.sql" for name in shop.TABLES}
    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    assert manifest["scope"] == "database" and manifest["flavour"] == "mariadb"
    assert [d["name"] for d in manifest["databases"]] == ["shop"]
    country_file = plakar.cat(snapshot, "/databases/shop/tables/country.sql")
    assert manifest["files"]["/databases/shop/tables/country.sql"] == {
        "kind": "table",
        "database": "shop",
        "name": "country",
        "sha256": hashlib.sha256(country_file).hexdigest(),  # what a drill checks
    }
    country = next(t for t in manifest["databases"][0]["tables"] if t["name"] == "country")
    assert country["rows"] == 12  # counted in the dump, exactly
    assert isinstance(manifest["grants"]["shop"], list)
    assert shop_server.root_password not in json.dumps(manifest)

    proc = plakar.restore(snapshot, uri(shop_server, "shop_copy"), password(shop_server))
    assert "loaded table shop_copy.country" in proc.stderr and "(13/13)" in proc.stderr
    try:
        source = describe_database(shop_server, "shop", rename={"shop": "shop_copy"})
        copy = describe_database(shop_server, "shop_copy")
        assert len(source.tables) == len(shop.TABLES)
        assert diff(source, copy) == []

        # Restoring again would overwrite: refused, and nothing changes.
        shop_server.execute("UPDATE shop_copy.country SET name = 'CHANGED' WHERE country_id = 1")
        proc = plakar.at(
            "restore",
            "-to",
            uri(shop_server, "shop_copy"),
            "-o",
            password(shop_server),
            snapshot,
            check=False,
        )
        assert "already holds audit_log, category, country" in proc.stdout + proc.stderr
        assert proc.returncode != 0
        changed = "SELECT name FROM shop_copy.country WHERE country_id = 1"
        assert shop_server.query(changed)[0][0] == "CHANGED"

        plakar.restore(
            snapshot, uri(shop_server, "shop_copy"), password(shop_server), "overwrite=true"
        )
        assert diff(source, describe_database(shop_server, "shop_copy")) == []
    finally:
        shop_server.execute("DROP DATABASE IF EXISTS shop_copy")


def test_full_server_into_a_fresh_server(plakar: Plakar, mariadb_factory: MariaDBFactory) -> None:
    source = mariadb_factory(extra_args=["--log-bin=binlog", "--server-id=1"])
    shop.load_shop(source)
    fill_awkward(source)
    source.execute("CREATE DATABASE empty_one")
    snapshot = plakar.backup(uri(source), password(source))

    manifest = json.loads(plakar.cat(snapshot, "/manifest.json"))
    assert manifest["scope"] == "server"
    assert sorted(d["name"] for d in manifest["databases"]) == sorted(
        ["shop", AWKWARD_DB, "empty_one"]
    )
    binlog = manifest["binlog"]
    assert binlog["file"].startswith("binlog.") and binlog["position"] > 0 and binlog["gtid"]

    target = mariadb_factory()
    plakar.restore(snapshot, uri(target), password(target))
    databases = ["shop", AWKWARD_DB, "empty_one"]
    before, after = describe_server(source, databases), describe_server(target, databases)
    for name in databases:
        assert diff(before[name], after[name]) == [], name


def backup_in_the_middle_of_a_dump(plakar: Plakar, server: MariaDBServer) -> subprocess.Popen[str]:
    """Start backing up a ~250 MB database; return once the dump is reading rows."""
    server.execute("CREATE DATABASE big")
    server.execute("CREATE TABLE big.t (id INT PRIMARY KEY, pad VARCHAR(255))")
    server.execute(
        "INSERT INTO t SELECT seq, REPEAT(MD5(seq), 7) FROM seq_1_to_1000000", database="big"
    )
    backup = subprocess.Popen(
        [
            str(plakar.binary),
            "at",
            str(plakar.store),
            "backup",
            "-o",
            password(server),
            uri(server, "big"),
        ],
        env=plakar.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = server.query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE ID <> CONNECTION_ID() AND INFO LIKE %s",
            ("SELECT /*!40001 SQL_NO_CACHE */%",),
        )[0][0]
        if running:
            return backup
        time.sleep(0.05)
    backup.kill()
    pytest.fail("the dump never started")


def test_server_killed_in_the_middle_of_a_dump_leaves_no_snapshot(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    server = mariadb_factory()
    backup = backup_in_the_middle_of_a_dump(plakar, server)
    server.kill()
    output, _ = backup.communicate(timeout=120)
    assert backup.returncode != 0, output
    assert "mariadb-dump" in output and ("Lost connection" in output or "gone away" in output), (
        output
    )
    assert plakar.snapshots() == []
    plakar.check()


def test_dump_without_completion_line_fails(
    plakar: Plakar, shop_server: MariaDBServer, tmp_path: Path
) -> None:
    """A dump tool that exits 0 but whose output was cut short is caught."""
    fake = tmp_path / "bin"
    executable(
        fake / "mariadb-dump",
        "#!/bin/bash\n"
        'if [ "$1" = --version ]; then exec /usr/bin/mariadb-dump --version; fi\n'
        '/usr/bin/mariadb-dump "$@" | head -c 100000\n'
        "exit 0\n",
    )
    proc = plakar.at(
        "backup",
        "-o",
        password(shop_server),
        "-o",
        f"bin_dir={fake}",
        uri(shop_server, "shop"),
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "without '-- Dump completed'" in output
    assert plakar.snapshots() == []


def test_wrong_password_says_so(plakar: Plakar, shop_server: MariaDBServer) -> None:
    proc = plakar.at(
        "backup", "-o", "password=not-the-password", uri(shop_server, "shop"), check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "access denied (wrong user or password)" in output
    assert plakar.snapshots() == []


BACKUP_GRANTS = (
    "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO {user}",
    "GRANT SELECT ON `mysql`.`proc` TO {user}",
)
RESTORE_GRANTS = (
    "GRANT ALL PRIVILEGES ON `shop_least`.* TO {user}",
    "GRANT SET USER ON *.* TO {user}",
)


def make_user(server: MariaDBServer, name: str, grants: tuple[str, ...]) -> str:
    user = f"'{name}'@'%'"
    server.execute(f"CREATE USER {user} IDENTIFIED BY 'pw-{name}'")
    for grant in grants:
        server.execute(grant.format(user=user))
    return f"mysql://{name}@{server.host}:{server.port}"


def test_least_privilege_backup_and_restore(plakar: Plakar, shop_server: MariaDBServer) -> None:
    """The README's minimal grants are exactly enough; a missing one is named."""
    backup_uri = make_user(shop_server, "least_backup", BACKUP_GRANTS)
    restore_uri = make_user(shop_server, "least_restore", RESTORE_GRANTS)
    without_trigger = make_user(
        shop_server,
        "no_trigger",
        (
            "GRANT SELECT, SHOW VIEW, EVENT ON `shop`.* TO {user}",
            "GRANT SELECT ON `mysql`.`proc` TO {user}",
        ),
    )
    try:
        proc = plakar.at(
            "backup", "-o", "password=pw-no_trigger", f"{without_trigger}/shop", check=False
        )
        assert proc.returncode != 0
        assert "TRIGGER ON shop.*" in proc.stdout + proc.stderr

        snapshot = plakar.backup(f"{backup_uri}/shop", "password=pw-least_backup")
        plakar.restore(snapshot, f"{restore_uri}/shop_least", "password=pw-least_restore")
        source = describe_database(shop_server, "shop", rename={"shop": "shop_least"})
        assert diff(source, describe_database(shop_server, "shop_least")) == []
    finally:
        shop_server.execute("DROP DATABASE IF EXISTS shop_least")
        for name in ("least_backup", "least_restore", "no_trigger"):
            shop_server.execute(f"DROP USER IF EXISTS '{name}'@'%'")


SERVER_BACKUP_GRANTS = ("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO {user}",)


def test_least_privilege_whole_server_backup(
    plakar: Plakar, mariadb: MariaDBServer, mariadb_factory: MariaDBFactory
) -> None:
    """The README's grants for a whole-server backup, accounts included, are enough."""
    for statement in (
        "CREATE DATABASE a",
        "CREATE TABLE a.t (id INT PRIMARY KEY)",
        "INSERT INTO a.t VALUES (1)",
        "CREATE TRIGGER a.tr BEFORE INSERT ON a.t FOR EACH ROW SET NEW.id = NEW.id",
        "CREATE FUNCTION a.f() RETURNS INT DETERMINISTIC RETURN 1",
        "CREATE EVENT a.e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
        "CREATE DATABASE b",
        "CREATE VIEW b.v AS SELECT id FROM a.t",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
        "GRANT SELECT ON b.* TO 'app'@'%'",
    ):
        mariadb.execute(statement)
    backup_uri = make_user(mariadb, "least_server", SERVER_BACKUP_GRANTS)
    snapshot = plakar.backup(backup_uri, "password=pw-least_server")
    users = plakar.cat(snapshot, "/server/users.sql")
    assert b"CREATE USER `app`@`%`" in users and b"GRANT SELECT ON `b`.* TO `app`@`%`" in users

    target = mariadb_factory()
    plakar.restore(snapshot, uri(target), password(target), "users=true")
    assert diff(describe_database(mariadb, "a"), describe_database(target, "a")) == []
    assert diff(describe_database(mariadb, "b"), describe_database(target, "b")) == []
    grants = target.query("SHOW GRANTS FOR 'app'@'%'")
    assert ("GRANT SELECT ON `b`.* TO `app`@`%`",) in grants


def test_snapshot_in_the_official_integrations_layout(
    plakar: Plakar, shop_server: MariaDBServer, tmp_path: Path
) -> None:
    """The official integration stores `/<db>.sql` (a plain dump) with its own
    `/manifest.json`; such a snapshot, made here with Plakar's fs importer,
    restores into the database named after the file or given in the URI."""
    layout = tmp_path / "official"
    layout.mkdir()
    (layout / "manifest.json").write_text('{"version": 1, "connector": "mariadb"}\n')
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{shop_server.root_password}"\n')
    with (layout / "shop.sql").open("wb") as out:
        subprocess.run(
            [
                "mariadb-dump",
                f"--defaults-file={defaults}",
                "-h",
                shop_server.host,
                "-P",
                str(shop_server.port),
                "--single-transaction",
                "--routines",
                "--events",
                "shop",
            ],
            stdout=out,
            check=True,
        )
    snapshot = plakar.backup(str(layout))
    target = uri(shop_server, "shop_official")
    # A single-database dump has no CREATE DATABASE, so its character set is not
    # in the snapshot: the user creates the (empty) database with it first.
    shop_server.execute(
        "CREATE DATABASE shop_official CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    try:
        plakar.restore(f"{snapshot}:{layout}/", target, password(shop_server))
        source = describe_database(shop_server, "shop", rename={"shop": "shop_official"})
        assert diff(source, describe_database(shop_server, "shop_official")) == []
        # A plain dump's tables are unknown: any table in the target is a conflict.
        proc = plakar.at(
            "restore",
            "-to",
            target,
            "-o",
            password(shop_server),
            f"{snapshot}:{layout}/",
            check=False,
        )
        assert proc.returncode != 0 and "already holds" in proc.stdout + proc.stderr
    finally:
        shop_server.execute("DROP DATABASE IF EXISTS shop_official")


def test_failing_statement_fails_the_restore_unless_forced(
    plakar: Plakar, mariadb: MariaDBServer, tmp_path: Path
) -> None:
    """The server's error and its line reach the user; force=true loads the rest."""
    layout = tmp_path / "plain"
    layout.mkdir()
    (layout / "broken.sql").write_text(
        "CREATE TABLE t (id INT PRIMARY KEY);\n"
        "INSERT INTO t VALUES (1);\n"
        "INSERT INTO no_such_table VALUES (2);\n"
        "INSERT INTO t VALUES (3);\n"
    )
    snapshot = plakar.backup(str(layout))
    proc = plakar.at(
        "restore",
        "-to",
        uri(mariadb, "broken"),
        "-o",
        password(mariadb),
        f"{snapshot}:{layout}/",
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "ERROR 1146" in output and "at line 3" in output and "no_such_table" in output
    assert mariadb.query("SELECT id FROM broken.t") == [(1,)]

    mariadb.execute("DROP DATABASE broken")
    plakar.restore(f"{snapshot}:{layout}/", uri(mariadb, "broken"), password(mariadb), "force=true")
    assert mariadb.query("SELECT id FROM broken.t ORDER BY id") == [(1,), (3,)]


def watch_processes(stop: threading.Event, seen: list[tuple[str, bytes, bytes]]) -> None:
    """Record the argv and environment of every process while ``stop`` is unset."""
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            seen.append((proc.name, cmdline, environ))
        time.sleep(0.01)


def test_password_never_in_argv_environment_output_or_snapshot(
    plakar: Plakar, shop_server: MariaDBServer, tmp_path: Path
) -> None:
    """With the password in a defaults_file, no process sees it in its argv or
    environment (the dump tool and the client included), and neither plakar's
    output nor the snapshot holds it."""
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{shop_server.root_password}"\n')
    defaults.chmod(0o600)
    secret = shop_server.root_password.encode()
    seen: list[tuple[str, bytes, bytes]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_processes, args=(stop, seen))
    watcher.start()
    try:
        snapshot = plakar.backup(
            f"mysql://{shop_server.host}:{shop_server.port}/shop", f"defaults_file={defaults}"
        )
        restored = plakar.restore(
            snapshot,
            f"mysql://{shop_server.host}:{shop_server.port}/shop_secret",
            f"defaults_file={defaults}",
        )
    finally:
        stop.set()
        watcher.join()
        shop_server.execute("DROP DATABASE IF EXISTS shop_secret")
    tools = [argv for _, argv, _ in seen if b"mariadb-dump" in argv or b"/mariadb\x00" in argv]
    assert any(b"mariadb-dump" in argv for argv in tools), "the dump tool was never seen"
    assert any(b"--defaults-file=/dev/fd/" in argv for argv in tools)
    leaks = [(pid, argv) for pid, argv, env in seen if secret in argv or secret in env]
    assert leaks == []
    assert secret.decode() not in restored.stdout + restored.stderr
    entries = plakar.ls(snapshot, recursive=True)
    assert len(entries) > 20
    assert all(secret.decode() not in entry.name for entry in entries)
    files = plakar.files(snapshot)
    assert len(files) == sum(not entry.is_dir for entry in entries)
    assert [name for name, content in files.items() if secret in content] == []


def test_table_filters(plakar: Plakar, shop_server: MariaDBServer) -> None:
    """exclude_tables leaves exactly that table out; everything else round-trips."""
    snapshot = plakar.backup(
        uri(shop_server, "shop"), password(shop_server), "exclude_tables=shop.product_i*"
    )
    tables = {e.name for e in plakar.ls(snapshot, "/databases/shop/tables")}
    assert "product.sql" in tables and "product_image.sql" not in tables
    assert len(tables) == len(shop.TABLES) - 1
    proc = plakar.at(
        "backup",
        "-o",
        password(shop_server),
        "-o",
        "tables=shop.nothing*",
        uri(shop_server, "shop"),
        check=False,
    )
    assert proc.returncode != 0 and "matches no table" in proc.stdout + proc.stderr

    plakar.restore(snapshot, uri(shop_server, "shop_filtered"), password(shop_server))
    try:
        source = describe_database(shop_server, "shop", rename={"shop": "shop_filtered"})
        copy = describe_database(shop_server, "shop_filtered")
        assert set(source.tables) - set(copy.tables) == {"product_image"}
        assert diff(source, copy) == [d for d in diff(source, copy) if "product_image" in d]
        assert diff(source, copy)  # the difference is reported, and only for product_image
    finally:
        shop_server.execute("DROP DATABASE IF EXISTS shop_filtered")


def test_cancelled_backup_leaves_no_snapshot_and_no_process(
    plakar: Plakar, mariadb: MariaDBServer
) -> None:
    """Ctrl-C in the middle of a dump: no snapshot, the dump tool and the plugin
    are gone, nothing is left in the temporary directory, the store is sound."""
    leftovers_before = set(Path("/tmp").glob("_MEI*"))
    backup = backup_in_the_middle_of_a_dump(plakar, mariadb)

    def ours(argv: bytes) -> bool:  # the plugin (installed under plakar's cache) or its dump
        return str(plakar.cache_home).encode() in argv or (
            b"mariadb-dump" in argv and argv.endswith(b"\x00--\x00big\x00")
        )

    running = [_cmdline(p) for p in Path("/proc").iterdir() if p.name.isdigit()]
    assert any(b"mariadb-dump" in argv and ours(argv) for argv in running), "no dump seen"
    backup.send_signal(signal.SIGINT)
    output, _ = backup.communicate(timeout=120)
    assert backup.returncode != 0, output
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and ours(_cmdline(p))]
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, [_cmdline(p) for p in alive]
    assert set(Path("/tmp").glob("_MEI*")) <= leftovers_before
    assert plakar.snapshots() == []
    plakar.check()


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
