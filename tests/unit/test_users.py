"""The checks a restore applies to ``users.sql`` before running any of it, and the
error text it shows: a statement filed under an account must be about that
account alone, and no message carries a statement's strings (password hashes)."""

from __future__ import annotations

import pymysql
import pytest

from plakar_mysql.logical.users import Account, _Block, _own_statements, _said

APP = Account("app", "%")
HASH = "*F95BC5F6024C92F5D1C6458C7FC841F3F854D21D"


def own(statements: list[str], creating: bool, account: Account = APP) -> list[str] | None:
    return _own_statements(_Block(account, statements), creating)


@pytest.mark.parametrize(
    "statement",
    [
        f"CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '{HASH}'",
        "CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING 'x,y' REQUIRE SSL",
        "CREATE USER `app`@`%`",
    ],
)
def test_its_own_create_is_accepted(statement: str) -> None:
    assert own([statement], creating=True) == [statement]


@pytest.mark.parametrize(
    "statement",
    [
        "DROP USER `app`@`%`",
        "CREATE USER `app`@`%`, `evil`@`%`",
        "CREATE USER `other`@`%`",
        "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD 'a\\' , `evil`@`%` '",
        "CREATE USER `app`@`%` /*!, `evil`@`%` */",
        "SET GLOBAL read_only = 1",
    ],
)
def test_anything_else_under_create_is_refused(statement: str) -> None:
    assert own([statement], creating=True) is None


def test_a_role_block_holds_only_its_create_role() -> None:
    role = Account("r", "", True)
    assert own(["CREATE ROLE `r`"], creating=True, account=role) == ["CREATE ROLE `r`"]
    assert own(["CREATE ROLE `r`", "CREATE ROLE `x`"], creating=True, account=role) is None
    assert own(["CREATE USER `r`@`%`"], creating=True, account=role) is None


def test_grants_to_itself_are_kept_and_to_held_roles_left_out() -> None:
    writer = Account("writer", "", True)
    statements = [
        "GRANT `reader` TO `writer`",
        "GRANT USAGE ON *.* TO `writer`",
        "GRANT INSERT ON `shop`.* TO `writer`",
        "GRANT USAGE ON *.* TO `reader`",  # SHOW GRANTS of a role lists what its roles hold
        "GRANT SELECT ON `shop`.* TO `reader`",
    ]
    assert own(statements, creating=False, account=writer) == statements[:3]


@pytest.mark.parametrize(
    "statement",
    [
        "GRANT ALL ON *.* TO `app`@`%`, `keeper`@`%`",
        "GRANT ALL ON *.* TO `keeper`@`%`",
        "GRANT SELECT ON `x TO ``app``@``%``` TO `keeper`@`%`",
        "SET DEFAULT ROLE `r` FOR `keeper`@`%`",
        "REVOKE ALL ON *.* FROM `app`@`%`",
        "GRANT ALL ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '\\', `keeper`@`%`'",
    ],
)
def test_a_grant_to_another_account_is_refused(statement: str) -> None:
    assert (
        own([f"GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '{HASH}'", statement], False)
        is None
    )


def test_grants_with_options_and_default_role_are_accepted() -> None:
    statements = [
        f"GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '{HASH}' REQUIRE SSL",
        "GRANT SELECT (`a, b`, `TO`) ON `shop`.`t` TO `app`@`%` WITH GRANT OPTION",
        "GRANT `writer` TO `app`@`%` WITH ADMIN OPTION",
        "SET DEFAULT ROLE `writer` FOR `app`@`%`",
    ]
    assert own(statements, creating=False) == statements


def test_messages_hide_the_statement_strings() -> None:
    statement = f"CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '{HASH}' BOGUS"
    parse = pymysql.err.ProgrammingError(
        1064, f"You have an error in your SQL syntax; ... near 'PASSWORD '{HASH}' BOGUS' at line 1"
    )
    text = _said(parse, statement)
    assert HASH not in text and text.startswith("(1064) You have an error in your SQL syntax")
    echoed = pymysql.err.OperationalError(1827, f"The password hash {HASH} is\nnot valid")
    text = _said(echoed, statement)
    assert HASH not in text and "\n" not in text and text.startswith("(1827)")


def test_messages_hide_every_piece_of_a_hash_but_not_the_plugin() -> None:
    """MySQL prints hashes as hex literals; a message quoting their first bytes, as
    hex or as the bytes themselves, shows none of them; the plugin's name stays."""
    hexa = "2441303035" + "5c7a684a03701f28176b3e681243" * 2
    raw = bytes.fromhex(hexa).decode("latin-1")
    statement = (
        f"CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS 0x{hexa}"
        " DEFAULT ROLE `reader`@`%`"
    )
    for shown in (hexa[:16], raw[:9], f"0x{hexa[:30]}...", raw[3:15]):
        exc = pymysql.err.OperationalError(3162, f"Authorization ID failed at {shown} here")
        text = _said(exc, statement)
        assert text.startswith("(3162) Authorization ID failed at ") and text.endswith(" here")
        pieces = {whole[i : i + 6] for whole in (hexa, raw) for i in range(len(whole) - 5)}
        assert [piece for piece in pieces if piece in text] == [], text
    missing = pymysql.err.OperationalError(1524, "Plugin 'caching_sha2_password' is not loaded")
    assert _said(missing, statement) == "(1524) Plugin 'caching_sha2_password' is not loaded"
