"""The dump splitter: lossless, and cut only at real section boundaries."""

from __future__ import annotations

import io

import pytest

from plakar_mysql.logical.split import (
    DumpSplitter,
    Section,
    SplitError,
    parse_quoted,
    rows_on_one_line,
)

DUMP = b"""/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19
--
/*!40101 SET NAMES utf8mb4 */;

--
-- Current Database: `shop`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;

USE `shop`;

--
-- Table structure for table `a``b
-- c`
--

DROP TABLE IF EXISTS `a``b
c`;
CREATE TABLE `a``b
c` (
  `t` text COMMENT 'x'
);
INSERT INTO `a``b
c` VALUES
('-- Table structure for table `fake` ;\\n'),
('two;');
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON `a``b
c` FOR EACH ROW SET NEW.t = ';;
-- Table structure for table `inside_string`
' */;;
DELIMITER ;

--
-- Dumping routines for database 'shop'
--
DELIMITER ;;
CREATE PROCEDURE `p`()
BEGIN
/* a comment
-- Table structure for table `inside_comment`
*/
SELECT 'it''s;;' ;
END ;;
DELIMITER ;

--
-- Final view structure for view `v`
--

/*!50001 VIEW `v` AS select 'x
-- Final view structure for view `w`
' AS `c` */;

-- Dump completed
"""


def split(data: bytes, block: int = 1 << 20) -> list[tuple[Section, bytes]]:
    return [(s, b"".join(chunks)) for s, chunks in DumpSplitter(io.BytesIO(data), block)]


@pytest.mark.parametrize("block", [1 << 20, 7, 1])
def test_sections_are_lossless_and_named_exactly(block: int) -> None:
    parts = split(DUMP, block)
    assert b"".join(data for _, data in parts) == DUMP
    assert [s for s, _ in parts] == [
        Section("preamble", None, None),
        Section("database", "shop", None),
        Section("table", "shop", "a`b\nc"),
        Section("routines", "shop", None),
        Section("final_view", "shop", "v"),
        Section("trailer", None, None),
    ]
    table = dict((s.kind, d) for s, d in parts)["table"]
    # In their comments the tools write a line break of a name as "\n-- ".
    assert table.startswith(b"--\n-- Table structure for table `a``b\n-- c`")
    assert b"TRIGGER tr" in table and table.endswith(b"DELIMITER ;\n\n")


def test_reader_left_unread_is_skipped() -> None:
    kinds = [section.kind for section, _ in DumpSplitter(io.BytesIO(DUMP))]
    assert kinds == ["preamble", "database", "table", "routines", "final_view", "trailer"]


def test_quoted_names() -> None:
    assert parse_quoted(b"`a``b` rest", b"`") == "a`b"
    assert parse_quoted(b"'it''s'", b"'") == "it's"
    assert parse_quoted(b"`open", b"`") is None


def test_unterminated_marker_name_is_an_error() -> None:
    with pytest.raises(SplitError):
        split(b"--\n-- Table structure for table `never closed\n")


def test_sequences_rows_and_the_dump_end() -> None:
    dump = (
        b"--\n-- Current Database: `d`\n--\n\nUSE `d`;\n\n"
        b"--\n-- Sequence structure for `s`\n--\n\nCREATE SEQUENCE `s`;\nDO SETVAL(`s`, 5, 0);\n\n"
        b"--\n-- Table structure for table `t`\n--\n\n"
        b"INSERT INTO `t` VALUES\n(1,'),(x'),\n(2,'a\\nb');\n"
        b"INSERT INTO `t` (`a`, row_start) VALUES (3,'x');\n\n"
        b"-- The deferred gtid setting for slave\n\n-- SET GLOBAL gtid_slave_pos='0-1-5';\n"
        b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n-- Dump completed\n"
    )
    splitter = DumpSplitter(io.BytesIO(dump), block=64)
    seen = []
    for section, chunks in splitter:
        body = b"".join(chunks)
        seen.append((section.kind, section.name, splitter.rows))
        assert b"gtid_slave_pos" not in body or section.kind == "trailer"
    assert seen == [
        ("database", None, 0),
        ("table", "s", 0),
        ("table", "t", 3),  # one per line: "),(" inside a value does not count
        ("trailer", None, 0),
        ("trailer", None, 0),
        ("trailer", None, 0),
    ]


MYSQL_ROWS = (
    b"--\n-- Current Database: `d`\n--\n\nUSE `d`;\n\n"
    b"--\n-- Table structure for table `t`\n--\n\nCREATE TABLE `t` (`v` text);\n"
    b"INSERT INTO `t` VALUES (1,'a;'),(2,'b\\n;\\n'),(3,'-- Table structure for table `x`');\n"
    b"INSERT INTO `t` VALUES (4,'d');\n\n"
    b"--\n-- Table structure for table `u`\n--\n\nCREATE TABLE `u` (`v` int);\n\n"
    b"-- Dump completed\n"
)


@pytest.mark.parametrize("block", [1 << 20, 13, 1])
def test_one_line_inserts_as_mysqls_tools_write_them(block: int) -> None:
    """Each INSERT on one line: it ends with that line, whatever its values hold."""
    parts = split(MYSQL_ROWS, block)
    assert b"".join(data for _, data in parts) == MYSQL_ROWS
    assert [(s.kind, s.name) for s, _ in parts] == [
        ("database", None),
        ("table", "t"),
        ("table", "u"),
        ("trailer", None),
    ]
    assert dict((s.name, d) for s, d in parts)["t"].endswith(b"(4,'d');\n\n")


