"""Accounts, roles and grants: read from a server as statements, and loaded back.

Both flavours are read the same way, with ``SHOW CREATE USER`` (``CREATE ROLE``
for a MariaDB role) and ``SHOW GRANTS``, so that each statement is filed under
the account it is about.  That is what lets a restore keep its hands off the
account it connects as, and off accounts that already exist on the target
(unless ``overwrite=true``): grants to an account that is kept are not loaded
either.  The file holds password *hashes*, never passwords.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import pymysql

from kloset_sdk.guard import Guard
from plakar_mysql.core import options
from plakar_mysql.core.flavour import Flavour, detect
from plakar_mysql.core.grants import session_grants
from plakar_mysql.core.server import ServerError, connect, current_user

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


def _hex_hashes(db: Connection) -> None:
    """Have MySQL (8.0.17 and later) print binary password hashes as hex literals in
    SHOW CREATE USER: raw, they are bytes that are not text (and may hold a newline).
    MariaDB's hashes are text; it has no such variable."""
    try:
        _execute(db, "SET SESSION print_identified_with_as_hex = ON")
    except pymysql.err.MySQLError as exc:
        if exc.args[0] != _UNKNOWN_VARIABLE:
            raise


def dump_accounts(db: Connection) -> Iterator[bytes]:
    """``users.sql``'s body: every account created first, then every grant.

    Read with an empty ``sql_mode``, so that names are quoted with backticks
    whatever the server's mode (``ANSI_QUOTES`` would print double quotes): a
    restore checks each statement against the account it is filed under."""
    mode = _show(db, "SELECT @@SESSION.sql_mode")[0]
    _execute(db, "SET SESSION sql_mode = ''")
    try:
        _hex_hashes(db)
        yield from _dump_accounts(db)
    finally:
        _execute(db, "SET SESSION sql_mode = %s", (mode,))


def _dump_accounts(db: Connection) -> Iterator[bytes]:
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


# -- restoring ------------------------------------------------------------------------
#
# Account statements are not transactional: each commits on its own.  So a restore
# (1) checks that every statement of users.sql is about its own account, (2) creates
# each account under a stand-in name and drops it again, so that a statement the
# target cannot run fails before anything is dropped, (3) captures every account of
# the target, (4) applies, and on any failure puts every account back as captured.

# A quoted name or string.  A string may not hold a backslash: whether it escapes
# depends on the session's sql_mode, so such a string could end elsewhere than we see.
_QUOTED = re.compile(r"`(?:[^`]|``)*`|'(?:[^'\\]|'')*'|\"(?:[^\"\\]|\"\")*\"")
# A role as SHOW GRANTS names it: `role` (MariaDB) or `role`@`host` (MySQL).
_ROLE = re.compile(r"`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?")
# A parenthesised list of quoted column names in a grant: SHOW GRANTS orders them freely.
_COLUMNS = re.compile(r"\((`(?:[^`]|``)*`(?:, `(?:[^`]|``)*`)*)\)")
_QUOTED_NAME = re.compile(r"`(?:[^`]|``)*`")
_NO_SUCH_TABLE = 1146
_UNKNOWN_VARIABLE = 1193
# Where a syntax error starts quoting the statement.
_NEAR = re.compile(r" near '.*", re.DOTALL)


# MySQL's SHOW CREATE USER clause naming the account's default roles.
_DEFAULT_ROLES = re.compile(rf" DEFAULT ROLE ({_ROLE.pattern}(?:, ?{_ROLE.pattern})*)")


def _without_default_roles(create: str) -> tuple[str, str | None]:
    """MySQL's ``CREATE USER`` without its ``DEFAULT ROLE`` clause, and that clause's
    roles (None when there is none).

    ``SHOW CREATE USER`` on MySQL names the account's default roles, but ``users.sql``
    creates every account before any grant, and MySQL refuses a default role the
    account does not hold yet ("Authorization ID ... does not exist", found on MySQL
    9.7.4): the roles are set by ``ALTER USER`` once the grants are in."""
    masked = _masked(create)
    at = -1 if masked is None else masked.find(" DEFAULT ROLE ")
    found = _DEFAULT_ROLES.match(create, at) if at >= 0 else None
    if found is None:
        return create, None
    return create[:at] + create[found.end() :], found[1]


