"""Snapshot paths, file headers and footers, the session frame, and where a
restore puts a single dump file."""

from __future__ import annotations

import io

import pytest

from plakar_mysql.exporter import RestoreError, plan_load, quote_identifier, read_first_line
from plakar_mysql.layout import (
    Catalog,
    DatabaseEntry,
    DumpHeader,
    FileHeader,
    Inventory,
    decode_segment,
    encode_segment,
    footer,
    object_path,
    read_footer,
    read_header,
    session_frame,
)
from plakar_mysql.server import ServerError

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


AWKWARD = ["a/b", "%2F", ".hidden", "..", "all", "manifest.json", "ü n'i`c\"o d e", "A", "a"]


def test_first_release_header_still_reads() -> None:
    line = ONE.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert read_header(line) == ONE
    assert read_header(b"-- MariaDB dump 10.19\n") is None
    with pytest.raises(ValueError, match="format 9"):
        read_header(b'-- plakar-mysql {"format": 9}\n')


def test_file_header_round_trip_is_one_stable_line() -> None:
    inventory = Inventory("sh/op", "utf8mb4", "utf8mb4_bin", ("t",), ("v",), ("FUNCTION f",))
    for header in (
        FileHeader("table", "mariadb", 1 << 24, "sh/op", "t\nx", "utf8mb4", "utf8mb4_bin"),
        FileHeader("schema", "mysql", 1 << 24, "sh/op", inventory=inventory),
    ):
        line = header.encode()
        assert line.count(b"\n") == 1 and read_header(line) == header
        assert header.encode() == line  # nothing volatile
    assert read_header(footer(3)) is None


def test_paths_keep_names_and_encode_only_what_cannot_stand() -> None:
    for name in AWKWARD:
        segment = encode_segment(name)
        assert "/" not in segment and not segment.startswith(".")
        assert decode_segment(segment) == name
    assert encode_segment("ü n'i`c") == "ü n'i`c"
    assert object_path("table", "a/b", ".t%") == "/databases/a%2Fb/tables/%2Et%25.sql"
    assert object_path("views", "..") == "/databases/%2E./views.sql"
    assert object_path("users") == "/server/users.sql"
    paths = {object_path("table", "d", name) for name in AWKWARD}
    assert len(paths) == len(AWKWARD)  # names equal but for case stay apart


def test_footer_and_catalog_round_trip() -> None:
    assert read_footer(b"...\n" + footer(12)) == 12
    assert read_footer(footer(None)) is None
    assert read_footer(b"no footer") is None
    catalog = Catalog("mariadb", "server", (Inventory("d", "latin1", "latin1_bin", ("t",)),), True)
    assert Catalog.decode(catalog.encode()) == catalog


def test_session_frame_restores_what_it_saves() -> None:
    preamble = (
        b"-- MariaDB dump 10.19\n"
        b"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
        b"/*!40101 SET NAMES utf8mb4 */;\n"
        b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
        b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'x:1-5';\n"
        b"-- CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;\n"
    )
    start, end = session_frame(preamble)
    assert b"GTID" not in start and b"CHANGE" not in start and b"NAMES" in start
    assert end == (
        b"/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        b"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n"
    )


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
    with pytest.raises(ServerError):
        quote_identifier("a\x00b")


def test_read_first_line_keeps_the_rest() -> None:
    stream = io.BytesIO(b"-- first\nsecond\nthird")
    assert read_first_line(stream) == (b"-- first\n", b"second\nthird")
    assert read_first_line(io.BytesIO(b"no newline")) == (b"no newline", b"")
