"""End to end, through the real plakar CLI, on MariaDB and on MySQL 9.7: ``users=true``
restores accounts, roles, default roles and grants so that each account logs in
with its password and holds its role; with ``overwrite=true`` it never loses an
account.  A restore that fails part-way - an authentication plugin the target
lacks, a grant on a table it does not have, a crafted ``users.sql`` - leaves
every account of the target as it was (password, plugin, grants, roles held and
default roles, the restoring account's included), and says so on one line that
holds no password hash nor any piece of one; a restore that succeeds gives
accounts that keep a role which is created again their membership back.

Each test takes one server: it is backed up as the source, then its accounts are
changed into the target's, so that one MySQL start (5 s) serves both sides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.compare import AccountDescription, describe_accounts, diff_accounts
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

Accounts = tuple[dict[str, AccountDescription], list[tuple[Any, ...]]]


def options(server: MariaDBServer, *more: str) -> tuple[str, ...]:
    """The root password, this flavour's client tools, and ``more``."""
    tools = () if server.bin_dir is None else (f"bin_dir={server.bin_dir}",)
    return (password(server), *tools, *more)


def role(server: MariaDBServer, name: str) -> str:
    """A role as :func:`describe_accounts` names it: MySQL's roles are accounts."""
    return f"'{name}'@'%'" if server.flavour == "mysql" else f"'{name}'"


def set_default_role(server: MariaDBServer, name: str, account: str) -> str:
    return f"SET DEFAULT ROLE {name} {'TO' if server.flavour == 'mysql' else 'FOR'} {account}"


def every_account(server: MariaDBServer) -> Accounts:
    """SHOW CREATE USER, SHOW GRANTS and the default roles of every account, root's
    included, and every role membership (mysql.roles_mapping; MySQL's role_edges)."""
    accounts = describe_accounts(server, include_server_accounts=True)
    table = "role_edges" if server.flavour == "mysql" else "roles_mapping"
    mapping = server.query(f"SELECT * FROM mysql.{table} ORDER BY 1, 2, 3, 4")
    return dict(accounts), mapping


