"""A small corpus holding every kind of object and value a MariaDB 10.11 server keeps.

A backup is only as good as the hardest database it was tried on.  This
corpus gathers, in a few hundred rows that load in about a second, what a
dump and its restore can get wrong (issue 3):

* every column type of MariaDB 10.11 at its extremes: all integer sizes,
  signed and unsigned, at their minimum and maximum; ``DECIMAL(65,30)``;
  FLOAT and DOUBLE at their largest, smallest and denormal values (``-0``
  is inserted too, although the server stores it as ``0``); ``BIT(64)``;
  temporal types at their limits, zero dates and six fractional digits;
  text in many character sets (every byte of latin1, 4-byte UTF-8,
  multi-byte charsets whose second byte is a backslash); binary types with
  all 256 byte values, both in one value and one byte per row; ENUM, SET,
  JSON, INET4, INET6, UUID and every geometry type;
* NULL versus ``''`` versus ``'NULL'`` (and ``'\\N'``, ``'null'``) in text,
  binary and JSON columns;
* VIRTUAL and STORED generated columns, INVISIBLE columns, CHECK
  constraints, expression defaults, a default taken from a SEQUENCE, long
  unique (hash) keys, descending and ignored indexes;
* system-versioned tables with real history (rows inserted, updated and
  deleted at fixed times), implicit and explicit period columns, one
  partitioned by SYSTEM_TIME; an application-time period table;
* sequences in a used state; tables partitioned by RANGE, LIST COLUMNS,
  HASH, KEY and with subpartitions; MyISAM (FULLTEXT, SPATIAL), Aria,
  MEMORY, CSV and MERGE tables; compressed InnoDB; a table without a
  primary key holding duplicate rows; an empty table;
* foreign-key cycles within a database, across two databases and on a
  table itself;
* triggers (ordered with FOLLOWS/PRECEDES), procedures, functions, an
  aggregate function and an Oracle-mode package whose bodies hold ``;;``,
  ``--``, ``/* */`` and ``#`` comments, quotes of every kind, backslashes, a
  line ``-- Table structure for table `x``` and a line ``DELIMITER ;``;
  routines created under ANSI_QUOTES;
* views over views, across databases (in both directions), calling a stored
  function, WITH CHECK OPTION, TEMPTABLE, SQL SECURITY INVOKER, with a
  definer that is not root;
* events (recurring, one-time, disabled, disabled on replicas) with the
  same awkward bodies;
* users with column, table, routine, database and global grants, password
  and resource options, a locked account, roles granted to users and to
  roles (WITH ADMIN OPTION), default roles, grants to PUBLIC, user names
  equal but for case;
* awkward identifiers as database names *and* table names: unicode,
  spaces, quotes, backticks, ``/``, ``%``, ``.``, ``..``, a leading ``.``,
  names equal but for case (the servers run with
  ``lower_case_table_names=0``), ``all``, ``server``, ``manifest.json``,
  ``dump.sql``, and a 64-character name.

The corpus is a list of statements (:func:`statements`) run in order on one
connection by :func:`load_corpus`, not a script for the ``mariadb`` client:
the client would discard the comments inside routine bodies (it does unless
given ``--comments``) and would split statements on its own idea of the
delimiter, while these bodies are the very thing under test.  Everything is
deterministic: the session runs in UTC with a fixed ``timestamp``, so
defaults such as ``CURRENT_TIMESTAMP`` and the history of system-versioned
tables are the same on every load.

Event scheduling stays off on the test servers (MariaDB's default), so no
event runs and changes the corpus while it is compared.

A few parts are things the stock tools themselves (``mariadb-dump`` and the
``mariadb`` client of MariaDB 10.11) cannot carry - events holding ``;;``, an
event in a database whose name holds a quote, FLOAT values needing more than
six digits, a sequence that has cycled, package privileges, grants to PUBLIC,
``/*!`` inside a comment of a routine.  They are named, with the reason, in
:data:`STOCK_TOOL_HAZARDS`, and can be left out (``without=``) where the
stock tools are what is being tested; a backup that claims to restore every
object exactly has to get them right as well.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier

__all__ = [
    "ACCOUNTS",
    "ALL_DB",
    "AWKWARD_DB",
    "AWKWARD_TABLE",
    "DATABASES",
    "DOTS_DB",
    "MANIFEST_DB",
    "SERVER_DB",
    "SERVER_TWIN_DB",
    "STOCK_TOOL_HAZARDS",
    "TYPES_DB",
    "load_corpus",
    "statements",
]

TYPES_DB = "corpus_types"
"""Every column type and value; a plain name."""
SERVER_DB = "server"
"""Versioning, sequences, partitions, engines, cycles, routines, views, events."""
SERVER_TWIN_DB = "Server"
"""Equal to :data:`SERVER_DB` but for case."""
ALL_DB = "all"
"""A reserved word; the other end of cross-database cycles and views."""
AWKWARD_DB = ".a/b%c`d'e\"f ü\\ ẞ"
"""Leading dot, slash, percent, backtick, both quotes, space, backslash, unicode."""
DOTS_DB = ".."
"""A name that is a path component."""
MANIFEST_DB = "manifest.json"
"""The name of a file in this integration's snapshots."""
AWKWARD_TABLE = "ta ble'\"`x ü"
"""A table (of :data:`AWKWARD_DB`) with quotes, a backtick, a space and unicode."""

DATABASES: tuple[str, ...] = (
    TYPES_DB,
    SERVER_DB,
    SERVER_TWIN_DB,
    ALL_DB,
    AWKWARD_DB,
    DOTS_DB,
    MANIFEST_DB,
)
"""Every database the corpus creates."""

ACCOUNTS: tuple[str, ...] = (
    "'corpus_app'@'%'",
    "'Corpus_app'@'%'",
    "'corpus_col'@'localhost'",
    "'corpus_exec'@'10.0.%'",
    "'we''ird u`ser ü'@'host-name.example'",
    "'corpus_locked'@'localhost'",
    "'corpus_reader'",
    "'corpus_writer'",
)
"""Every account and role the corpus creates, named as :func:`support.compare.describe_accounts`
names them (the "public-grant" part adds grants to ``PUBLIC``)."""

#: Text that breaks naive statement splitting and comment stripping, as the
#: body of an SQL string literal (quotes and backslashes escaped).
_NASTY_STRING = (
    r"semi;;colons -- dashes /* star */ # hash ''single'' \"double\" `back``tick` "
    r"\\backslash\\ \n-- Table structure for table `x`\nDELIMITER ;\n/*!50003 x */"
)

#: A routine, trigger or event body: every comment style, ``;;`` in comments and
#: strings, quotes of every kind, lines that look like dump markers.  It assigns
#: to ``@corpus_out`` only, so it runs anywhere.
_NASTY_BODY = f"""BEGIN
  -- Table structure for table `x`
  /* a block comment ;; with -- and # inside */
  # a hash comment ;; 'with an unbalanced quote
  DECLARE s TEXT DEFAULT '{_NASTY_STRING}';
  DECLARE q TEXT DEFAULT "double \\"quoted\\" and 'single' ;;";
  SET @corpus_out = CONCAT(s, q, '
DELIMITER ;
-- Table structure for table `x`
;;
'); -- trailing comment ;;
  SET @corpus_out = CONCAT(@corpus_out, `corpus_nasty_helper`());  /* a comment */
END"""

