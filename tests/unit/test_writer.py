"""Pieces of the snapshot writer and of the loader that work on byte streams."""

from __future__ import annotations

import pytest

from plakar_mysql.core.client import DefinerRewriter, TriggerRewriter
from plakar_mysql.logical.writer import ChunkReader, one_newline_at_end


@pytest.mark.parametrize(
    "chunks",
    [[b"a;\n\n\n"], [b"a;\n", b"\n", b"\n"], [b"a;"], [b"a;\n\nb;\n\n", b"\n"], [b"\n", b"a;\n"]],
)
def test_a_section_ends_in_exactly_one_newline(chunks: list[bytes]) -> None:
    out = b"".join(one_newline_at_end(chunks))
    assert out == b"".join(chunks).rstrip(b"\n") + b"\n"


def test_chunk_reader_honours_sizes_and_drains_on_close() -> None:
    closed: list[bool] = []
    produced: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(3):
            produced.append(i)
            yield bytes([65 + i]) * 10

    reader = ChunkReader(chunks(), lambda: closed.append(True))
    assert reader.read(4) == b"AAAA"
    assert reader.read(100) == b"AAAAAA"
    reader.close()
    assert produced == [0, 1, 2] and closed == [True]


def test_definer_rewrite_touches_only_definer_clauses() -> None:
    text = (
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`ro``ot`@`l ocal`*/ /*!50003 TRIGGER x */;;\n"
        b"/*!50013 DEFINER=`u`@`%` SQL SECURITY DEFINER */\n"
        b"CREATE DEFINER=`u`@`%` PROCEDURE `p`()\n"
        b"/*!50106 CREATE*/ /*!50117 DEFINER=`u`@`%`*/ /*!50106 EVENT `e` */ ;;\n"
        b"INSERT INTO t VALUES ('CREATE DEFINER=`u`@`%`');\n"
    )
    for size in (1, 7, len(text)):
        blocks = [text[i : i + size] for i in range(0, len(text), size)]
        out = b"".join(DefinerRewriter()(blocks))
        assert out.count(b"DEFINER=CURRENT_USER") == 4
        assert out.endswith(b"INSERT INTO t VALUES ('CREATE DEFINER=`u`@`%`');\n")


def test_trigger_rewriter_drops_the_database_qualifier_of_name_and_table() -> None:
    """A trigger typed as ``CREATE TRIGGER shop.t ... ON shop.a`` loads into the
    database the file is loaded into (a shadow, or another name); bodies, rows
    and other statements are left alone."""
    text = (
        b"INSERT INTO `a` VALUES (1,'/*!50003 CREATE*/ /*!50003 TRIGGER shop.x');\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`r o`@`%`*/ /*!50003 TRIGGER shop.ta before"
        b" insert ON shop.a FOR EACH ROW INSERT INTO shop.log VALUES (1) */;;\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER `we``ird`.`t b`"
        b" AFTER DELETE ON `we``ird` . `a b` FOR EACH ROW SET @x = 1 */;;\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`u`@`%`*/ /*!50003 TRIGGER tc AFTER UPDATE"
        b" ON a FOR EACH ROW SET @x = 2 */;;\n"
    )
    expected = (
        b"INSERT INTO `a` VALUES (1,'/*!50003 CREATE*/ /*!50003 TRIGGER shop.x');\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`r o`@`%`*/ /*!50003 TRIGGER ta before"
        b" insert ON a FOR EACH ROW INSERT INTO shop.log VALUES (1) */;;\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER `t b`"
        b" AFTER DELETE ON `a b` FOR EACH ROW SET @x = 1 */;;\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`u`@`%`*/ /*!50003 TRIGGER tc AFTER UPDATE"
        b" ON a FOR EACH ROW SET @x = 2 */;;\n"
    )
    for size in (1, 7, len(text)):
        blocks = [text[i : i + size] for i in range(0, len(text), size)]
        dropped: dict[str, tuple[str, str]] = {}
        assert b"".join(TriggerRewriter(dropped)(blocks)) == expected
        assert dropped == {"ta": ("shop.", "shop."), "t b": ("`we``ird`.", "`we``ird` . ")}


def test_rewriters_pass_blocks_without_their_word_through_untouched() -> None:
    """Rows are most of a dump: a block of whole lines without ``DEFINER=`` or
    ``TRIGGER`` comes out as the very same object, and a statement cut across
    many blocks is rewritten once it ends, as if it had come whole."""
    rows = b"INSERT INTO `t` VALUES (1,'a'),(2,'b');\n" * 1000
    assert next(DefinerRewriter()([rows])) is rows
    assert next(TriggerRewriter()([rows])) is rows
    view = b"/*!50013 DEFINER=`u`@`%` SQL SECURITY DEFINER */ " + b"x" * 100_000 + b"\n"
    pieces = [view[i : i + 4096] for i in range(0, len(view), 4096)] + [rows]
    out = list(DefinerRewriter()(pieces))
    assert b"".join(out) == view.replace(b"DEFINER=`u`@`%`", b"DEFINER=CURRENT_USER") + rows