def _printed(account: Account) -> str:
    """The account as SHOW GRANTS prints it, as a grantee."""
    return _PUBLIC if account.role and account.user == _PUBLIC else account.sql


def _masked(statement: str) -> str | None:
    """``statement`` with every quoted name and string blanked (same length), so that
    its keywords and commas can be found whatever a name holds; None when a quote is
    left open or a string holds a backslash."""
    masked = _QUOTED.sub(lambda m: "_" * len(m[0]), statement)
    return None if any(c in masked for c in "`'\"\\;") else masked


def _grantee(statement: str, keyword: str) -> str | None:
    """The one account named after the first `` KEYWORD `` outside quotes, as written;
    None when there is none, or more than one (a comma follows)."""
    masked = _masked(statement)
    at = -1 if masked is None else masked.find(f" {keyword} ")
    if masked is None or at < 0 or "," in masked[at:]:
        return None
    start = at + len(keyword) + 2
    end = masked.find(" ", start)
    return statement[start : len(masked) if end < 0 else end]


def _role_head(grant: str) -> str | None:
    """The role a ``GRANT role TO ...`` statement grants; None for privileges."""
    masked = _masked(grant)
    at = -1 if masked is None else masked.find(" TO ")
    head = grant[len("GRANT ") : at] if grant.startswith("GRANT ") and at > 0 else ""
    return head if _ROLE.fullmatch(head) else None


def _role_granted(grant: str, account: Account) -> str | None:
    """The role a ``GRANT role TO account`` line grants, else None."""
    return _role_head(grant) if _grantee(grant, "TO") == _printed(account) else None


def _own_statements(block: _Block, creating: bool) -> list[str] | None:
    """The statements of an account's block that are about that account; None if one
    is about anything else.  ``users.sql`` comes from the snapshot: a crafted one
    could otherwise drop, change or grant to any account, or run any statement.

    MariaDB's SHOW GRANTS for a role also lists what the roles it holds are
    granted: those lines are left out (each role's own block holds them; a role
    the target keeps is not changed)."""
    account, name, statements = block.account, _printed(block.account), block.statements
    if creating:
        if account.role:
            expected = [] if account.user == _PUBLIC else [f"CREATE ROLE {account.sql}"]
            return statements if statements == expected else None
        ok = len(statements) == 1 and statements[0].startswith(f"CREATE USER {name}")
        return statements if ok and _grantee(statements[0], "USER") == name else None
    held = {name}
    for _ in statements:  # the roles held, and theirs: a fixed point within len() rounds
        held |= {
            role
            for statement in statements
            if _grantee(statement, "TO") in held and (role := _role_head(statement))
        }
    own: list[str] = []
    for statement in statements:
        if statement.startswith("SET DEFAULT ROLE "):
            if _grantee(statement, "FOR") != name or not statement.endswith(f" FOR {name}"):
                return None
            own.append(statement)
        elif statement.startswith("GRANT ") and _grantee(statement, "TO") == name:
            own.append(statement)
        elif not statement.startswith("GRANT ") or _grantee(statement, "TO") not in held:
            return None
    return own


def _normalised(grant: str) -> str:
    """A grant with the columns of each column privilege sorted, to compare two."""
    return _COLUMNS.sub(lambda m: "(" + ", ".join(sorted(_QUOTED_NAME.findall(m[1]))) + ")", grant)


@dataclass(frozen=True)
class _State:
    """One account as the target holds it: what it takes to put it back exactly."""

    account: Account
    create: str
    """SHOW CREATE USER (password hash, plugin, TLS, limits, lock), CREATE ROLE, or
    empty for MariaDB's PUBLIC."""
    grants: tuple[str, ...]
    """SHOW GRANTS, in the server's order: privileges, roles held, MariaDB's default role."""
    default_roles: tuple[str, ...]
    """MySQL's default roles (mysql.default_roles); MariaDB's are among the grants."""

    def same(self, other: _State) -> bool:
        return (
            self.create == other.create
            and sorted(map(_normalised, self.grants)) == sorted(map(_normalised, other.grants))
            and self.default_roles == other.default_roles
        )


