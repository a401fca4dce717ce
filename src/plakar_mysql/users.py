"""Accounts, roles and grants: read from a server as statements, and loaded back.

Both flavours are read the same way, with ``SHOW CREATE USER`` (``CREATE ROLE``
for a MariaDB role) and ``SHOW GRANTS``, so that each statement is filed under
the account it is about.  That is what lets a restore keep its hands off the
account it connects as, and off accounts that already exist on the target
(unless ``overwrite=true``): grants to an account that is kept are not loaded
either.  The file holds password *hashes*, never passwords.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql

from plakar_mysql.server import ServerError

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

_ACCOUNT = b"-- Account: "
_GRANTS = b"-- Grants for: "
# Accounts every server creates for itself.
_INTERNAL = frozenset({"mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"})
# MariaDB's role of every account: it always exists and cannot be created.
_PUBLIC = "PUBLIC"


@dataclass(frozen=True)
class Account:
    user: str
    host: str
    role: bool = False

    @property
    def sql(self) -> str:
        quoted = "`" + self.user.replace("`", "``") + "`"
        return quoted if self.role else quoted + "@`" + self.host.replace("`", "``") + "`"

    @property
    def key(self) -> tuple[str, str]:
        """Identity on a server: a role has no host."""
        return (self.user, "" if self.role else self.host)

    def marker(self, prefix: bytes) -> bytes:
        return prefix + json.dumps([self.user, self.host, self.role]).encode() + b"\n"


def _all_accounts(db: Connection) -> list[Account]:
    """Every account and role of the server (MySQL has no ``is_role``: its roles
    are accounts)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM mysql.user LIMIT 0")
        columns = {d[0].lower() for d in cursor.description or ()}
        role = "is_role" if "is_role" in columns else "'N'"
        cursor.execute(f"SELECT User, Host, {role} FROM mysql.user ORDER BY User, Host")
        return [Account(user, host, flag == "Y") for user, host, flag in cursor.fetchall()]


def _accounts(db: Connection) -> list[Account]:
    """The accounts a backup keeps: all but the server's own."""
    try:
        accounts = _all_accounts(db)
    except pymysql.err.MySQLError as exc:
        raise ServerError(
            f"reading accounts needs SELECT on mysql.user ({exc.args[-1]}); "
            "set users=false to back up without them"
        ) from exc
    return [account for account in accounts if account.user not in _INTERNAL]


def _show(db: Connection, sql: str) -> list[str]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def dump_accounts(db: Connection) -> Iterator[bytes]:
    """``users.sql``'s body: every account created first, then every grant."""
    accounts = sorted(_accounts(db), key=lambda a: (not a.role, a.user, a.host))
    for account in accounts:
        yield account.marker(_ACCOUNT)
        if account.role and account.user == _PUBLIC:
            continue
        create = (
            f"CREATE ROLE {account.sql}"
            if account.role
            else _show(db, f"SHOW CREATE USER {account.sql}")[0]
        )
        yield create.encode() + b";\n"
    for account in accounts:
        yield account.marker(_GRANTS)
        for grant in _show(db, f"SHOW GRANTS FOR {account.sql}"):
            yield grant.encode() + b";\n"


def grants_on(db: Connection, database: str) -> list[str] | str:
    """The grants that name ``database``, or why they could not be read."""
    name = re.escape("`" + database.replace("`", "``") + "`")
    on = re.compile(rf" ON (?:PROCEDURE |FUNCTION |PACKAGE BODY |PACKAGE )?{name}\.")
    try:
        accounts = _accounts(db)
        return [
            grant
            for account in accounts
            for grant in _show(db, f"SHOW GRANTS FOR {account.sql}")
            if on.search(grant)
        ]
    except (ServerError, pymysql.err.MySQLError) as exc:
        return f"not readable: {exc.args[-1]}"


@dataclass
class _Block:
    account: Account
    statements: list[str]


def _blocks(text: bytes, prefix: bytes) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith(b"/*"):
            continue  # the file's session start and end, not an account's
        if line.startswith((_ACCOUNT, _GRANTS)):
            current = None
            if line.startswith(prefix):
                user, host, role = json.loads(line[len(prefix) :])
                current = _Block(Account(user, host, role), [])
                blocks.append(current)
        elif current is not None and line.rstrip().endswith(b";"):
            current.statements.append(line.decode().rstrip().removesuffix(";"))
    return blocks


def restore_accounts(
    db: Connection, text: bytes, *, overwrite: bool, log: Any
) -> tuple[list[Account], list[Account]]:
    """Create the accounts of ``users.sql`` and their grants; (restored, kept) accounts.

    The account the restore connects as is never touched; an account that
    exists is kept as it is unless ``overwrite``, and then dropped and created
    again.
    """
    with db.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        me_user, _, me_host = str(cursor.fetchone()[0]).rpartition("@")
    existing = {account.key for account in _all_accounts(db)}

    creates = _blocks(text, _ACCOUNT)
    restored: list[Account] = []
    kept: list[Account] = []
    for block in creates:
        account = block.account
        if (account.user, account.host) == (me_user, me_host) or account.user in _INTERNAL:
            kept.append(account)
            continue
        if account.key in existing and account.user != _PUBLIC:
            if not overwrite:
                kept.append(account)
                continue
            _run(db, f"DROP {'ROLE' if account.role else 'USER'} {account.sql}")
        for statement in block.statements:
            _run(db, statement)
        restored.append(account)
    done = {a.key for a in restored}
    for block in _blocks(text, _GRANTS):
        if block.account.key in done:
            for statement in block.statements:
                _run(db, statement)
    if kept:
        log(f"kept as they are on the target: {', '.join(a.sql for a in kept)}")
    return restored, kept


def _run(db: Connection, statement: str) -> None:
    # MariaDB parses privileges on a PACKAGE only in its Oracle mode.
    oracle = " ON PACKAGE " in statement
    with db.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        (mode,) = cursor.fetchone() or ("",)
        try:
            if oracle:
                cursor.execute("SET SESSION sql_mode = 'ORACLE'")
            cursor.execute(statement)
        except pymysql.err.MySQLError as exc:
            raise ServerError(f"{statement[:120]}: {exc.args[-1]}") from exc
        finally:
            if oracle:
                cursor.execute("SET SESSION sql_mode = %s", (mode,))
