"""Snapshot paths, file headers and footers, the session frame, and where a
restore puts a single dump file."""

from __future__ import annotations

import io
import json
import re

import pytest

from plakar_mysql.core.server import ServerError
from plakar_mysql.logical.layout import (
    Catalog,
    DatabaseEntry,
    DumpHeader,
    FileHeader,
    Inventory,
    SnapshotError,
    check_manifest,
    check_path,
    decode_segment,
    encode_segment,
    footer,
    object_path,
    read_capped,
    read_footer,
    read_header,
    session_frame,
)
from plakar_mysql.logical.restore import RestoreError, plan_load, quote_identifier, read_first_line

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
        FileHeader("table", "mysql", 1 << 24, "sh/op", "t", hex_blob=True),
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


# -- a snapshot's structure is untrusted input -------------------------------------------

TABLE = FileHeader("table", "mariadb", 1 << 24, "shop", "orders")


def test_a_path_must_be_where_the_header_puts_it() -> None:
    """The part of the path Plakar hands over ends the header's path; what is
    above it is the directory restored, the same for every file of a restore."""
    assert check_path("/databases/shop/tables/orders.sql", TABLE) == ""
    assert check_path("/tables/orders.sql", TABLE) == "/databases/shop"
    assert check_path("/orders.sql", TABLE) == "/databases/shop/tables"
    for path in (
        "/databases/other/tables/orders.sql",  # another database's
        "/databases/shop/tables/orders2.sql",  # a second file for the table
        "/x/databases/shop/tables/orders.sql",  # deeper than any snapshot path
        "/databases/shop/tables/../orders.sql",
        "databases/shop/tables/orders.sql",
        "/",
    ):
        with pytest.raises(SnapshotError, match=re.escape("/databases/shop/tables/orders.sql")):
            check_path(path, TABLE)
    users = FileHeader("users", "mariadb", 1 << 24)
    assert check_path("/server/users.sql", users) == ""
    with pytest.raises(SnapshotError, match="the accounts"):
        check_path("/databases/shop/tables/orders.sql", users)


def header_line(**fields: object) -> bytes:
    data = {"format": 2, "kind": "table", "flavour": "mariadb", "max_allowed_packet": 1024}
    data |= {"database": "shop", "name": "orders"}
    data |= fields
    return b"-- plakar-mysql " + json.dumps(data).encode() + b"\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "script"}, "kind 'script' is not one of"),
        ({"database": 5}, "database 5 is not a valid name"),
        ({"database": ""}, "is not a valid name"),
        ({"name": "a\x00b"}, "is not a valid name"),
        ({"name": "x" * 65}, "1 to 64 characters"),
        ({"name": None}, "names no object for a table file"),
        ({"kind": "users"}, "accounts, yet names a database"),
        ({"max_allowed_packet": 1 << 40}, "max_allowed_packet"),
        ({"max_allowed_packet": "1"}, "max_allowed_packet"),
        ({"character_set": "latin1; DROP"}, "not a character set or collation name"),
        ({"init_file": "/tmp/x.sql"}, "unknown fields: init_file"),
        ({"names": ["v"]}, "lists object names in a table file"),
        ({"format": True}, "format True is not supported"),
        ({"hex_blob": "yes"}, "hex_blob is not true"),
        ({"hex_blob": False}, "hex_blob is not true"),
        ({"kind": "schema", "name": None, "hex_blob": True}, "hex_blob is not true"),
    ],
)
def test_malformed_headers_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(SnapshotError, match=re.escape(message)):
        read_header(header_line(**fields))


def test_a_header_that_is_not_json_is_refused() -> None:
    with pytest.raises(SnapshotError, match="not valid JSON"):
        read_header(b"-- plakar-mysql {\n")
    with pytest.raises(SnapshotError, match="not a JSON object"):
        read_header(b"-- plakar-mysql [1]\n")


