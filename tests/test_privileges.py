"""End to end on MariaDB and on MySQL 9.7: the README's least-privilege accounts, as
written (its ``accounts`` block on MariaDB, ``mysql-accounts`` on MySQL), are enough
for a one-database and a whole-server backup and for restores (into a new name,
``overwrite=true``, ``users=true`` with a role as default role); without one of the
backup's privileges the backup is refused before the dump, in one line naming the
grant.  One server per test: the source is its own target."""

from __future__ import annotations

from pathlib import Path

from support.compare import describe_database, diff
from support.docs import marked_blocks

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import ROOT, Plakar

BLOCK = {"mariadb": "accounts", "mysql": "mysql-accounts"}
#: The backup's privileges whose absence is refused, and what the refusal names.
REFUSED = {
    "mariadb": {
        "TRIGGER": "TRIGGER ON a.*",
        "EVENT": "EVENT ON a.*",
        "SHOW VIEW": "SHOW VIEW ON a.*",
    },
    "mysql": {
        "TRIGGER": "TRIGGER ON a.*",
        "EVENT": "EVENT ON a.*",
        "SHOW VIEW": "SHOW VIEW ON a.*",
        "RELOAD": "RELOAD ON *.*",
        "REPLICATION CLIENT": "REPLICATION CLIENT ON *.*",
    },
}
ROWS = ("'plakar_backup'@'localhost'", "'plakar_backup'@'%'")