def memberships(server: MariaDBServer, mapping: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """(grantee's user, role, the row) of each row of :func:`every_account`'s mapping."""
    if server.flavour == "mysql":  # FROM_HOST, FROM_USER (the role), TO_HOST, TO_USER
        return [(row[3], row[1], row) for row in mapping]
    return [(row[1], row[2], row) for row in mapping]  # Host, User, Role, Admin_option


def assert_unchanged(server: MariaDBServer, before: Accounts) -> None:
    accounts, mapping = every_account(server)
    assert diff_accounts(before[0], accounts) == []
    assert mapping == before[1]


def secrets_of(server: MariaDBServer) -> list[str]:
    """Every password hash the server holds, as text and, for MySQL's binary
    hashes, as the hex that SHOW CREATE USER prints."""
    rows = server.query(
        "SELECT authentication_string, HEX(authentication_string) FROM mysql.user "
        "WHERE authentication_string <> ''"
    )
    found = []
    for text, hexa in rows:
        found += [str(text), str(hexa)] if server.flavour == "mysql" else [str(text)]
    return found


def pieces(secrets: list[str], size: int = 8) -> set[str]:
    """Every run of ``size`` characters of ``secrets``: no message may show one."""
    return {s[i : i + size] for s in secrets for i in range(max(len(s) - size + 1, 0))}


def failed_restore(plakar: Plakar, source: str, target: MariaDBServer, forbidden: list[str]) -> str:
    """Restore ``source`` with users=true and overwrite=true, which must fail; the
    one line saying why, after checking that no secret, nor any 8 characters of
    one, is in plakar's output."""
    proc = plakar.restore(
        source, uri(target), *options(target, "users=true", "overwrite=true"), check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    leaked = [piece for piece in pieces(forbidden) if piece in output]
    assert leaked == [], (leaked, output)
    lines = [line for line in output.splitlines() if "restoring the accounts failed" in line]
    assert len(lines) == 1, output
    return lines[0]


def make_source(server: MariaDBServer) -> None:
    """Roles granted to roles and to accounts, default roles, column grants."""
    for statement in (
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY, secret VARCHAR(10))",
        "CREATE ROLE reader",
        "GRANT SELECT ON shop.* TO reader",
        "CREATE ROLE writer",
        "GRANT reader TO writer",
        "GRANT INSERT ON shop.* TO writer",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'source-app-pw'",
        "GRANT writer TO 'app'@'%'",
        set_default_role(server, "writer", "'app'@'%'"),
        "GRANT SELECT ON mysql.* TO 'app'@'%'",
        "CREATE USER 'zed'@'%' IDENTIFIED BY 'source-zed-pw'",
        "GRANT SELECT (id) ON shop.t TO 'zed'@'%'",
        "CREATE ROLE ops",
        "GRANT SELECT ON shop.* TO ops",
    ):
        server.execute(statement)


def into_target(server: MariaDBServer) -> None:
    """The source's accounts replaced by the target's: the same names, other
    passwords and grants; ``reader`` held by ``keeper`` (with its admin option, as
    its default role) and by ``app`` (its default role too), not by the restoring
    account, which holds ``ops``; no ``shop`` database."""
    mysql = server.flavour == "mysql"
    for statement in (
        "DROP DATABASE shop",
        "DROP USER 'app'@'%', 'zed'@'%'",
        "DROP ROLE reader, writer, ops",
        "CREATE USER 'keeper'@'%' IDENTIFIED BY 'target-keeper-pw'",
        "CREATE ROLE reader",
        "GRANT SELECT ON mysql.db TO reader",
        "GRANT reader TO 'keeper'@'%' WITH ADMIN OPTION",
        set_default_role(server, "reader", "'keeper'@'%'"),
        "CREATE USER 'app'@'%' IDENTIFIED BY 'target-app-pw' WITH MAX_QUERIES_PER_HOUR 7",
        "GRANT reader TO 'app'@'%'",
        set_default_role(server, "reader", "'app'@'%'"),
        "GRANT PROCESS ON *.* TO 'app'@'%'",
        # root neither holds nor administers reader (MariaDB made its creator admin)
        *(() if mysql else ("REVOKE reader FROM CURRENT_USER",)),
        "CREATE ROLE ops",
        "GRANT RELOAD ON *.* TO ops",
        "GRANT ops TO CURRENT_USER",  # the restoring account's own role
        "CREATE USER 'zed'@'localhost' IDENTIFIED BY 'target-zed-pw'",
    ):
        server.execute(statement)


def test_a_restore_failing_part_way_leaves_every_account_as_it_was(
    plakar: Plakar, server: MariaDBServer
) -> None:
    make_source(server)
    snapshot = plakar.backup(uri(server), *options(server))
    users = f"{snapshot}:/server/users.sql"
    expected = describe_accounts(server)
    source_secrets = secrets_of(server)
    into_target(server)
    forbidden = [
        *source_secrets,
        *secrets_of(server),
        *("source-app-pw", "source-zed-pw", "target-app-pw", "target-keeper-pw"),
    ]
    before = every_account(server)

    # The target has no shop.t: zed's column grant fails once reader, writer and app
    # have been dropped, created and granted again.  Everything is put back, MySQL's
    # default roles included (set once the roles they name exist again).
    line = failed_restore(plakar, users, server, forbidden)
    # MariaDB: (1146) no such table; MySQL: (1049) no such database
    assert re.search(
        r"account `zed`@`%` could not be granted its privileges: \((1146|1049)\)", line
    )
    assert "every account of the target was put back as it was" in line, line
    assert_unchanged(server, before)
    # The restoring account still works, and so do the passwords that were put back.
    server.connect(user="app", password="target-app-pw").close()
    server.connect(user="keeper", password="target-keeper-pw").close()

    # With shop.t there, the same file restores exactly; the accounts that keep
    # reader (keeper, with its admin option and default role, and root) hold it again.
    server.execute("CREATE DATABASE shop")
    server.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, secret VARCHAR(10))")
    proc = plakar.restore(users, uri(server), *options(server, "users=true", "overwrite=true"))
    ops = "`ops`@`%`" if server.flavour == "mysql" else "`ops`"
    assert f"kept as they are on the target: {ops}, `root`@`127.0.0.1`" in proc.stderr
    restored, mapping = every_account(server)
    for name in ("'app'@'%'", "'zed'@'%'", role(server, "reader"), role(server, "writer")):
        assert diff_accounts({name: expected[name]}, {name: restored[name]}) == []
    for name in ("'keeper'@'%'", "'zed'@'localhost'", role(server, "ops")):
        assert restored[name] == before[0][name], name
    # root holds ops as it did, and not reader, which it re-created; on MariaDB it
    # is the admin of writer, which is new to the target and which it created.
    me = "'root'@'127.0.0.1'"
    gained = set(restored[me].grants) - set(before[0][me].grants)
    admin = {"GRANT `writer` TO `root`@`127.0.0.1` WITH ADMIN OPTION"}
    assert gained == (set() if server.flavour == "mysql" else admin), gained
    assert set(before[0][me].grants) <= set(restored[me].grants)
    kept = [row for row in memberships(server, mapping) if row[0] in ("keeper", "root")]
    assert [row for row in kept if row[1] != "writer"] == [
        row for row in memberships(server, before[1]) if row[0] in ("keeper", "root")
    ], mapping
    with server.connect(user="app", password="source-app-pw") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_ROLE()")
        assert cur.fetchall()[0][0] in ("writer", "`writer`@`%`")


