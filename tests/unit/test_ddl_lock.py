"""The rewriting that runs each table's DDL alone on MySQL targets
(:mod:`plakar_mysql.logical.ddl_lock`): what it adds, what it leaves out, and
that it never touches rows, quoted text or trigger bodies."""

from __future__ import annotations

import pytest

from plakar_mysql.logical.ddl_lock import DdlSerializer

HEAD = (
    b"-- plakar-mysql table file\n"
    b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
    b"DROP TABLE IF EXISTS `staff`;\n"
    b"CREATE TABLE `staff` (\n"
    b"  `id` int NOT NULL,\n"
    # a quoted default that holds what looks like the lines taken out
    b"  `note` varchar(80) DEFAULT 'a\n"
    b"LOCK TABLES `staff` WRITE;\n"
    b"UNLOCK TABLES;\n"
    b"',\n"
    b"  PRIMARY KEY (`id`)\n"
    b") ENGINE=InnoDB;\n"
)
ROWS = (
    b"/*!40000 ALTER TABLE `staff` DISABLE KEYS */;\n"
    b"INSERT INTO `staff` VALUES (1,'UNLOCK TABLES;\\nx'),(2,'),(');\n"
    b"/*!40000 ALTER TABLE `staff` ENABLE KEYS */;\n"
)
TAIL = (
    b"DELIMITER ;;\n"
    b"/*!50003 CREATE*/ /*!50003 TRIGGER t BEFORE INSERT ON staff FOR EACH ROW SET NEW.note = '\n"
    b"UNLOCK TABLES;\n"
    b"' */;;\n"
    b"DELIMITER ;\n"
)
FILE = HEAD + b"LOCK TABLES `staff` WRITE;\n" + ROWS + b"UNLOCK TABLES;\n" + TAIL
ACQUIRE = b"DO GET_LOCK('plakar_ddl_x', 7);\n"
RELEASE = b"DO RELEASE_LOCK('plakar_ddl_x');\n"


def rewrite(data: bytes, size: int) -> bytes:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(DdlSerializer("plakar_ddl_x", 7)(chunks))


@pytest.mark.parametrize("size", [1, 2, 7, 16, 100, 1 << 20])
def test_the_ddl_runs_under_the_lock_and_the_table_locks_are_left_out(size: int) -> None:
    """Whatever the chunks: the lock taken first, released where LOCK TABLES was,
    UNLOCK TABLES gone; the quoted default, the rows and the trigger as they were."""
    assert rewrite(FILE, size) == ACQUIRE + HEAD + RELEASE + ROWS + TAIL


@pytest.mark.parametrize("size", [3, 1 << 20])
def test_a_file_without_table_locks_releases_before_its_rows(size: int) -> None:
    """``--skip-add-locks`` dumps: the lock is released before the first INSERT."""
    assert (
        rewrite(HEAD + ROWS.split(b"\n", 1)[1] + TAIL, size)
        == ACQUIRE + HEAD + RELEASE + ROWS.split(b"\n", 1)[1] + TAIL
    )


def test_a_file_without_rows_or_triggers_releases_at_its_end() -> None:
    assert rewrite(HEAD, 5) == ACQUIRE + HEAD + RELEASE
    assert rewrite(HEAD + TAIL, 5) == ACQUIRE + HEAD + RELEASE + TAIL


def test_the_lock_name_is_quoted() -> None:
    out = b"".join(DdlSerializer("a'b\\c", 3)([b""]))
    assert out.startswith(b"DO GET_LOCK('a\\'b\\\\c', 3);\n")
