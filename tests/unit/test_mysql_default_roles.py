"""MySQL's ``SHOW CREATE USER`` names an account's default roles; ``users.sql`` creates
every account before any grant, so a restore sets them after the account's grants."""

from __future__ import annotations

import json

from plakar_mysql.logical.users import _plan

HASH = "0x2441303035" + "ab" * 30


def users_sql(default_roles: str) -> bytes:
    """A MySQL ``users.sql``: a role, and an account holding it with ``default_roles``."""
    app, reader = ["app", "%", False], ["reader", "%", False]
    create = (
        f"CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS {HASH}"
        f"{default_roles} REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK"
    )
    lines = [
        f"-- Account: {json.dumps(reader)}",
        "CREATE USER `reader`@`%` IDENTIFIED WITH 'caching_sha2_password' REQUIRE NONE "
        "PASSWORD EXPIRE ACCOUNT LOCKED;",
        f"-- Account: {json.dumps(app)}",
        create + ";",
        f"-- Grants for: {json.dumps(reader)}",
        "GRANT SELECT ON `sales`.* TO `reader`@`%`;",
        f"-- Grants for: {json.dumps(app)}",
        "GRANT USAGE ON *.* TO `app`@`%`;",
        "GRANT `reader`@`%`,`writer`@`%` TO `app`@`%`;",
    ]
    return "\n".join(lines).encode() + b"\n"


def test_default_roles_are_set_after_the_grants() -> None:
    for clause, roles in (
        (" DEFAULT ROLE `reader`@`%`", "`reader`@`%`"),
        (" DEFAULT ROLE `reader`@`%`,`wri``ter`@`%`", "`reader`@`%`,`wri``ter`@`%`"),
    ):
        plan = _plan(users_sql(clause), ("root", "localhost"), set(), set(), overwrite=False)
        create = next(b for b in plan.creates if b.account.user == "app").statements
        assert create == [users_sql("").decode().splitlines()[3].removesuffix(";")]
        grants = next(b for b in plan.grants if b.account.user == "app").statements
        assert grants[-1] == f"ALTER USER `app`@`%` DEFAULT ROLE {roles}"
        assert grants[:-1] == [
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT `reader`@`%`,`writer`@`%` TO `app`@`%`",
        ]


def test_without_default_roles_nothing_is_added() -> None:
    plan = _plan(users_sql(""), ("root", "localhost"), set(), set(), overwrite=False)
    statements = [s for block in plan.grants for s in block.statements]
    assert not any(s.startswith("ALTER USER") for s in statements)