def test_an_account_the_target_cannot_create_changes_nothing(
    plakar: Plakar, server: MariaDBServer, tmp_path: Path
) -> None:
    """MariaDB: an ``ed25519`` account, the plugin unloaded on the target.  MySQL 9.7
    has no ``mysql_native_password`` any more: an account of an 8.0 server using it
    (its ``users.sql`` line as 8.0 writes it) cannot be created."""
    make_source(server)
    mysql = server.flavour == "mysql"
    if mysql:
        server.execute("CREATE USER 'edd'@'%' IDENTIFIED BY 'source-edd-pw'")
    else:
        server.execute("INSTALL SONAME 'auth_ed25519'")
        server.execute(
            "CREATE USER 'edd'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('source-edd-pw')"
        )
    server.execute("GRANT SELECT ON shop.* TO 'edd'@'%'")
    snapshot = plakar.backup(uri(server), *options(server))
    source_secrets = secrets_of(server)
    native = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"  # PASSWORD('password'), as 8.0 shows
    if mysql:  # the same snapshot, as an 8.0 server with a native-password account wrote it
        files = plakar.files(snapshot)
        users = files["/server/users.sql"]
        create = re.compile(
            rb"CREATE USER `edd`@`%` IDENTIFIED WITH 'caching_sha2_password' AS \S+"
        )
        assert create.search(users), users
        files["/server/users.sql"] = create.sub(
            b"CREATE USER `edd`@`%` IDENTIFIED WITH 'mysql_native_password' AS '"
            + native.encode()
            + b"'",
            users,
            1,
        )
        for name, content in files.items():
            path = tmp_path / "eight" / name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        snapshot = f"{plakar.backup(str(tmp_path / 'eight'))}:{tmp_path / 'eight'}"
        plugin = "mysql_native_password"
    else:
        assert b"ed25519" in plakar.cat(snapshot, "/server/users.sql")
        server.execute("DROP USER 'edd'@'%'")
        server.execute("UNINSTALL SONAME 'auth_ed25519'")
        plugin = "ed25519"
    into_target(server)
    server.execute("DROP USER IF EXISTS 'edd'@'%'")
    server.execute("CREATE USER 'edd'@'%' IDENTIFIED BY 'target-edd-pw'")
    forbidden = [*source_secrets, *secrets_of(server), native, "source-edd-pw", "target-edd-pw"]
    before = every_account(server)

    # A whole-server restore: the tables load, then the accounts are refused whole.
    line = failed_restore(plakar, snapshot, server, forbidden)
    assert f"account `edd`@`%` cannot be created: (1524) Plugin '{plugin}' is not loaded" in line
    assert line.endswith("; no account was changed"), line
    assert_unchanged(server, before)
    server.connect(user="edd", password="target-edd-pw").close()


def test_a_crafted_users_file_is_refused_before_any_account_changes(
    plakar: Plakar, server: MariaDBServer, tmp_path: Path
) -> None:
    make_source(server)
    snapshot = plakar.backup(uri(server), *options(server))
    source_secrets = secrets_of(server)
    original = plakar.files(snapshot)
    into_target(server)
    before = every_account(server)
    crafted = {
        # a grant to another account, hidden after the one it is filed under
        "GRANT SELECT ON `mysql`.* TO `app`@`%`": "GRANT ALL ON *.* TO `app`@`%`, `keeper`@`%`",
        # a statement that is not a CREATE USER at all
        "CREATE USER `zed`@`%`": "DROP USER `keeper`@`%`, `zed`@`%`",
    }
    for old, new in crafted.items():
        tree = tmp_path / f"crafted-{len(new)}"
        for name, content in original.items():
            path = tree / name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == "/server/users.sql":
                assert old.encode() in content
            path.write_bytes(content.replace(old.encode(), new.encode(), 1))
        bad = plakar.backup(str(tree))
        line = failed_restore(plakar, f"{bad}:{tree}/server/users.sql", server, source_secrets)
        assert "/server/users.sql: a statement filed under" in line, line
        assert "no account was changed" in line, line
        assert_unchanged(server, before)