_DEFINER = "DEFINER=`root`@`localhost`"
_ANSI_DEFINER = 'DEFINER="root"@"localhost"'
"""The definer clause under ANSI_QUOTES (Oracle mode included)."""


def _q(name: str) -> str:
    return quote_identifier(name)


def _utf8(text: str) -> str:
    """``text`` as a binary-safe, sql_mode-independent utf8mb4 literal."""
    return f"_utf8mb4 X'{text.encode('utf-8').hex()}'" if text else "''"


def _hex(data: bytes) -> str:
    return f"X'{data.hex()}'" if data else "''"


ALL_BYTES = bytes(range(256))
"""Every byte value, in order."""


def _at(when: str) -> str:
    """Fix the session clock (UTC): history rows and defaults get this time."""
    return f"SET timestamp = UNIX_TIMESTAMP('{when}')"


# -- databases --------------------------------------------------------------------------


def _databases() -> Iterator[str]:
    yield (
        f"CREATE DATABASE {_q(TYPES_DB)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci "
        "COMMENT 'every type; it''s -- \"quoted\"'"
    )
    yield f"CREATE DATABASE {_q(SERVER_DB)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    yield f"CREATE DATABASE {_q(SERVER_TWIN_DB)} CHARACTER SET latin1 COLLATE latin1_bin"
    yield f"CREATE DATABASE {_q(ALL_DB)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    yield f"CREATE DATABASE {_q(AWKWARD_DB)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    yield f"CREATE DATABASE {_q(DOTS_DB)} CHARACTER SET utf8mb3"
    yield f"CREATE DATABASE {_q(MANIFEST_DB)} CHARACTER SET ascii"


# -- every column type ------------------------------------------------------------------


def _types() -> Iterator[str]:
    db = _q(TYPES_DB)
    yield f"USE {db}"
    yield """CREATE TABLE integers (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, zf INT(8) UNSIGNED ZEROFILL, b BOOLEAN
)"""
    yield """INSERT INTO integers VALUES
  (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
   -9223372036854775808, 0, 0, FALSE),
  (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
   9223372036854775807, 18446744073709551615, 4294967295, TRUE),
  (3, 0, 1, -1, 1, -1, 1, -1, 1, -1, 1, 42, -128),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""
    big = "9" * 35 + "." + "9" * 30
    tiny = "0." + "0" * 29 + "1"
    yield """CREATE TABLE decimals (
  id INT PRIMARY KEY, d DECIMAL(65,30), dz DECIMAL(65,0), du DECIMAL(10,2) UNSIGNED,
  n NUMERIC(5,5), f DECIMAL(3,0) NOT NULL DEFAULT -999
)"""
    yield f"""INSERT INTO decimals VALUES
  (1, {big}, {"9" * 65}, 99999999.99, 0.99999, 999),
  (2, -{big}, -{"9" * 65}, 0, -0.99999, -999),
  (3, {tiny}, 0, 0.01, 0.00001, 0),
  (4, -{tiny}, 1, NULL, NULL, 1),
  (5, NULL, NULL, 12345678.90, -0.00001, DEFAULT)"""
    yield """CREATE TABLE floats (
  id INT PRIMARY KEY, f FLOAT, d DOUBLE, r REAL, fp FLOAT(30), dm DOUBLE(10,4), fm FLOAT(7,3)
)"""
    # FLOAT values whose shortest text has at most six significant digits: what
    # the server prints for a FLOAT (see the "float-precision" hazard).
    yield """INSERT INTO floats VALUES
  (1, 3.40282e38, 1.7976931348623157e308, -1.7976931348623157e308, 1e300,
   999999.9999, 9999.999),
  (2, -3.40282e38, 2.2250738585072014e-308, 4.9e-324, -4.9e-324, -999999.9999, -9999.999),
  (3, 1.17549e-38, -2.2250738585072014e-308, -4.9e-324, 0.1, 0.0001, 0.001),
  (4, 1.4013e-45, 0.1, 0.30000000000000004, 1.2345678901234567, -0.0001, -0.001),
  (5, 1.5, -0e0, -0.0, 123456789012345678, 0, 0),
  (6, 0.1, 3.141592653589793, 2.718281828459045, NULL, NULL, NULL),
  (7, NULL, NULL, NULL, -0e0, -0.0, -0.0)"""
    yield "CREATE TABLE bits (id INT PRIMARY KEY, b1 BIT(1), b7 BIT(7), b64 BIT(64))"
    yield f"""INSERT INTO bits VALUES
  (1, b'0', b'0000000', b'{"0" * 64}'),
  (2, b'1', b'1111111', b'{"1" * 64}'),
  (3, 1, 85, 0x8000000000000000),
  (4, NULL, b'1000000', 0x0000000000000001),
  (5, 0, NULL, NULL)"""
    yield """CREATE TABLE temporals (
  id INT PRIMARY KEY,
  d DATE, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
  ts0 TIMESTAMP NULL DEFAULT NULL, t TIME, t6 TIME(6), y YEAR,
  changed TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
)"""
    yield "SET SESSION sql_mode = ''"  # zero dates
    yield """INSERT INTO temporals (id, d, dt, dt6, ts, ts0, t, t6, y) VALUES
  (1, '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000000',
   '1970-01-01 00:00:01.000000', '1970-01-01 00:00:01', '-838:59:59', '-838:59:59.999999', 1901),
  (2, '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999',
   '2038-01-19 03:14:07.999999', '2038-01-19 03:14:07', '838:59:59', '838:59:59.999999', 2155),
  (3, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000',
   '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', '-00:00:00.000001', 0),
  (4, '0001-01-01', '0001-01-01 00:00:00', '2024-02-29 12:34:56.000001',
   '2000-02-29 23:59:59.999999', '2021-03-28 01:30:00', '-00:00:01', '00:00:00.5', 2000),
  (5, '2020-00-15', '2020-12-00 10:00:00', '2020-00-00 00:00:00.100000',
   NULL, NULL, NULL, NULL, NULL)"""
    yield "SET SESSION sql_mode = DEFAULT"
    # Strings in many character sets; the special rows come from NULL_LIKE and ALL_BYTES.
    cjk = {"sjis": "予兔十表", "gbk": "乗俓僜", "big5": "么佢俞"}
    unicode_sample = (
        "\u0000 nul, \t tab, \r\n crlf, \x1a ctrl-z, \u00a0 nbsp, \ufeff bom, é (e\u0301), "
        "\u202e rtl, \uffff, 𝄞 😀 \U0010ffff, ü ẞ ß İ \u0131, 中文, עִבְרִית"
    )
    bmp_sample, ucs2_sample = "€ ü \u0000 \uffff", "ucs2 \uffff é"
    yield """CREATE TABLE strings (
  id INT PRIMARY KEY,
  c CHAR(255) CHARACTER SET utf8mb4, vc VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  tt TINYTEXT, t TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci,
  mt MEDIUMTEXT, lt LONGTEXT,
  l1 VARCHAR(300) CHARACTER SET latin1, a VARCHAR(200) CHARACTER SET ascii,
  u3 VARCHAR(50) CHARACTER SET utf8mb3, u16 VARCHAR(50) CHARACTER SET utf16,
  u16le VARCHAR(50) CHARACTER SET utf16le, u32 TEXT CHARACTER SET utf32,
  uc2 VARCHAR(50) CHARACTER SET ucs2, sj VARCHAR(20) CHARACTER SET sjis,
  gb VARCHAR(20) CHARACTER SET gbk, b5 VARCHAR(20) CHARACTER SET big5,
  nc NATIONAL CHAR(10), cb CHAR(5) BINARY
)"""
    yield f"""INSERT INTO strings VALUES
  (1, {_utf8("trailing spaces are cut from CHAR   ")}, {_utf8(unicode_sample + "  ")},
   {_utf8("ü" * 60)}, {_utf8(unicode_sample)}, {_utf8(unicode_sample * 3)},
   {_utf8(unicode_sample * 20)}, CONVERT({_hex(ALL_BYTES)} USING latin1),
   CONVERT({_hex(bytes(range(128)))} USING ascii), {_utf8(bmp_sample)},
   {_utf8("𝄞 surrogate pair 😀")}, {_utf8("le 𝄞")}, {_utf8(unicode_sample)},
   {_utf8(ucs2_sample)}, {_utf8(cjk["sjis"])}, {_utf8(cjk["gbk"])}, {_utf8(cjk["big5"])},
   {_utf8("nchar ñ")}, 'AbC'),
  (2, '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', ''),
  (3, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL',
   'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL'),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL),
  (5, '\\\\N', '\\\\N', 'null', '\\\\0', '\\0', ' ', ' ', '\\t', '\\\\', '"', '`', '''',
   '\\n', '\\r', '%', '_', '\\\\%', ' x ')"""
    bom, tail, backslash_n = b"\xef\xbb\xbfbom", b"\xff\xfe\x00", rb"\N"
    yield """CREATE TABLE binaries (
  id INT PRIMARY KEY, b BINARY(16), vb VARBINARY(256), tb TINYBLOB, bl BLOB,
  mb MEDIUMBLOB, lb LONGBLOB, c255 BINARY(255)
)"""
    yield f"""INSERT INTO binaries VALUES
  (1, {_hex(ALL_BYTES[:16])}, {_hex(ALL_BYTES)}, {_hex(ALL_BYTES[1:])}, {_hex(ALL_BYTES)},
   {_hex(ALL_BYTES[::-1])}, {_hex(ALL_BYTES * 8)}, {_hex(ALL_BYTES[:255])}),
  (2, X'00', X'00', X'00', X'0000', X'20', X'5c', X'00ff'),
  (3, '', '', '', '', '', '', ''),
  (4, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL'),
  (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (6, X'20202020', X'2020', X'0a0d', X'1a', X'27', X'22', X'60'),
  (7, {_hex(ALL_BYTES[240:])}, X'5c30', X'5c4e', {_hex(backslash_n)}, X'4e554c4c',
   {_hex(bom)}, {_hex(tail)})"""
    # One byte per row: every byte alone, as the last byte of a value and in text.
    yield """CREATE TABLE each_byte (
  n SMALLINT UNSIGNED PRIMARY KEY, b BINARY(1) NOT NULL, vb VARBINARY(3) NOT NULL,
  bl BLOB NOT NULL, l1 VARCHAR(3) CHARACTER SET latin1 NOT NULL,
  u CHAR(1) CHARACTER SET utf8mb4, KEY (vb)
)"""
    yield """INSERT INTO each_byte
  SELECT seq, CHAR(seq), CONCAT('a', CHAR(seq)), CONCAT(CHAR(seq), CHAR(seq)),
         CONVERT(CONCAT(CHAR(seq), 'z', CHAR(seq)) USING latin1), CHAR(seq USING utf32)
  FROM seq_0_to_255"""
    yield """CREATE TABLE enums_sets (
  id INT PRIMARY KEY,
  e ENUM('', 'a', 'NULL', 'it''s', 'ü', 'back\\\\slash', 'dq"', 'bt`') DEFAULT 'a',
  s SET('a', 'b', 'ü', 'it''s', '') NOT NULL DEFAULT '',
  en ENUM('x', 'y') NOT NULL
)"""
    yield """INSERT INTO enums_sets VALUES
  (1, '', '', 'x'), (2, 'NULL', 'a,b', 'y'), (3, 'it''s', 'a,b,ü,it''s', 'x'),
  (4, NULL, 'ü', 'y'), (5, 'back\\\\slash', ',a', 'x'), (6, 'dq"', 'b,a', 'y'),
  (7, 'bt`', '', 'x'), (8, DEFAULT, DEFAULT, 'y')"""
    yield """CREATE TABLE json_docs (
  id INT PRIMARY KEY, j JSON, jn JSON NOT NULL DEFAULT '{}',
  name VARCHAR(50) AS (JSON_VALUE(j, '$.name')) VIRTUAL
)"""
    json_values = [
        '{"name": "ü \\u00fc \\"q\\"", "nested": {"a": [1, 2.5e300, -0, true, null]}}',
        "  [ 1 ,\n 2 ]  ",
        "null",
        '"NULL"',
        '""',
        '{"dup": 1, "dup": 2}',
        '{"big": 123456789012345678901234567890, "tiny": 1e-400}',
        '"line\\nbreak ;; -- /* */ # \'"',
    ]
    rows = ",\n  ".join(
        f"({n}, {_utf8(value)}, {_utf8(value)})" for n, value in enumerate(json_values, 1)
    )
    yield f"INSERT INTO json_docs (id, j, jn) VALUES\n  {rows},\n  (99, NULL, DEFAULT)"
    yield """CREATE TABLE net_uuid (
  id INT PRIMARY KEY, v4 INET4, v6 INET6, u UUID,
  ud UUID DEFAULT '00000000-0000-0000-0000-000000000001'
)"""
    yield """INSERT INTO net_uuid (id, v4, v6, u) VALUES
  (1, '0.0.0.0', '::', '00000000-0000-0000-0000-000000000000'),
  (2, '255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
   'ffffffff-ffff-ffff-ffff-ffffffffffff'),
  (3, '127.0.0.1', '::ffff:192.0.2.1', '6ccd780c-baba-1026-9564-5b8c656024db'),
  (4, '10.0.0.1', '2001:db8::1', '123e4567-e89b-42d3-a456-426614174000'),
  (5, NULL, NULL, NULL)"""
    yield """CREATE TABLE geometries (
  id INT PRIMARY KEY, g GEOMETRY, p POINT, l LINESTRING, pg POLYGON, mp MULTIPOINT,
  ml MULTILINESTRING, mpg MULTIPOLYGON, gc GEOMETRYCOLLECTION,
  srid POINT REF_SYSTEM_ID=4326, k POINT NOT NULL, SPATIAL INDEX (k)
)"""
    yield """INSERT INTO geometries VALUES
  (1, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-1.7976931348623157e308 4.9e-324)'),
   ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)'),
   ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))'),
   ST_GeomFromText('MULTIPOINT(0 0, 1 1)'),
   ST_GeomFromText('MULTILINESTRING((0 0, 1 1), (2 2, 3 3))'),
   ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))'),
   ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(0 0, 1 1))'),
   ST_GeomFromText('POINT(2.3522 48.8566)', 4326), POINT(0, 0)),
  (2, ST_GeomFromText('GEOMETRYCOLLECTION EMPTY'), POINT(1.7976931348623157e308, -0.5),
   NULL, NULL, NULL, NULL, NULL, ST_GeomFromText('GEOMETRYCOLLECTION EMPTY'), NULL,
   POINT(180, -90)),
  (3, ST_GeomFromText('POLYGON((0 0, 1 0, 0 1, 0 0))', 3857), NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, POINT(1, 1))"""
    # NULL versus empty versus the string 'NULL', in every kind of column.
    yield """CREATE TABLE null_like (
  id INT PRIMARY KEY, v VARCHAR(10), t TEXT, c CHAR(4), b BLOB, vb VARBINARY(10), j JSON,
  e ENUM('', 'NULL'), i INT, nn VARCHAR(10) NOT NULL DEFAULT ''
)"""
    yield """INSERT INTO null_like VALUES
  (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ''),
  (2, '', '', '', '', '', '""', '', 0, 'NULL'),
  (3, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'null', 'NULL', -1, 'null'),
  (4, 'null', 'null', 'null', 'null', 'null', '"NULL"', NULL, NULL, '\\\\N'),
  (5, '\\\\N', '\\\\N', '\\\\N', '\\\\N', '\\\\N', '"\\\\\\\\N"', NULL, NULL, ' ')"""
    # Generated, invisible, checked and defaulted columns; keys the dump must rebuild.
    yield """CREATE TABLE computed (
  id INT PRIMARY KEY,
  price DECIMAL(10,2) NOT NULL CHECK (price >= 0),
  qty INT NOT NULL DEFAULT 1,
  total DECIMAL(12,2) AS (price * qty) STORED,
  label VARCHAR(60) AS (CONCAT('it''s ', id, ' -- ', qty)) VIRTUAL,
  secret VARCHAR(20) INVISIBLE DEFAULT 'hidden',
  secret_num INT INVISIBLE,
  created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  expr INT DEFAULT (1 + 2 * 3),
  note VARCHAR(40) DEFAULT 'it''s "quoted" ;; -- not a comment' COMMENT 'col ''comment'' ;;',
  doc BLOB, UNIQUE KEY doc_unique (doc) USING HASH,
  KEY by_label (label), KEY by_total (total DESC), KEY ignored_qty (qty) IGNORED,
  CONSTRAINT `positive qty` CHECK (qty > 0),
  CONSTRAINT `it's checked` CHECK (note <> 'never ''this'' -- one')
) COMMENT = 'table ''comment'' -- with /* markers */ ;;'"""
    yield """INSERT INTO computed (id, price, qty, secret, secret_num, doc) VALUES
  (1, 0, 1, 'invisible ü', 7, 'a'), (2, 99999999.99, 3, NULL, NULL, 'b'),
  (3, 12.5, 2, DEFAULT, -1, NULL), (4, 1, 1, '', 0, NULL)"""


# -- versioning, sequences, partitions, engines, keys -----------------------------------


def _server_tables() -> Iterator[str]:
    yield f"USE {_q(SERVER_DB)}"
    # System-versioned tables with history made at fixed times.
    yield _at("2020-01-01 00:00:00")
    yield """CREATE TABLE versioned (
  id INT PRIMARY KEY, v VARCHAR(20), b BLOB
) WITH SYSTEM VERSIONING"""
    yield """CREATE TABLE versioned_explicit (
  id INT PRIMARY KEY, v VARCHAR(20),
  valid_from TIMESTAMP(6) GENERATED ALWAYS AS ROW START INVISIBLE,
  valid_to TIMESTAMP(6) GENERATED ALWAYS AS ROW END INVISIBLE,
  PERIOD FOR SYSTEM_TIME (valid_from, valid_to)
) WITH SYSTEM VERSIONING"""
    yield """CREATE TABLE versioned_partitioned (id INT, v VARCHAR(20))
  WITH SYSTEM VERSIONING
  PARTITION BY SYSTEM_TIME (PARTITION p_hist HISTORY, PARTITION p_cur CURRENT)"""
    yield """CREATE TABLE versioned_some (
  id INT PRIMARY KEY, tracked VARCHAR(20), untracked VARCHAR(20) WITHOUT SYSTEM VERSIONING
) WITH SYSTEM VERSIONING"""
    for table in ("versioned", "versioned_explicit", "versioned_partitioned"):
        extra = ", X'00ff'" if table == "versioned" else ""
        yield (
            f"INSERT INTO {table} VALUES (1, 'one'{extra}), (2, 'two'{extra}), (3, 'three'{extra})"
        )
    yield "INSERT INTO versioned_some VALUES (1, 'a', 'x'), (2, 'b', 'y')"
    yield _at("2021-06-15 12:30:45.123456")
    for table in ("versioned", "versioned_explicit", "versioned_partitioned"):
        yield f"UPDATE {table} SET v = CONCAT(v, ' (changed)') WHERE id <= 2"
    yield "UPDATE versioned_some SET tracked = 'a2', untracked = 'x2' WHERE id = 1"
    yield "UPDATE versioned_some SET untracked = 'y2' WHERE id = 2"
    yield _at("2022-12-31 23:59:59.999999")
    for table in ("versioned", "versioned_explicit", "versioned_partitioned"):
        yield f"DELETE FROM {table} WHERE id = 3"
        yield f"UPDATE {table} SET v = 'again' WHERE id = 1"
    yield _at("2023-03-01 00:00:00")
    yield "INSERT INTO versioned VALUES (4, 'born late', NULL)"
    yield """CREATE TABLE app_period (
  id INT, starts DATE NOT NULL, ends DATE NOT NULL, price INT,
  PERIOD FOR valid (starts, ends), PRIMARY KEY (id, valid WITHOUT OVERLAPS)
)"""
    yield """INSERT INTO app_period VALUES
  (1, '2020-01-01', '2021-01-01', 10), (1, '2021-01-01', '2030-01-01', 12)"""
    # Sequences: one used by a default, one cycling, one awkward; all in a used state.
    yield """CREATE SEQUENCE seq START WITH 100 INCREMENT BY 7 MINVALUE 10
  MAXVALUE 1000000 CACHE 5 NOCYCLE"""
    yield """CREATE SEQUENCE `seq cycling ü` START WITH -3 INCREMENT BY -2 MINVALUE -9
  MAXVALUE 9 CACHE 0 CYCLE ENGINE=Aria"""
    yield "CREATE SEQUENCE seq_unused"
    yield """CREATE TABLE uses_seq (
  id BIGINT NOT NULL DEFAULT (NEXT VALUE FOR seq) PRIMARY KEY, v VARCHAR(10)
)"""
    yield "INSERT INTO uses_seq (v) VALUES ('a'), ('b'), ('c')"
    yield "SELECT NEXTVAL(`seq cycling ü`) FROM seq_1_to_2"  # not cycled yet
    # Partitioned tables.
    yield """CREATE TABLE part_range (
  id INT NOT NULL, d DATE NOT NULL, v VARCHAR(10), PRIMARY KEY (id, d)
) PARTITION BY RANGE (YEAR(d)) (
  PARTITION p_old VALUES LESS THAN (2000) COMMENT 'it''s -- old',
  PARTITION `p 2020` VALUES LESS THAN (2021),
  PARTITION p_max VALUES LESS THAN MAXVALUE
)"""
    yield """INSERT INTO part_range VALUES
  (1, '1999-12-31', 'old'), (2, '2020-06-01', 'mid'), (3, '2024-01-01', 'new'),
  (4, '1000-01-01', NULL)"""
    yield """CREATE TABLE part_list (
  code VARCHAR(10) NOT NULL, n INT
) PARTITION BY LIST COLUMNS (code) (
  PARTITION p_a VALUES IN ('a', 'b', 'NULL'), PARTITION p_other VALUES IN ('', 'ü', 'z')
)"""
    yield "INSERT INTO part_list VALUES ('a', 1), ('NULL', 2), ('', 3), ('ü', 4), ('a', 1)"
    yield """CREATE TABLE part_hash (id INT PRIMARY KEY, v INT)
  ENGINE=MyISAM PARTITION BY HASH (id) PARTITIONS 4"""
    yield "INSERT INTO part_hash SELECT seq, seq * seq FROM seq_1_to_20"
    yield """CREATE TABLE part_key (k VARCHAR(20) PRIMARY KEY, v INT)
  PARTITION BY KEY (k) PARTITIONS 3"""
    yield "INSERT INTO part_key VALUES ('x', 1), ('y', 2), ('zz', 3), ('ü', 4)"
    yield """CREATE TABLE part_sub (id INT NOT NULL, y INT NOT NULL)
  PARTITION BY RANGE (y) SUBPARTITION BY HASH (id) SUBPARTITIONS 2 (
    PARTITION p0 VALUES LESS THAN (2000), PARTITION p1 VALUES LESS THAN MAXVALUE
  )"""
    yield "INSERT INTO part_sub VALUES (1, 1999), (2, 1999), (3, 2001), (4, 2001)"
    # Other engines.
    yield """CREATE TABLE myisam_t (
  id INT AUTO_INCREMENT PRIMARY KEY, body TEXT, pt POINT NOT NULL,
  FULLTEXT KEY ft (body), SPATIAL KEY sp (pt)
) ENGINE=MyISAM CHECKSUM=1 PACK_KEYS=1 DELAY_KEY_WRITE=1"""
    yield """INSERT INTO myisam_t (body, pt) VALUES
  ('full text ü', POINT(1, 2)), ('', POINT(0, 0)), (NULL, POINT(-1, -1))"""
    yield """CREATE TABLE aria_t (id INT PRIMARY KEY, v VARCHAR(20), b BLOB)
  ENGINE=Aria TRANSACTIONAL=1 PAGE_CHECKSUM=1 ROW_FORMAT=PAGE"""
    yield "INSERT INTO aria_t VALUES (1, 'aria', X'00ff'), (2, NULL, NULL), (3, '', '')"
    yield """CREATE TABLE aria_dynamic (id INT, v VARCHAR(20))
  ENGINE=Aria TRANSACTIONAL=0 ROW_FORMAT=DYNAMIC"""
    yield "INSERT INTO aria_dynamic VALUES (1, 'x'), (1, 'x')"
    yield "CREATE TABLE memory_t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MEMORY"
    yield "INSERT INTO memory_t VALUES (1, 'volatile'), (2, '')"
    yield """CREATE TABLE csv_t (id INT NOT NULL, v VARCHAR(40) NOT NULL,
  d DATETIME NOT NULL) ENGINE=CSV"""
    yield """INSERT INTO csv_t VALUES (1, 'comma, "quote"', '2020-01-01 00:00:00'),
  (2, 'NULL', '2021-01-01 00:00:00'), (3, '', '2022-01-01 00:00:00')"""
    yield "CREATE TABLE merge_a (id INT NOT NULL, v VARCHAR(10), KEY (id)) ENGINE=MyISAM"
    yield "CREATE TABLE merge_b LIKE merge_a"
    yield """CREATE TABLE merge_all (id INT NOT NULL, v VARCHAR(10), KEY (id))
  ENGINE=MRG_MyISAM UNION=(merge_a, merge_b) INSERT_METHOD=LAST"""
    yield "INSERT INTO merge_a VALUES (1, 'a'), (2, 'a')"
    yield "INSERT INTO merge_b VALUES (2, 'b'), (3, 'b')"
    yield """CREATE TABLE compressed (id INT PRIMARY KEY, v TEXT)
  ENGINE=InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8"""
    yield "INSERT INTO compressed SELECT seq, REPEAT('compress me ', seq) FROM seq_1_to_10"
    yield "CREATE TABLE page_compressed (id INT PRIMARY KEY, v TEXT) PAGE_COMPRESSED=1"
    yield "INSERT INTO page_compressed VALUES (1, 'p')"
    # No primary key, duplicate rows; an empty table.
    yield "CREATE TABLE no_pk (a INT, b VARCHAR(10), c BLOB)"
    yield """INSERT INTO no_pk VALUES
  (1, 'dup', X'00'), (1, 'dup', X'00'), (1, 'dup', X'00'), (NULL, NULL, NULL),
  (NULL, NULL, NULL), (2, '', ''), (2, 'NULL', 'NULL')"""
    yield "CREATE TABLE empty_t (id INT PRIMARY KEY, v TEXT)"
    # Foreign-key cycles: two tables, and a table on itself.
    yield "SET foreign_key_checks = 0"
    yield """CREATE TABLE fk_a (id INT PRIMARY KEY, b_id INT,
  CONSTRAINT a_to_b FOREIGN KEY (b_id) REFERENCES fk_b (id) ON DELETE SET NULL)"""
    yield """CREATE TABLE fk_b (id INT PRIMARY KEY, a_id INT NOT NULL,
  CONSTRAINT `b to a ''` FOREIGN KEY (a_id) REFERENCES fk_a (id) ON UPDATE CASCADE)"""
    yield "INSERT INTO fk_a VALUES (1, 10), (2, 20), (3, NULL)"
    yield "INSERT INTO fk_b VALUES (10, 1), (20, 2), (30, 1)"
    yield """CREATE TABLE fk_self (id INT PRIMARY KEY, parent INT,
  FOREIGN KEY (parent) REFERENCES fk_self (id) ON DELETE CASCADE)"""
    yield "INSERT INTO fk_self VALUES (1, 3), (2, 1), (3, 2), (4, NULL)"
    yield f"""CREATE TABLE cross_db (id INT PRIMARY KEY, all_id INT,
  FOREIGN KEY (all_id) REFERENCES {_q(ALL_DB)}.cross_db (id))"""
    yield f"""CREATE TABLE {_q(ALL_DB)}.cross_db (id INT PRIMARY KEY, server_id INT,
  FOREIGN KEY (server_id) REFERENCES {_q(SERVER_DB)}.cross_db (id))"""
    yield "INSERT INTO cross_db VALUES (1, 100), (2, 200)"
    yield f"INSERT INTO {_q(ALL_DB)}.cross_db VALUES (100, 2), (200, 1), (300, NULL)"
    yield "SET foreign_key_checks = 1"
    # Names equal but for case, and names that are file names of a snapshot.
    yield "CREATE TABLE Mixed (id INT PRIMARY KEY, v VARCHAR(10))"
    yield "CREATE TABLE mixed (id INT PRIMARY KEY, v VARCHAR(10))"
    yield "CREATE TABLE MIXED (id INT PRIMARY KEY, w INT)"
    yield "INSERT INTO Mixed VALUES (1, 'Upper')"
    yield "INSERT INTO mixed VALUES (1, 'lower'), (2, 'lower')"
    yield "INSERT INTO MIXED VALUES (1, 1), (2, 2), (3, 3)"
    for name in ("all", "server", "manifest.json", "dump.sql", "server.sql"):
        yield f"CREATE TABLE {_q(name)} (id INT PRIMARY KEY, name VARCHAR(20))"
        yield f"INSERT INTO {_q(name)} VALUES (1, {_utf8(name)})"
    yield "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what TEXT, at DATETIME(6))"
    yield _at("2024-01-01 00:00:00")


# -- routines, triggers, views, events -----------------------------------------------------


def _server_code() -> Iterator[str]:
    db = _q(SERVER_DB)
    proc_body = _NASTY_BODY.replace("\nEND", "\n  SET b = @corpus_out; SET c = c + 1;\nEND")
    yield f"USE {db}"
    yield f"""CREATE {_DEFINER} FUNCTION corpus_nasty_helper() RETURNS TEXT
  DETERMINISTIC NO SQL
  COMMENT 'helper -- it''s ;; /* */ # "q"'
RETURN '-- Table structure for table `x` ;; /* */ # \\' " `'"""
    yield f"""CREATE {_DEFINER} PROCEDURE `nasty;;proc`(IN a VARCHAR(100), OUT b TEXT, INOUT c INT)
  SQL SECURITY INVOKER
  COMMENT 'it''s -- a "comment" ;; /* x */ # y'
{proc_body}"""
    yield f"""CREATE {_DEFINER} FUNCTION label_of(n INT) RETURNS VARCHAR(64) CHARSET utf8mb4
  DETERMINISTIC CONTAINS SQL
BEGIN
  -- a comment in a function ;;
  RETURN CONCAT('#', n, ' ;; ', "it's");  /* done */
END"""
    yield f"""CREATE {_DEFINER} FUNCTION `total of`(a DECIMAL(65,30), b DOUBLE)
  RETURNS DECIMAL(65,30) DETERMINISTIC
RETURN a + b"""
    yield f"""CREATE {_DEFINER} AGGREGATE FUNCTION agg_concat(x VARCHAR(20)) RETURNS TEXT
BEGIN
  DECLARE acc TEXT DEFAULT '';
  DECLARE CONTINUE HANDLER FOR NOT FOUND RETURN acc;  -- ;; end of group
  LOOP
    FETCH GROUP NEXT ROW;
    SET acc = CONCAT(acc, x, ';;');
  END LOOP;
END"""
    yield "SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,STRICT_ALL_TABLES'"
    yield f"""CREATE {_ANSI_DEFINER} PROCEDURE "ansi ""proc"" x"()
BEGIN
  SELECT 'a' || 'b' AS "it""s", "id" FROM "mixed";  -- ANSI_QUOTES ;;
END"""
    yield "SET SESSION sql_mode = 'ORACLE'"
    yield f"""CREATE {_ANSI_DEFINER} PACKAGE corpus_pkg AS
  FUNCTION f(a INT) RETURN INT;
  PROCEDURE p(a IN VARCHAR2);
END"""
    yield f"""CREATE {_ANSI_DEFINER} PACKAGE BODY corpus_pkg AS
  -- a package body ;; with comments
  FUNCTION f(a INT) RETURN INT AS BEGIN RETURN a * 2; END;
  PROCEDURE p(a IN VARCHAR2) AS BEGIN SELECT a || ' '';;'' ' FROM DUAL; END;
END"""
    yield "SET SESSION sql_mode = DEFAULT"
    # Triggers: two BEFORE INSERT on one table, ordered; nasty bodies.
    yield f"""CREATE {_DEFINER} TRIGGER `trg;;first` BEFORE INSERT ON no_pk FOR EACH ROW
{_NASTY_BODY}"""
    yield f"""CREATE {_DEFINER} TRIGGER trg_second BEFORE INSERT ON no_pk FOR EACH ROW
  FOLLOWS `trg;;first`
  SET NEW.b = IF(NEW.b = '-- x', '/* y */', NEW.b)"""
    yield f"""CREATE {_DEFINER} TRIGGER trg_zero BEFORE INSERT ON no_pk FOR EACH ROW
  PRECEDES `trg;;first`
  SET @corpus_zero = 'it''s # first'"""
    yield f"""CREATE {_DEFINER} TRIGGER `log it` AFTER UPDATE ON `mixed` FOR EACH ROW
  INSERT INTO log (what, at) VALUES (CONCAT('"', OLD.v, '" -> ''', NEW.v, ''' ;;'), NOW(6))"""
    yield f"""CREATE {_DEFINER} TRIGGER `all trg` BEFORE DELETE ON `all` FOR EACH ROW
  SET @gone = OLD.name"""
    # Views over views, one calling functions, one across databases (both directions).
    yield f"""CREATE {_DEFINER} VIEW v_base AS
  SELECT id, v, label_of(id) AS label FROM mixed WHERE v <> 'it''s -- not ;;'"""
    yield f"CREATE {_DEFINER} VIEW v_over AS SELECT id, label FROM v_base WHERE id > 0"
    yield f"""CREATE ALGORITHM=TEMPTABLE {_DEFINER} SQL SECURITY INVOKER VIEW v_over_over AS
  SELECT COUNT(*) AS n, agg_concat(label) AS labels FROM v_over"""
    yield f"""CREATE {_DEFINER} VIEW v_checked AS SELECT id, v FROM mixed WHERE id < 100
  WITH CASCADED CHECK OPTION"""
    yield f"""CREATE {_DEFINER} VIEW `v from all` AS
  SELECT s.id, a.server_id FROM cross_db s JOIN {_q(ALL_DB)}.cross_db a ON a.id = s.all_id"""
    yield """CREATE DEFINER='corpus_app'@'%' SQL SECURITY DEFINER VIEW v_other_definer AS
  SELECT id FROM `all`"""
    yield f"""CREATE {_DEFINER} VIEW {_q(ALL_DB)}.v_cross AS
  SELECT o.id, o.label, t.name FROM {db}.v_over o JOIN {db}.`server` t ON t.id = o.id"""
    yield f"""CREATE {_DEFINER} VIEW {_q(ALL_DB)}.v_cross_over AS
  SELECT id, label FROM {_q(ALL_DB)}.v_cross"""
    yield f"""CREATE {_DEFINER} VIEW v_back_from_all AS
  SELECT id FROM {_q(ALL_DB)}.v_cross_over"""
    yield f"""CREATE {_DEFINER} VIEW {_q(TYPES_DB)}.v_types AS
  SELECT i.id, i.biu, d.d, {db}.`total of`(d.d, f.d) AS total
  FROM {_q(TYPES_DB)}.integers i JOIN {_q(TYPES_DB)}.decimals d USING (id)
  JOIN {_q(TYPES_DB)}.floats f USING (id)"""
    # Events: never run here (the scheduler is off), but must come back as they were.
    # Those holding ";;" are a dump hazard (see STOCK_TOOL_HAZARDS), kept apart.
    quiet_body = _NASTY_BODY.replace(";;", "; ;")
    yield f"""CREATE {_DEFINER} EVENT `ev -- /* # 'quoted' "name"`
  ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ENDS '2031-01-01 00:00:00'
  ON COMPLETION PRESERVE DISABLE
  COMMENT 'it''s -- an event /* */ # "q"'
  DO {quiet_body}"""
    yield f"""CREATE {_DEFINER} EVENT ev_replica ON SCHEDULE EVERY 90 MINUTE
  STARTS '2030-01-01 00:00:00' DISABLE ON SLAVE DO DELETE FROM log WHERE id < 0"""
    yield f"""CREATE {_DEFINER} EVENT {_q(DOTS_DB)}.`ev/..%` ON SCHEDULE AT '2035-06-01 12:00:00'
  ON COMPLETION PRESERVE ENABLE
  DO INSERT INTO {db}.log (what, at) VALUES ('once -- ''x''', NOW(6))"""


# -- awkward names --------------------------------------------------------------------------


_AWKWARD_TABLES = (
    "..",
    ".",
    ".hidden",
    "a/b",
    "100%",
    "%",
    "_",
    AWKWARD_TABLE,
    "back\\slash",
    "-- Table structure for table `x`",
    "Case",
    "case",
    "all",
    "server",
    "manifest.json",
    "dump.sql",
    "x" * 64,
)


def _awkward() -> Iterator[str]:
    for database in (AWKWARD_DB, DOTS_DB, MANIFEST_DB, SERVER_TWIN_DB):
        yield f"USE {_q(database)}"
        tables: tuple[str, ...] = _AWKWARD_TABLES[:4]  # "..", ".", ".hidden", "a/b"
        if database == AWKWARD_DB:
            tables = _AWKWARD_TABLES
        elif database == SERVER_TWIN_DB:
            tables = ("server", "Mixed", "mixed")
        for n, table in enumerate(tables, 1):
            column = "co`l 'ü' \"c\"" if n % 2 else "NULL"
            charset = " CHARACTER SET ascii" if database == MANIFEST_DB else ""
            yield (
                f"CREATE TABLE {_q(table)} (id INT PRIMARY KEY, {_q(column)} VARCHAR(200){charset})"
            )
            value = "it's" if database == MANIFEST_DB else f"{table} in {database}"
            yield f"INSERT INTO {_q(table)} VALUES ({n}, {_utf8(value)}), ({n + 100}, NULL)"
    db = _q(AWKWARD_DB)
    yield f"USE {db}"
    yield (
        "CREATE TABLE `fk ü` (id INT PRIMARY KEY, ref INT,\n"
        "  CONSTRAINT `fk'\"` FOREIGN KEY (ref) REFERENCES `..` (id))"
    )
    yield "INSERT INTO `fk ü` VALUES (1, 1), (2, NULL)"
    yield f"""CREATE {_DEFINER} FUNCTION `fu``nc ü`(`a b` VARCHAR(10)) RETURNS VARCHAR(40)
  DETERMINISTIC