def _default_roles(db: Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    """MySQL's default roles by account; none on MariaDB, which has no such table."""
    try:
        rows = _rows(
            db, "SELECT USER, HOST, DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles"
        )
    except pymysql.err.MySQLError as exc:
        if exc.args[0] == _NO_SUCH_TABLE:
            return {}
        raise
    roles: dict[tuple[str, str], list[str]] = {}
    for user, host, role, role_host in rows:
        roles.setdefault((user, host), []).append(Account(role, role_host).sql)
    return {key: tuple(sorted(names)) for key, names in roles.items()}


def _rows(db: Connection, sql: str) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def _state(db: Connection, account: Account, default_roles: tuple[str, ...] = ()) -> _State:
    if account.role:
        create = "" if account.user == _PUBLIC else f"CREATE ROLE {account.sql}"
    else:
        create = _show(db, f"SHOW CREATE USER {account.sql}")[0]
    grants = tuple(_show(db, f"SHOW GRANTS FOR {account.sql}"))
    return _State(account, create, grants, default_roles)


def _capture(db: Connection) -> dict[tuple[str, str], _State]:
    """Every account and role of the target as it is now."""
    defaults = _default_roles(db)
    return {
        account.key: _state(db, account, defaults.get((account.user, account.host), ()))
        for account in _all_accounts(db)
    }


@dataclass
class _Plan:
    creates: list[_Block]
    """The accounts to create (dropping the target's first), roles first."""
    grants: list[_Block]
    """Their grants."""
    kept: list[Account]
    """Accounts of the snapshot left as the target has them."""
    me: tuple[str, str]
    """The restoring account: (user, host)."""


def _held_roles(db: Connection, me: Account) -> set[str]:
    """The roles the restoring account holds, and the roles they hold, as SHOW GRANTS
    names them: dropping one would take privileges from the restore's own session."""
    held: set[str] = set()
    todo = [me.sql]
    while todo:
        name = todo.pop()
        for grant in _show(db, f"SHOW GRANTS FOR {name}"):
            role = _role_head(grant) if _grantee(grant, "TO") == name else None
            if role is not None and role not in held:
                held.add(role)
                todo.append(role)
    return held


def _plan(
    text: bytes,
    me: tuple[str, str],
    existing: set[tuple[str, str]],
    held: set[str],
    overwrite: bool,
) -> _Plan:
    """What to restore; refuses a ``users.sql`` with a statement about another account.

    Kept as they are: the restoring account, the roles it holds (``held``), the
    server's own accounts, and, unless ``overwrite``, every account that exists."""
    plan = _Plan([], [], [], me)
    for block in _blocks(text, _ACCOUNT):
        account = block.account
        mine = (account.user, account.host) == me or account.user in _INTERNAL
        mine = mine or account.sql in held
        if mine or (account.key in existing and account.user != _PUBLIC and not overwrite):
            plan.kept.append(account)
        else:
            plan.creates.append(block)
    defaults: dict[tuple[str, str], str] = {}
    for block in plan.creates:
        if block.statements and not block.account.role:
            block.statements[0], roles = _without_default_roles(block.statements[0])
            if roles is not None:
                defaults[block.account.key] = roles
    chosen = {block.account.key for block in plan.creates}
    plan.grants = [block for block in _blocks(text, _GRANTS) if block.account.key in chosen]
    for creating, blocks in ((True, plan.creates), (False, plan.grants)):
        for block in blocks:
            own = _own_statements(block, creating)
            if own is None:
                raise ServerError(
                    f"/server/users.sql: a statement filed under {block.account.sql} is not "
                    f"{'its CREATE' if creating else 'a GRANT to it'}"
                )
            block.statements = own
    for key, roles in defaults.items():  # after the account's grants: it holds them then
        account = next(block.account for block in plan.creates if block.account.key == key)
        grants = next((block for block in plan.grants if block.account.key == key), None)
        if grants is None:
            grants = _Block(account, [])
            plan.grants.append(grants)
        grants.statements.append(f"ALTER USER {account.sql} DEFAULT ROLE {roles}")
    return plan


def restore_accounts(
    db: Connection,
    text: bytes,
    *,
    overwrite: bool,
    log: Any,
    checks: StandIns,
) -> tuple[list[Account], list[Account]]:
    """Create the accounts of ``users.sql`` and their grants; (restored, kept) accounts.

    The account the restore connects as, and the roles it holds, are never
    touched; an account that exists is kept as it is unless ``overwrite``, and
    then dropped and created again.  Accounts that keep a role which is created
    again keep holding it.  Whatever fails, every account of the target is left
    as it was.  ``checks`` registers the drop of each temporary check account with
    the guardian.
    """
    current = _show(db, "SELECT CURRENT_USER()")[0]
    me_user, _, me_host = str(current).rpartition("@")
    mode = _show(db, "SELECT @@SESSION.sql_mode")[0]
    _execute(db, "SET SESSION sql_mode = ''")  # names quoted with backticks, as in the file
    try:
        _hex_hashes(db)
        return _restore(db, text, (me_user, me_host), overwrite, log, checks=checks)
    finally:
        _execute(db, "SET SESSION sql_mode = %s", (mode,))


def _restore(
    db: Connection,
    text: bytes,
    me: tuple[str, str],
    overwrite: bool,
    log: Any,
    *,
    checks: StandIns,
) -> tuple[list[Account], list[Account]]:
    try:
        existing = {account.key for account in _all_accounts(db)}
        held = _held_roles(db, Account(*me))
        plan = _plan(text, me, existing, held, overwrite)
        check_account_privileges(db, roles=_grants_roles(plan))
        unsafe = _keep_what_cannot_be_put_back(db, plan, existing, checks)
        _try_creates(db, plan.creates, checks)
        before = _capture(db)
    except ServerError as exc:
        raise ServerError(f"restoring the accounts failed: {exc}; no account was changed") from None
    except pymysql.err.MySQLError as exc:
        raise ServerError(
            f"restoring the accounts failed: the target's accounts could not be read "
            f"({_said(exc, '')}); no account was changed"
        ) from None
    restored = [block.account for block in plan.creates]
    try:
        _apply(db, plan, before)
    except Exception as exc:  # any failure at all: the accounts go back as they were
        failed = _put_back(db, before, restored, me)
        outcome = (
            f"could not put back as they were: {', '.join(failed)}"
            if failed
            else "every account of the target was put back as it was"
        )
        raise ServerError(f"restoring the accounts failed: {exc}; {outcome}") from None
    if plan.kept:
        log(f"kept as they are on the target: {', '.join(a.sql for a in plan.kept)}")
    for account, why in unsafe.items():
        log(
            f"{account.sql} was kept as it is: the restoring account could not give it "
            f"back what it holds if the restore failed ({why})"
        )
    return restored, plan.kept


def _keep_what_cannot_be_put_back(
    db: Connection, plan: _Plan, existing: set[tuple[str, str]], checks: StandIns
) -> dict[Account, str]:
    """Move to ``plan.kept`` each account of the target that ``overwrite`` would drop
    but whose grants this session could not give back; why, by account.

    Each one's grants as the target holds them are granted to a stand-in, which is
    then dropped.  MySQL's ``root@localhost`` holds ``GRANT PROXY ON ''@''`` that only
    itself may grant (ERROR 1698 for any other account, found on MySQL 9.7.4):
    dropped, it could be neither restored nor put back."""
    unsafe: dict[Account, str] = {}
    for block in list(plan.creates):
        account = block.account
        if account.key not in existing or account.user == _PUBLIC:
            continue
        why = _regrant_check(db, account, checks)
        if why is not None:
            unsafe[account] = why
            plan.creates.remove(block)
            plan.kept.append(account)
    plan.grants = [b for b in plan.grants if b.account not in unsafe]
    return unsafe


@dataclass(frozen=True)
class StandIns:
    """Where the temporary ``plakar_check_*`` accounts are made: the server's connection
    settings, and the guard that drops one if the plugin dies while it exists (it
    holds a locked copy of an account's grants, or its password hash)."""

    conn: options.Connection
    guard: Guard

    @contextlib.contextmanager
    def made(
        self, db: Connection, stand_in: Account, create: str, account: Account, failure: str
    ) -> Iterator[None]:
        """``create`` (which creates ``stand_in``) run, then the block, then the
        stand-in dropped; the drop registered with the guard from before the
        ``CREATE`` until the stand-in is gone (a failed drop leaves it to the guard)."""
        action = functools.partial(drop_stand_in, self.conn, stand_in.sql)
        token = self.guard.on_exit(action, f"drop the check account {stand_in.sql}")
        try:
            _run(db, account, failure, create)
        except BaseException:
            self.guard.discard(token)  # not created: nothing to drop
            raise
        try:
            yield
        finally:
            _run(db, account, "cannot be checked", f"DROP USER {stand_in.sql}")
            self.guard.discard(token)


def drop_stand_in(conn: options.Connection, account_sql: str) -> None:
    """The guardian's action: drop a check account if it is still there."""
    with contextlib.closing(connect(conn)) as db:
        db._read_timeout = db._write_timeout = 60  # type: ignore[attr-defined]
        _execute(db, f"DROP USER IF EXISTS {account_sql}")


def _regrant_check(db: Connection, account: Account, checks: StandIns) -> str | None:
    """Why the target's privileges of ``account`` could not be granted again; None if
    they can.  Roles held are not tried: a role re-created by the restore is granted
    back by :func:`_reconcile` and :func:`_put_back`, as its admin."""
    name = _printed(account)
    stand_in = Account(
        f"plakar_check_{secrets.token_hex(6)}", "%" if account.role else account.host
    )
    grants = [
        g
        for g in _show(db, f"SHOW GRANTS FOR {account.sql}")
        if _grantee(g, "TO") == name and g.startswith("GRANT ") and _role_head(g) is None
    ]
    create = f"CREATE USER {stand_in.sql} ACCOUNT LOCK"
    with checks.made(db, stand_in, create, account, "cannot be checked"):
        for grant in grants:
            try:
                _execute(db, grant.replace(f" TO {name}", f" TO {stand_in.sql}", 1))
            except pymysql.err.MySQLError as exc:
                return _said(exc, grant)
        return None


def check_account_privileges(db: Connection, *, roles: bool = False, outcome: str = "") -> None:
    """Refuse, in one line naming the grant, an account that may not restore accounts:
    ``CREATE USER`` on both flavours, and on MySQL ``ROLE_ADMIN`` when ``roles`` are
    granted (MariaDB makes the creator of a role its admin; MySQL does not: ERROR
    1227 at the first ``GRANT role``, found on MySQL 9.7.4).  ``outcome`` ends the
    message."""
    grants = session_grants(db)
    lacking = [] if grants.has("CREATE USER") else ["CREATE USER ON *.*"]
    version = " ".join(str(v) for v in _rows(db, "SELECT VERSION(), @@version_comment")[0])
    mysql = detect(version) is Flavour.MYSQL
    if roles and mysql and not (grants.has("ROLE_ADMIN") or grants.has("SUPER")):
        lacking.append("ROLE_ADMIN ON *.* (to grant the snapshot's roles)")
    if lacking:
        raise ServerError(
            f"users=true: {current_user(db)} lacks {'; '.join(lacking)} "
            f"WITH GRANT OPTION to restore the snapshot's accounts{outcome}"
        )


def _grants_roles(plan: _Plan) -> bool:
    """Whether ``plan`` grants a role to anyone."""
    return any(_role_head(s) is not None for block in plan.grants for s in block.statements)


def _try_creates(db: Connection, blocks: list[_Block], checks: StandIns) -> None:
    """Create each account once under a stand-in name, and drop it again.

    A ``CREATE USER`` the target cannot run (an authentication plugin it lacks,
    the other flavour's syntax, a password-validation policy) then fails before
    any account is dropped.
    """
    for block in blocks:
        account = block.account
        if account.role:
            continue  # a bare CREATE ROLE: nothing in it can fail but the name
        stand_in = Account(f"plakar_check_{secrets.token_hex(6)}", account.host)
        prefix = f"CREATE USER {account.sql}"
        create = block.statements[0].replace(prefix, "CREATE USER " + stand_in.sql, 1)
        with checks.made(db, stand_in, create, account, "cannot be created"):
            pass


def _apply(db: Connection, plan: _Plan, before: dict[tuple[str, str], _State]) -> None:
    """Drop and create each account, then grant; then give the accounts that are kept
    back the roles they lost when a role was dropped to be created again."""
    for block in plan.creates:
        account = block.account
        if account.key in before and account.user != _PUBLIC:
            _run(
                db,
                account,
                "could not be dropped",
                f"DROP {'ROLE' if account.role else 'USER'} {account.sql}",
            )
        for statement in block.statements:
            _run(db, account, "could not be created", statement)
    for block in plan.grants:
        for statement in block.statements:
            _run(db, block.account, "could not be granted its privileges", statement)
    touched = {block.account.key for block in plan.creates}
    recreated = {block.account.sql for block in plan.creates if block.account.key in before}
    kept = [state for key, state in before.items() if key not in touched]

    def run(account: Account, statement: str) -> None:
        _run(db, account, "could not be given back what it held", statement)

    _reconcile(db, kept, recreated, plan.me, run)


Run: TypeAlias = Callable[[Account, str], None]


def _reconcile(
    db: Connection, states: list[_State], roles: set[str] | None, me: tuple[str, str], run: Run
) -> None:
    """Bring accounts that are not created again back to ``states``.

    Grants they lost (a dropped role is taken from every holder) are granted
    again, then roles they gained are revoked (the account that runs ``CREATE
    ROLE`` becomes its admin), the restoring account's last: its admin option
    is what allows granting the others a role.  With ``roles``, only those roles
    are revoked: the restoring account stays the admin of roles new to the
    target.  With None, privileges MariaDB's PUBLIC gained are revoked too.
    """
    for state in states:
        has = {_normalised(grant) for grant in _state(db, state.account).grants}
        for grant in state.grants:
            if _normalised(grant) not in has:
                run(state.account, grant)
    for state in sorted(states, key=lambda state: (state.account.user, state.account.host) == me):
        account, name = state.account, _printed(state.account)
        had = {_normalised(grant) for grant in state.grants}
        held = {_role_granted(grant, account) for grant in state.grants}
        for grant in _state(db, account).grants:
            role = _role_granted(grant, account)
            if _normalised(grant) in had:
                continue
            if role is not None and (roles is None or role in roles):
                admin = "ADMIN OPTION FOR " if role in held else ""
                run(account, f"REVOKE {admin}{role} FROM {name}")
            elif role is None and roles is None and account.role and account.user == _PUBLIC:
                run(
                    account,
                    f"REVOKE {grant[len('GRANT ') : grant.rfind(f' TO {name}')]} FROM {name}",
                )
        defaults = _default_roles(db).get((account.user, account.host), ())
        if defaults != state.default_roles:
            listed = ", ".join(state.default_roles) or "NONE"
            run(account, f"ALTER USER {account.sql} DEFAULT ROLE {listed}")


def _put_back(
    db: Connection,
    before: dict[tuple[str, str], _State],
    restored: list[Account],
    me: tuple[str, str],
) -> list[str]:
    """Put every account back as ``before`` holds it; the ones that could not be.

    An account of the snapshot that differs from ``before`` is dropped, then
    created again from ``before`` (roles first), with its grants; every other
    account is reconciled: roles and privileges it lost are granted again, those
    it gained revoked.  MariaDB's PUBLIC, which cannot be dropped, is reconciled.
    """
    expected = dict(before)
    for account in restored:  # PUBLIC had no grants if it was not listed
        if account.role and account.user == _PUBLIC:
            expected.setdefault(account.key, _State(account, "", (), ()))
    problems: list[str] = []

    def attempt(account: Account, statement: str) -> None:
        try:
            _run(db, account, "could not be put back", statement)
        except ServerError:
            problems.append(account.sql)

    try:
        now = _capture(db)
        changed = [
            a
            for a in restored
            if a.user != _PUBLIC
            and a.key in now
            and (a.key not in before or not before[a.key].same(now[a.key]))
        ]
        for account in changed:
            attempt(account, f"DROP {'ROLE' if account.role else 'USER'} {account.sql}")
        again = [
            before[a.key]
            for a in restored
            if a.user != _PUBLIC and a.key in before and (a in changed or a.key not in now)
        ]
        for state in again:  # MySQL's DEFAULT ROLE names roles that may not exist yet
            attempt(state.account, _without_default_roles(state.create)[0])
        for state in again:
            for grant in state.grants:
                attempt(state.account, grant)
        for state in again:  # once every role exists and is held
            if state.default_roles:
                listed = ", ".join(state.default_roles)
                attempt(state.account, f"ALTER USER {state.account.sql} DEFAULT ROLE {listed}")
        recreated = {state.account.key for state in again}
        kept = [state for key, state in expected.items() if key not in recreated]
        _reconcile(db, kept, None, me, attempt)
        after = _capture(db)
    except pymysql.err.MySQLError as exc:
        return [f"unknown, the target could not be read ({_said(exc, '')})"]
    for key, state in expected.items():
        if (key in after and not state.same(after[key])) or (key not in after and state.create):
            problems.append(state.account.sql)
    problems += [a.sql for a in restored if a.key in after and a.key not in expected]
    return sorted(set(problems))


def _execute(db: Connection, sql: str, args: Any = None) -> None:
    with db.cursor() as cursor:
        cursor.execute(sql, args)


def _said(exc: pymysql.err.MySQLError, statement: str) -> str:
    """The server's error, on one line, without any string of ``statement``: a password
    hash or the text around it never reaches a message (nor does a syntax error's
    "near '...'", which quotes the statement)."""
    code, message = (*exc.args, "")[:2] if len(exc.args) > 1 else (None, str(exc))
    text = _NEAR.sub(" (not quoted here)", str(message))
    for literal in _secret_literals(statement):
        text = _hide_pieces(text, literal)
    text = " ".join(text.split())
    return f"({code}) {text}" if code is not None else text


# A string or hex literal of a statement, and the word before it.
_LITERAL = re.compile(r"(\w+)?\s*(?:'((?:[^'\\]|\\.|'')*)'|0x([0-9A-Fa-f]+))")
#: The shortest run of a statement's secret that a message may not repeat.
_PIECE = 6


def _secret_literals(statement: str) -> list[str]:
    """Every string of ``statement`` but a plugin's name (after ``WITH``/``VIA``), as
    written and, for a hex literal, as the bytes it stands for: a hash, a password,
    or anything else an account statement quotes."""
    found: list[str] = []
    for before, string, hexa in _LITERAL.findall(statement):
        if string and before.upper() not in ("WITH", "VIA"):
            found.append(string)
        if hexa:
            found.append(hexa)
            found.append(bytes.fromhex(hexa[: len(hexa) // 2 * 2]).decode("latin-1"))
    return found


def _hide_pieces(text: str, literal: str) -> str:
    """``text`` with every run of at least :data:`_PIECE` characters that also occurs
    in ``literal`` (a shorter literal: the whole of it) shown as ``<hidden>``: a
    server that quotes the first bytes of a hash, or a hash cut short, gives away
    no part of it."""
    if len(literal) < _PIECE:
        return text.replace(literal, "<hidden>") if len(literal) >= 4 else text
    out: list[str] = []
    at = 0
    while at < len(text):
        end = at
        while end < len(text) and text[at : end + 1] in literal:
            end += 1
        if end - at >= _PIECE:
            out.append("<hidden>")
            at = end
        else:
            out.append(text[at])
            at += 1
    return "".join(out)


def _run(db: Connection, account: Account, failure: str, statement: str) -> None:
    """Run one account statement; a failure names the account and the server's error,
    never the statement, which may hold a password hash."""
    # MariaDB parses privileges on a PACKAGE only in its Oracle mode.
    oracle = " ON PACKAGE " in statement
    with db.cursor() as cursor:
        try:
            if oracle:
                cursor.execute("SET SESSION sql_mode = 'ORACLE'")
            cursor.execute(statement)
        except pymysql.err.MySQLError as exc:
            raise ServerError(f"account {account.sql} {failure}: {_said(exc, statement)}") from None
        finally:
            if oracle:
                cursor.execute("SET SESSION sql_mode = ''")
