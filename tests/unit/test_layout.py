"""The dump header and where a restore puts each dump."""

from __future__ import annotations

import io

import pytest

from plakar_mysql.exporter import RestoreError, plan_load, quote_identifier, read_first_line
from plakar_mysql.layout import DatabaseEntry, DumpHeader

ONE = DumpHeader(
    "database",
    "mariadb",
    (DatabaseEntry("shöp `x`", "utf8mb4", "utf8mb4_general_ci", ("orders", "a b")),),
    16 << 20,
)
MANY = DumpHeader(
    "server",
    "mariadb",
    (
        DatabaseEntry("a", "latin1", "latin1_swedish_ci", ()),
        DatabaseEntry("b", "utf8mb4", "utf8mb4_bin", ("t",)),
    ),
    1 << 20,
)


def test_header_round_trip_is_one_stable_line() -> None:
    line = ONE.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert DumpHeader.decode(line) == ONE
    assert ONE.encode() == line  # no volatile field
    assert DumpHeader.decode(b"-- MariaDB dump 10.19\n") is None
    with pytest.raises(ValueError, match="format 9"):
        DumpHeader.decode(b'-- plakar-mysql {"format": 9}\n')


def test_plan_single_database_renames() -> None:
    plan = plan_load(ONE, "/dump.sql", "copy")
    assert plan.database == "copy"
    assert plan.creates == (("copy", "utf8mb4", "utf8mb4_general_ci"),)
    assert plan.tables == {"copy": ("orders", "a b")}
    assert plan_load(ONE, "/dump.sql", None).database == "shöp `x`"


def test_plan_several_databases_keep_their_names() -> None:
    plan = plan_load(MANY, "/dump.sql", None)
    assert plan.database is None and set(plan.tables) == {"a", "b"}
    with pytest.raises(RestoreError, match="without a database in the URI"):
        plan_load(MANY, "/dump.sql", "x")


def test_plan_plain_dumps_of_the_official_integration() -> None:
    assert plan_load(None, "/shop.sql", None).database == "shop"
    plan = plan_load(None, "/shop.sql", "copy")
    assert plan.database == "copy" and plan.tables == {"copy": None} and not plan.blind
    everything = plan_load(None, "/all.sql", None)
    assert everything.database is None and everything.blind


def test_identifier_quoting() -> None:
    assert quote_identifier("a`b") == "`a``b`"
    with pytest.raises(RestoreError):
        quote_identifier("a\x00b")


def test_read_first_line_keeps_the_rest() -> None:
    stream = io.BytesIO(b"-- first\nsecond\nthird")
    assert read_first_line(stream) == (b"-- first\n", b"second\nthird")
    assert read_first_line(io.BytesIO(b"no newline")) == (b"no newline", b"")