RETURN CONCAT('`', `a b`, '` -- ;;')"""
    awkward_body = _NASTY_BODY.replace("`corpus_nasty_helper`()", "`fu``nc ü`('x')")
    yield f"""CREATE {_DEFINER} PROCEDURE `pr'oc "x" ..`()
{awkward_body}"""
    yield f"""CREATE {_DEFINER} TRIGGER `tr``ig ü` BEFORE UPDATE ON {_q(AWKWARD_TABLE)}
  FOR EACH ROW SET NEW.id = NEW.id"""
    yield f"""CREATE {_DEFINER} VIEW `vi``ew /..%` AS
  SELECT t.id, `fu``nc ü`(t.`NULL`) AS f FROM `.` t"""
    yield f"""CREATE {_DEFINER} VIEW `over ..` AS
  SELECT v.id, s.name FROM `vi``ew /..%` v JOIN {_q(SERVER_DB)}.`manifest.json` s USING (id)"""
    yield f"USE {_q(SERVER_TWIN_DB)}"
    yield f"""CREATE {_DEFINER} VIEW `v` AS
  SELECT m.id, m.`co``l 'ü' "c"` AS c FROM {_q(SERVER_DB)}.`Mixed` s
  JOIN `mixed` m ON m.id = s.id + 2"""


# -- accounts --------------------------------------------------------------------------------


def _accounts() -> Iterator[str]:
    types, server, awkward = _q(TYPES_DB), _q(SERVER_DB), _q(AWKWARD_DB)
    yield "CREATE ROLE corpus_reader"
    yield "CREATE ROLE corpus_writer"
    yield f"GRANT SELECT ON {types}.* TO corpus_reader"
    yield f"GRANT SELECT, SHOW VIEW ON {_q(ALL_DB)}.* TO corpus_reader"
    yield "GRANT corpus_reader TO corpus_writer"
    yield f"GRANT INSERT, UPDATE, DELETE ON {server}.* TO corpus_writer"
    yield (
        "CREATE USER 'corpus_app'@'%' IDENTIFIED BY 'it''s a \"pw\" ;;' "
        "WITH MAX_QUERIES_PER_HOUR 1000 MAX_USER_CONNECTIONS 5 "
        "PASSWORD EXPIRE INTERVAL 90 DAY"
    )
    yield "CREATE USER 'Corpus_app'@'%' IDENTIFIED BY 'other'"
    yield "GRANT corpus_writer TO 'corpus_app'@'%' WITH ADMIN OPTION"
    yield "GRANT corpus_reader TO 'Corpus_app'@'%'"
    yield "SET DEFAULT ROLE corpus_writer FOR 'corpus_app'@'%'"
    yield "GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'Corpus_app'@'%'"
    yield "CREATE USER 'corpus_col'@'localhost' REQUIRE SSL"
    yield f"GRANT SELECT (id, v), UPDATE (v) ON {server}.`mixed` TO 'corpus_col'@'localhost'"
    yield (
        "GRANT SELECT (id, `NULL`), INSERT (id) "
        f"ON {awkward}.{_q(AWKWARD_TABLE)} TO 'corpus_col'@'localhost'"
    )
    yield f"GRANT SELECT ON {server}.`v_over` TO 'corpus_col'@'localhost' WITH GRANT OPTION"
    yield "CREATE USER 'corpus_exec'@'10.0.%' IDENTIFIED BY 'exec'"
    yield f"GRANT EXECUTE ON PROCEDURE {server}.`nasty;;proc` TO 'corpus_exec'@'10.0.%'"
    yield f"GRANT EXECUTE ON FUNCTION {server}.label_of TO 'corpus_exec'@'10.0.%'"
    yield f"GRANT EXECUTE, ALTER ROUTINE ON FUNCTION {awkward}.`fu``nc ü` TO 'corpus_exec'@'10.0.%'"
    yield "CREATE USER 'we''ird u`ser ü'@'host-name.example' IDENTIFIED BY 'ü'"
    yield f"GRANT ALL PRIVILEGES ON {awkward}.* TO 'we''ird u`ser ü'@'host-name.example'"
    yield f"GRANT SELECT ON `{DOTS_DB}`.* TO 'we''ird u`ser ü'@'host-name.example'"
    yield "GRANT SELECT ON `corpus\\_%`.* TO 'we''ird u`ser ü'@'host-name.example'"
    yield "CREATE USER 'corpus_locked'@'localhost' ACCOUNT LOCK PASSWORD EXPIRE"


# -- what the stock dump tool cannot take -----------------------------------------------------


def _event_double_semicolon() -> Iterator[str]:
    yield f"USE {_q(SERVER_DB)}"
    yield f"""CREATE {_DEFINER} EVENT `ev;;nasty`
  ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ENDS '2031-01-01 00:00:00'
  ON COMPLETION PRESERVE DISABLE
  COMMENT 'it''s -- an event ;; /* */'
  DO {_NASTY_BODY}"""
    yield f"""CREATE {_DEFINER} EVENT ev_once ON SCHEDULE AT '2035-06-01 12:00:00'
  ON COMPLETION NOT PRESERVE ENABLE
  DO INSERT INTO log (what, at) VALUES ('once ;; -- ''x''', NOW(6))"""


def _float_precision() -> Iterator[str]:
    yield f"USE {_q(TYPES_DB)}"
    yield "CREATE TABLE float_extremes (id INT PRIMARY KEY, f FLOAT, u FLOAT UNSIGNED)"
    yield """INSERT INTO float_extremes VALUES
  (1, 3.4028234e38, 3.4028234e38), (2, -3.4028234e38, 0), (3, 1.17549435e-38, 1.2345678),
  (4, 16777216, 16777215), (5, 0.30000001, 1e-45)"""


def _sequence_cycled() -> Iterator[str]:
    yield f"USE {_q(SERVER_DB)}"
    yield "SELECT NEXTVAL(`seq cycling ü`) FROM seq_1_to_6"  # -7, -9, then 9, 7, 5, 3


def _package_grant() -> Iterator[str]:
    yield "SET SESSION sql_mode = 'ORACLE'"  # package privileges exist in Oracle mode only
    yield (f"GRANT EXECUTE ON PACKAGE BODY {_q(SERVER_DB)}.corpus_pkg TO 'corpus_exec'@'10.0.%'")
    yield "SET SESSION sql_mode = DEFAULT"


def _public_grant() -> Iterator[str]:
    yield f"GRANT SELECT ON {_q(SERVER_DB)}.`all` TO PUBLIC"


def _versioned_comment_in_comment() -> Iterator[str]:
    yield f"USE {_q(SERVER_DB)}"
    yield f"""CREATE {_DEFINER} PROCEDURE versioned_comment_in_comment()
