"""A plain mysqldump file's ``SET @@GLOBAL.GTID_PURGED`` is left out, lines kept
(:mod:`plakar_mysql.logical.gtid_purged`)."""

from __future__ import annotations

import pytest

from plakar_mysql.logical.gtid_purged import without_gtid_purged

HEAD = b"-- MySQL dump 10.13\n/*!40101 SET NAMES utf8mb4 */;\n\n"
PURGED = (
    b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n"
    b"4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2';\n"
)
REST = b"\nCREATE DATABASE `d`;\nINSERT INTO `t` VALUES ('SET @@GLOBAL.GTID_PURGED=x');\n"


@pytest.mark.parametrize("size", [1, 9, 1 << 20])
def test_the_statement_becomes_a_comment_and_its_set_is_said(size: int) -> None:
    data = HEAD + PURGED + REST
    said: list[str] = []
    out = b"".join(
        without_gtid_purged([data[i : i + size] for i in range(0, len(data), size)], said.append)
    )
    assert out == HEAD + b"-- " + PURGED.replace(b",\n", b",\n-- ") + REST
    assert out.count(b"\n") == data.count(b"\n")
    assert len(said) == 1 and "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5," in said[0]


def test_a_dump_without_it_is_unchanged() -> None:
    said: list[str] = []
    assert b"".join(without_gtid_purged([HEAD, REST], said.append)) == HEAD + REST
    assert said == []
