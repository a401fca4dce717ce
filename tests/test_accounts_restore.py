"""End to end, through the real plakar CLI: ``users=true`` with ``overwrite=true``
never loses an account.  A restore that fails part-way - an authentication plugin
the target lacks, a grant on a table it does not have, a crafted ``users.sql`` -
leaves every account of the target as it was (password, plugin, grants, roles
held and default roles, the restoring account's included), and says so on one
line that holds no password hash; a restore that succeeds gives accounts that
keep a role which is created again their membership back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import MariaDBFactory
from support.compare import AccountDescription, describe_accounts, diff_accounts
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar

Accounts = tuple[dict[str, AccountDescription], list[tuple[Any, ...]]]


def every_account(server: MariaDBServer) -> Accounts:
    """SHOW CREATE USER, SHOW GRANTS and the default role of every account, root's
    included, and every role membership (mysql.roles_mapping)."""
    accounts = describe_accounts(server, include_server_accounts=True)
    mapping = server.query("SELECT * FROM mysql.roles_mapping ORDER BY 1, 2, 3")
    return dict(accounts), mapping


def assert_unchanged(server: MariaDBServer, before: Accounts) -> None:
    accounts, mapping = every_account(server)
    assert diff_accounts(before[0], accounts) == []
    assert mapping == before[1]


def secrets_of(server: MariaDBServer) -> list[str]:
    """Every password hash the server holds."""
    rows = server.query("SELECT authentication_string FROM mysql.user WHERE authentication_string")
    return [row[0] for row in rows if row[0]]


def failed_restore(plakar: Plakar, source: str, target: MariaDBServer, forbidden: list[str]) -> str:
    """Restore ``source`` with users=true and overwrite=true, which must fail; the
    one line saying why, after checking that no secret is in plakar's output."""
    proc = plakar.restore(
        source, uri(target), password(target), "users=true", "overwrite=true", check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    for secret in forbidden:
        assert secret not in output, (secret, output)
    lines = [line for line in output.splitlines() if "restoring the accounts failed" in line]
    assert len(lines) == 1, output
    return lines[0]


def source_with_accounts(mariadb_factory: MariaDBFactory) -> MariaDBServer:
    """Roles granted to roles and to accounts, default roles, column grants."""
    source = mariadb_factory()
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
        "SET DEFAULT ROLE writer FOR 'app'@'%'",
        "GRANT SELECT ON mysql.* TO 'app'@'%'",
        "CREATE USER 'zed'@'%' IDENTIFIED BY 'source-zed-pw'",
        "GRANT SELECT (id) ON shop.t TO 'zed'@'%'",
        "CREATE ROLE ops",
        "GRANT SELECT ON shop.* TO ops",
    ):
        source.execute(statement)
    return source


def target_with_accounts(mariadb_factory: MariaDBFactory) -> MariaDBServer:
    """The same names, other passwords and grants; ``reader`` held by ``keeper``
    (with its admin option, as its default role), not by the restoring account,
    which holds ``ops``."""
    target = mariadb_factory()
    for statement in (
        "CREATE USER 'keeper'@'%' IDENTIFIED BY 'target-keeper-pw'",
        "CREATE ROLE reader",
        "GRANT SELECT ON mysql.db TO reader",
        "GRANT reader TO 'keeper'@'%' WITH ADMIN OPTION",
        "SET DEFAULT ROLE reader FOR 'keeper'@'%'",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'target-app-pw' WITH MAX_QUERIES_PER_HOUR 7",
        "GRANT reader TO 'app'@'%'",
        "GRANT PROCESS ON *.* TO 'app'@'%'",
        "REVOKE reader FROM CURRENT_USER",  # root neither holds nor administers reader
        "CREATE ROLE ops",
        "GRANT RELOAD ON *.* TO ops",
        "GRANT ops TO CURRENT_USER",  # the restoring account's own role
        "CREATE USER 'zed'@'localhost' IDENTIFIED BY 'target-zed-pw'",
    ):
        target.execute(statement)
    return target