BEGIN
  SET @corpus_out = 1;  /* mentions /*!50003 a versioned comment */
END"""


def _event_in_quoted_database() -> Iterator[str]:
    yield f"USE {_q(AWKWARD_DB)}"
    yield f"""CREATE {_DEFINER} EVENT `ev/..%` ON SCHEDULE EVERY 1 HOUR
  STARTS '2030-01-01 00:00:00' DISABLE DO SET @x = `fu``nc ü`('e')"""


STOCK_TOOL_HAZARDS: Mapping[str, str] = {
    "float-precision": (
        "FLOAT values needing more than six significant digits (the largest FLOAT, "
        "16777216, 1.2345678): the server prints a FLOAT with six, mariadb-dump writes "
        "that text, and the value loaded back is another FLOAT"
    ),
    "sequence-cycled": (
        "a sequence that has cycled: mariadb-dump writes SETVAL(seq, next, 0) without "
        "the cycle round, the server ignores a SETVAL behind the sequence's position, "
        "and the restored sequence starts over from its start value"
    ),
    "package-grant": (
        "a privilege on an Oracle-mode package: mariadb-dump --system=users writes "
        "GRANT EXECUTE ON PACKAGE BODY ..., which the server accepts only under "
        "sql_mode=ORACLE, so loading it fails (ERROR 1064)"
    ),
    "event-double-semicolon": (
        "events whose definition holds ';;': mariadb-dump 10.11 never ends (its "
        "create_delimiter() loop increments the size limit instead of the delimiter's "
        "length, so it proposes ';;' for ever)"
    ),
    "public-grant": ("a grant to PUBLIC: mariadb-dump --system=users leaves it out of the dump"),
    "versioned-comment-in-comment": (
        "a routine whose body holds '/*!' inside a comment: the mariadb client that "
        "loads the dump takes it for a versioned comment and loses track of the "
        "delimiter, so the statements after the routine reach the server glued "
        "together (ERROR 1064) and are lost"
    ),
    "event-in-quoted-database": (
        "an event in a database whose name holds a quote or a backslash: mariadb-dump "
        '10.11 --events exits 2 with "Unknown database ... when selecting the '
        'database" (fetch_db_collation() selects the database by its SQL-escaped name)'
    ),
}
"""Parts of the corpus that ``mariadb-dump`` 10.11 itself cannot dump, and why.