def test_rows_are_not_counted_when_not_asked() -> None:
    splitter = DumpSplitter(io.BytesIO(MYSQL_ROWS), count_rows=False)
    counts = []
    for _section, chunks in splitter:
        assert b"".join(chunks)
        counts.append(splitter.rows)
    assert counts == [0, 0, 0, 0]


@pytest.mark.parametrize("block", [1 << 20, 13, 1])
def test_one_line_inserts_have_their_rows_counted(block: int) -> None:
    """MySQL's tools put every row of an INSERT on one line: counted all the same,
    a ``),(`` or a marker line inside a value not taken for a row."""
    splitter = DumpSplitter(io.BytesIO(MYSQL_ROWS), block)
    counts = {}
    for section, chunks in splitter:
        b"".join(chunks)
        counts[section.name] = splitter.rows
    assert counts == {None: 0, "t": 4, "u": 0}


#: Values as mysqldump escapes them (backslashes; ``\'`` for a quote), each holding
#: what would be taken for a row boundary if quotes were not followed.
TRICKY_VALUES = [
    rb"'),('",
    rb"'a\'),(\''",  # a quote escaped next to the separator
    rb"'\\'",  # one backslash: the quote after it closes the value
    rb"'\\\'),(\\'",  # a backslash, then a quote escaped, then a separator
    rb"'x\n),(\ny\r\Z\0'",  # line breaks and control bytes, escaped
    rb"_binary '\0\'\\),(\Z" + b"\xff\xfe'",  # raw bytes of a BLOB without --hex-blob
    rb"0x292c28",  # hex of "),(" as --hex-blob writes it
    rb"NULL",
    rb"'{\"k\": \"),(\", \"q\": \"\'\"}'",  # JSON
    rb"''",
    rb"'it''s),(''x'",  # doubled quotes (NO_BACKSLASH_ESCAPES)
    rb"-1.5e+10",
]


@pytest.mark.parametrize("rows", [1, 2, 7, 50])
def test_rows_on_one_line_follows_the_quotes(rows: int) -> None:
    """``),(`` counts only between rows, whatever the values hold."""
    values = b",".join(
        b"(" + b",".join([str(i).encode(), *TRICKY_VALUES[i % 4 :]]) + b")" for i in range(rows)
    )
    assert rows_on_one_line(b" " + values) == rows
    for value in TRICKY_VALUES:  # each value alone, in one row and between two
        assert rows_on_one_line(b"(1," + value + b")") == 1, value
        assert rows_on_one_line(b"(1," + value + b"),(2," + value + b")") == 2, value


def test_blocks_have_one_size_whatever_the_statements() -> None:
    """Every block of a section but its last is exactly ``block`` bytes, even where
    that cuts a statement, and the blocks still join into the section's bytes."""
    rows = b",\n".join(b"(%d,'%s')" % (i, b"x" * (i % 37)) for i in range(400))
    table = (
        b"--\n-- Table structure for table `t`\n--\n\n"
        + b"".join(b"INSERT INTO `t` VALUES\n" + rows + b";\n" for _ in range(3))
        + b"\n"
    )
    dump = b"--\n-- Current Database: `d`\n--\n\nUSE `d`;\n\n" + table + b"-- Dump completed\n"
    for block in (64, 1000, 4096):
        splitter = DumpSplitter(io.BytesIO(dump), block=block)
        for section, chunks in splitter:
            blocks = list(chunks)
            if section.kind == "table":
                assert b"".join(blocks) == table
                assert {len(b) for b in blocks[:-1]} == {block}
                assert 0 < len(blocks[-1]) <= block
                assert splitter.rows == 1200


@pytest.mark.parametrize("block", [1 << 20, 7, 1])
def test_rows_of_tables_whose_names_hold_line_breaks_and_semicolons(block: int) -> None:
    """The table's name and its column list are stepped over before the statement's
    end is looked for and its rows counted: a name may hold ``;\\n``, ``VALUES``
    and doubled backquotes."""
    name = b"x\nDROP DATABASE victim;\n-- x` VALUES (9);\n"
    quoted = b"`" + name.replace(b"`", b"``") + b"`"
    table = (
        b"--\n-- Table structure for table " + quoted.replace(b"\n", b"\n-- ") + b"\n--\n\n"
        b"INSERT INTO " + quoted + b" VALUES\n(1,'a'),\n(2,'b');\n"
        b"INSERT INTO " + quoted + b" (`c\n;`, `d`) VALUES (3,'c');\n"
        b"INSERT INTO " + quoted + b" VALUES (4,'d'),\n(5,'e');\n\n"
    )
    dump = b"--\n-- Current Database: `d`\n--\n\nUSE `d`;\n\n" + table + b"-- Dump completed\n"
    splitter = DumpSplitter(io.BytesIO(dump), block=block)
    seen = []
    for section, chunks in splitter:
        body = b"".join(chunks)
        seen.append((section.kind, section.name, splitter.rows))
        if section.kind == "table":
            assert body == table
    assert seen == [
        ("database", None, 0),
        ("table", name.decode(), 5),
        ("trailer", None, 0),
    ]