def defaults(tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / f"{user}.cnf"
    path.write_text(f'[client]\nuser={user}\npassword="{password}"\n')
    path.chmod(0o600)
    return f"defaults_file={path}"


def objects(server: MariaDBServer, database: str) -> list[int]:
    """How many functions, procedures, triggers, views and events ``database`` holds."""
    counts = []
    for sql in (
        "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s"
        " AND ROUTINE_TYPE = 'FUNCTION'",
        "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s"
        " AND ROUTINE_TYPE = 'PROCEDURE'",
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
        "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
        "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
    ):
        counts.append(int(server.query(sql, (database,))[0][0]))
    return counts


def test_least_privilege_accounts(plakar: Plakar, server: MariaDBServer, tmp_path: Path) -> None:
    mysql = server.flavour == "mysql"
    default_role = "SET DEFAULT ROLE reader " + ("TO" if mysql else "FOR") + " 'app'@'%'"
    for statement in (
        "CREATE DATABASE a",
        "CREATE TABLE a.t (id INT PRIMARY KEY, note VARCHAR(20))",
        "CREATE TABLE a.c (id INT PRIMARY KEY, tid INT, FOREIGN KEY (tid) REFERENCES a.t (id))",
        "INSERT INTO a.t VALUES (1, 'one'), (2, 'two')",
        "INSERT INTO a.c VALUES (1, 1)",
        "CREATE FUNCTION a.f() RETURNS INT DETERMINISTIC RETURN 1",
        "CREATE PROCEDURE a.p() SELECT 1",
        "CREATE EVENT a.e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
        "CREATE VIEW a.v AS SELECT id FROM a.t",
        "CREATE ROLE reader",
        "GRANT SELECT ON a.* TO reader",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw-7f2'",
        "GRANT reader TO 'app'@'%'",
        default_role,
    ):
        server.execute(statement)
    trigger = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.note = LOWER(NEW.note)"
    server.execute(trigger, database="a")
    script = tmp_path / "accounts.sql"
    script.write_text(marked_blocks(ROOT / "README.md")[BLOCK[server.flavour]].text)
    server.load_sql_file(script)
    tools = () if server.bin_dir is None else (f"bin_dir={server.bin_dir}",)
    backup = (defaults(tmp_path, "plakar_backup", "choose-a-backup-password"), *tools)
    restore = (defaults(tmp_path, "plakar_restore", "choose-a-restore-password"), *tools)
    at = f"{server.host}:{server.port}"

    one = plakar.backup(f"mysql://{at}/a", *backup)
    whole = plakar.backup(f"mysql://{at}", *backup)
    assert b"CREATE USER `app`@`%`" in plakar.cat(whole, "/server/users.sql")

    for privilege, named in REFUSED[server.flavour].items():
        server.execute(f"REVOKE {privilege} ON *.* FROM {', '.join(ROWS)}")
        flags = [word for option in backup for word in ("-o", option)]
        proc = plakar.at("backup", *flags, f"mysql://{at}/a", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, (privilege, output)
        refused = [line for line in output.splitlines() if "lacks what the backup needs" in line]
        assert len(refused) == 1 and named in refused[0], (privilege, output)
        assert "mysqldump:" not in output and "mariadb-dump:" not in output, output
        server.execute(f"GRANT {privilege} ON *.* TO {', '.join(ROWS)}")
    assert len(plakar.snapshots()) == 2

    # The restores: functions and triggers on a target that writes a binary log
    # take SUPER or this setting (the README says so); root's objects on MySQL
    # take SYSTEM_USER or definer=current.
    if mysql:
        server.execute("SET GLOBAL log_bin_trust_function_creators = ON")
    definer = ("definer=current",) if mysql else ()
    plakar.restore(one, f"mysql://{at}/a_copy", *restore, *definer, "verify=true")
    plakar.restore(one, f"mysql://{at}/a_copy", *restore, *definer, "overwrite=true")
    if not mysql:
        source = describe_database(server, "a", rename={"a": "a_copy"})
        assert diff(source, describe_database(server, "a_copy")) == []
    assert objects(server, "a_copy") == objects(server, "a") == [1, 1, 1, 1, 1]
    assert server.query("SELECT id, note FROM a_copy.t ORDER BY id") == [(1, "one"), (2, "two")]

    server.execute("DROP USER 'app'@'%'")
    server.execute("DROP ROLE reader")
    plakar.restore(f"{whole}:/server/users.sql", f"mysql://{at}", *restore, "users=true")
    with server.connect("a", user="app", password="app-pw-7f2") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_ROLE()")
        assert cur.fetchall()[0][0] in ("reader", "`reader`@`%`")
        cur.execute("SELECT COUNT(*) FROM a.t")
        assert cur.fetchall() == ((2,),)

    # Without CREATE USER, users=true is refused before anything is written; on
    # MySQL without ROLE_ADMIN, before any account changes.
    rows = ("'plakar_restore'@'localhost'", "'plakar_restore'@'%'")
    lacking = {
        "CREATE USER": "CREATE USER ON *.*",
        **({"ROLE_ADMIN": "ROLE_ADMIN ON *.*"} if mysql else {}),
    }
    for privilege, named in lacking.items():
        server.execute(f"REVOKE {privilege} ON *.* FROM {', '.join(rows)}")
        server.execute("DROP USER 'app'@'%'")
        server.execute("DROP ROLE reader")
        whole_or_users = whole if privilege == "CREATE USER" else f"{whole}:/server/users.sql"
        flags = [
            word
            for option in (*restore, "users=true", "overwrite=true", *definer)
            for word in ("-o", option)
        ]
        proc = plakar.at("restore", "-to", f"mysql://{at}", *flags, whole_or_users, check=False)
        output = proc.stdout + proc.stderr
        # plakar prints the one message twice: its error, and the file's KO line
        refused = {
            line[line.index("users=true:") :]
            for line in output.splitlines()
            if f"lacks {named}" in line
        }
        assert proc.returncode != 0 and len(refused) == 1, output
        assert (
            "nothing was restored" if privilege == "CREATE USER" else "no account was changed"
        ) in next(iter(refused)), output
        assert "plakar-mysql: loading" not in output or privilege != "CREATE USER", output
        assert server.query("SELECT COUNT(*) FROM mysql.user WHERE User IN ('app', 'reader')") == [
            (0,)
        ]
        server.execute(f"GRANT {privilege} ON *.* TO {', '.join(rows)} WITH GRANT OPTION")
        server.execute("CREATE ROLE reader")
        server.execute("CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw-7f2'")