Keyed by the names :func:`statements` and :func:`load_corpus` take in ``without``.
A test of the stock tools leaves them out; a backup tool that claims that every
object survives must cope with them.
"""

_HAZARD_STATEMENTS: Mapping[str, Callable[[], Iterator[str]]] = {
    "float-precision": _float_precision,
    "sequence-cycled": _sequence_cycled,
    "package-grant": _package_grant,
    "public-grant": _public_grant,
    "event-double-semicolon": _event_double_semicolon,
    "versioned-comment-in-comment": _versioned_comment_in_comment,
    "event-in-quoted-database": _event_in_quoted_database,
}


def statements(*, without: Collection[str] = ()) -> list[str]:
    """Every statement of the corpus, in the order they must run on one connection.

    ``without`` names parts of :data:`STOCK_TOOL_HAZARDS` to leave out.
    """
    unknown = set(without) - set(STOCK_TOOL_HAZARDS)
    if unknown:
        raise ValueError(f"unknown corpus parts: {sorted(unknown)}")
    hazards = [
        statement
        for name, make in _HAZARD_STATEMENTS.items()
        if name not in without
        for statement in make()
    ]
    return [
        "SET NAMES utf8mb4",
        "SET SESSION time_zone = '+00:00'",
        "SET SESSION sql_mode = DEFAULT",
        _at("2024-01-01 00:00:00"),
        *_databases(),
        *_types(),
        *_server_tables(),
        *_awkward(),
        *_server_code(),
        *_accounts(),
        *hazards,
        "SET timestamp = DEFAULT",
    ]


def load_corpus(server: MariaDBServer, *, without: Collection[str] = ()) -> None:
    """Create the corpus on ``server``, which must not hold any of its databases or accounts.

    ``without`` names parts of :data:`STOCK_TOOL_HAZARDS` to leave out.
    """
    with server.connect() as conn, conn.cursor() as cur:
        for statement in statements(without=without):
            try:
                cur.execute(statement)
                cur.fetchall()
            except Exception as exc:
                exc.add_note(f"corpus statement:\n{statement}")
                raise
