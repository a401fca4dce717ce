"""``verify``'s digest of a table file: on MySQL the ``CREATE TABLE`` is compared in a
canonical form (a column's character set written out or not before a collation of
that set), the rows never."""

from __future__ import annotations

from plakar_mysql.logical.verify import TableDigest

DUMPED = (
    b"CREATE TABLE `store` (\n"
    b"  `id` int NOT NULL,\n"
    b"  `name` varchar(80) COLLATE utf8mb4_unicode_ci NOT NULL,\n"
    b"  PRIMARY KEY (`id`)\n"
    b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n"
)
RELOADED = DUMPED.replace(
    b"COLLATE utf8mb4_unicode_ci NOT", b"CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT"
)
ROWS = b"INSERT INTO `store` VALUES (1,' CHARACTER SET utf8mb4 COLLATE utf8mb4_bin');\n"


def digest(canonical: bool, data: bytes, block: int) -> str:
    """The digest of ``data`` fed in blocks of ``block`` bytes."""
    table = TableDigest(canonical_create=canonical)
    for start in range(0, len(data), block):
        table.update(data[start : start + block])
    return table.hexdigest()


def test_a_reloaded_mysql_table_matches_its_dump_in_any_blocks() -> None:
    for block in (1, 7, 64, 1 << 20):
        assert digest(True, DUMPED + ROWS, block) == digest(True, RELOADED + ROWS, block)
    assert digest(False, DUMPED + ROWS, 64) != digest(False, RELOADED + ROWS, 64)


def test_rows_and_other_collations_still_differ() -> None:
    other_rows = ROWS.replace(b"CHARACTER SET utf8mb4 ", b"")
    assert digest(True, DUMPED + ROWS, 5) != digest(True, DUMPED + other_rows, 5)
    other_set = DUMPED.replace(
        b"COLLATE utf8mb4_unicode_ci NOT", b"CHARACTER SET latin1 COLLATE utf8mb4_unicode_ci NOT"
    )
    assert digest(True, DUMPED, 64) != digest(True, other_set, 64)
    bin_collation = RELOADED.replace(b"utf8mb4_unicode_ci NOT", b"utf8mb4_bin NOT")
    assert digest(True, DUMPED, 64) != digest(True, bin_collation, 64)