def catalog_json(**fields: object) -> bytes:
    inventory = {"database": "d", "character_set": "latin1", "collation": "latin1_bin"}
    data = {"format": 2, "flavour": "mariadb", "scope": "server", "databases": [inventory]}
    data |= fields
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "the catalog is not a JSON object"),
        (catalog_json(format=3), "snapshot format 3 is not supported"),
        (catalog_json(scope="galaxy"), "scope 'galaxy'"),
        (catalog_json(databases="d"), "'databases' is missing or not a list"),
        (catalog_json(users="yes"), "users 'yes' is not true or false"),
        (catalog_json(databases=[{"database": "d"}]), "'character_set' is missing"),
        (
            catalog_json(
                databases=[
                    {"database": "d", "character_set": "", "collation": "", "tables": ["t", "t"]}
                ]
            ),
            "names 't' twice",
        ),
        (
            catalog_json(
                databases=[{"database": "d", "character_set": "", "collation": "", "tables": [1]}]
            ),
            "tables 1 is not a valid name",
        ),
        (
            catalog_json(
                databases=[
                    {"database": "d", "character_set": "", "collation": ""},
                    {"database": "d", "character_set": "", "collation": ""},
                ]
            ),
            "names 'd' twice",
        ),
        (
            catalog_json(
                databases=[
                    {
                        "database": "d",
                        "character_set": "",
                        "collation": "",
                        "create_options": " COMMENT 'x'; DROP DATABASE y",
                    }
                ]
            ),
            "create_options",
        ),
    ],
)
def test_malformed_catalogs_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=re.escape(message)):
        Catalog.decode(data)


def test_database_options_as_the_servers_show_them_are_accepted() -> None:
    for options in (
        "",
        " /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */",
        " /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */"
        " COMMENT 'it''s \\\\ x'",
        " /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */"
        " /*!80016 DEFAULT ENCRYPTION='N' */",
    ):
        data = {"database": "d", "character_set": "", "collation": "", "create_options": options}
        assert Inventory.from_json(data).create_options == options


def test_manifest_checks() -> None:
    assert check_manifest(b'{"format": 2, "binlog": null}')
    assert check_manifest(b'{"format": 1}')
    assert not check_manifest(b'{"version": 1, "connector": "mariadb"}')  # the official one's
    for data, message in ((b"nope", "not valid JSON"), (b'{"format": "2"}', "format '2'")):
        with pytest.raises(SnapshotError, match=message):
            check_manifest(data)


def test_reading_whole_is_capped() -> None:
    assert read_capped([b"ab", b"cd"], 4) == b"abcd"
    with pytest.raises(SnapshotError, match="larger than 1 MiB"):
        read_capped(iter([b"x" * (1 << 20), b"x"]), 1 << 20)


def test_a_header_line_over_the_cap_is_refused_a_plain_line_is_data() -> None:
    huge = b"-- plakar-mysql " + b" " * (3 << 20)
    with pytest.raises(SnapshotError, match="header line is longer than 2 MiB"):
        read_first_line(io.BytesIO(huge), limit=2 << 20)
    line, rest = read_first_line(io.BytesIO(b"x" * (3 << 20)), limit=2 << 20)
    assert line == b"" and len(rest) > 2 << 20


def test_a_footer_must_hold_a_count() -> None:
    with pytest.raises(SnapshotError, match="not a count"):
        read_footer(b"-- plakar-mysql end " + b'{"rows": -1}\n')
    with pytest.raises(SnapshotError, match="not valid JSON"):
        read_footer(b"-- plakar-mysql end {\n")


def test_plain_dumps_only_at_the_top() -> None:
    """A file without a header below the top is no dump: a table file whose header
    was removed must not load into a database named after the table."""
    with pytest.raises(RestoreError, match="no plakar-mysql header"):
        plan_load(None, "/databases/shop/tables/orders.sql", None)
    with pytest.raises(RestoreError, match=re.escape("first-release header outside /dump.sql")):
        plan_load(ONE, "/other.sql", None)
    with pytest.raises(RestoreError, match="cannot be a database's name"):
        plan_load(None, "/.sql", None)