def test_a_restore_failing_part_way_leaves_every_account_as_it_was(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    source = source_with_accounts(mariadb_factory)
    snapshot = plakar.backup(uri(source), password(source))
    target = target_with_accounts(mariadb_factory)
    forbidden = [
        *secrets_of(source),
        *secrets_of(target),
        *("source-app-pw", "source-zed-pw", "target-app-pw", "target-keeper-pw"),
    ]
    before = every_account(target)

    # The target has no shop.t: zed's column grant fails once reader, writer and app
    # have been dropped, created and granted again.  Everything is put back.
    line = failed_restore(plakar, f"{snapshot}:/server/users.sql", target, forbidden)
    assert "account `zed`@`%` could not be granted its privileges: (1146)" in line, line
    assert "every account of the target was put back as it was" in line, line
    assert_unchanged(target, before)
    # The restoring account still works, and so do the passwords that were put back.
    target.connect(user="app", password="target-app-pw").close()
    target.connect(user="keeper", password="target-keeper-pw").close()

    # With shop.t there, the same file restores exactly; the accounts that keep
    # reader (keeper, with its admin option and default role, and root) hold it again.
    target.execute("CREATE DATABASE shop")
    target.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, secret VARCHAR(10))")
    proc = plakar.restore(
        f"{snapshot}:/server/users.sql",
        uri(target),
        password(target),
        "users=true",
        "overwrite=true",
    )
    assert "kept as they are on the target: `ops`, `root`@`127.0.0.1`" in proc.stderr
    restored, mapping = every_account(target)
    expected = describe_accounts(source)
    for name in ("'app'@'%'", "'zed'@'%'", "'reader'", "'writer'"):
        assert diff_accounts({name: expected[name]}, {name: restored[name]}) == []
    for name in ("'keeper'@'%'", "'zed'@'localhost'", "'ops'"):
        assert restored[name] == before[0][name], name
    # root holds ops as it did, and not reader, which it re-created; it is the
    # admin of writer, which is new to the target and which it created.
    me = "'root'@'127.0.0.1'"
    gained = set(restored[me].grants) - set(before[0][me].grants)
    assert gained == {"GRANT `writer` TO `root`@`127.0.0.1` WITH ADMIN OPTION"}, gained
    assert set(before[0][me].grants) <= set(restored[me].grants)
    kept = [row for row in mapping if row[1] in ("keeper", "root") and row[2] != "writer"]
    assert kept == [row for row in before[1] if row[1] in ("keeper", "root")], mapping
    target.connect(user="app", password="source-app-pw").close()


def test_an_account_the_target_cannot_create_changes_nothing(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    source = source_with_accounts(mariadb_factory)
    source.execute("INSTALL SONAME 'auth_ed25519'")
    source.execute("CREATE USER 'edd'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('source-edd-pw')")
    source.execute("GRANT SELECT ON shop.* TO 'edd'@'%'")
    snapshot = plakar.backup(uri(source), password(source))
    assert b"ed25519" in plakar.cat(snapshot, "/server/users.sql")
    target = target_with_accounts(mariadb_factory)
    target.execute("CREATE USER 'edd'@'%' IDENTIFIED BY 'target-edd-pw'")
    forbidden = [*secrets_of(source), *secrets_of(target), "source-edd-pw", "target-edd-pw"]
    before = every_account(target)

    # A whole-server restore: the tables load, then the accounts are refused whole.
    line = failed_restore(plakar, snapshot, target, forbidden)
    assert "account `edd`@`%` cannot be created: (1524) Plugin 'ed25519' is not loaded" in line
    assert line.endswith("; no account was changed"), line
    assert_unchanged(target, before)
    target.connect(user="edd", password="target-edd-pw").close()


def test_a_crafted_users_file_is_refused_before_any_account_changes(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    source = source_with_accounts(mariadb_factory)
    snapshot = plakar.backup(uri(source), password(source))
    target = target_with_accounts(mariadb_factory)
    before = every_account(target)
    original = plakar.files(snapshot)
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
        line = failed_restore(
            plakar, f"{bad}:{tree}/server/users.sql", target, [*secrets_of(source)]
        )
        assert "/server/users.sql: a statement filed under" in line, line
        assert "no account was changed" in line, line
        assert_unchanged(target, before)
