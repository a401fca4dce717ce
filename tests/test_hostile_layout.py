"""A snapshot's structure as untrusted input, through the real plakar.

A real whole-server snapshot of ``src`` is restored into a directory; each
case copies that layout, damages or forges one part of it (the catalog, the
manifest, a header, a path, a size), backs the directory up with Plakar's
``fs`` importer and restores that snapshot into a target server that holds a
database of its own (``keep``) and an older ``src``, with ``overwrite=true``
(or into a database of the user's choosing).  Each restore must fail with one
line that names the file, and leave every database and account of the target
exactly as it was: nothing written into the target, nothing outside it.

One source server, one target server and one store serve the whole module:
each case leaves the target as it found it, which is what it checks.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.compare import describe_accounts, describe_database, describe_server, diff
from test_backup_restore import password, uri

from plakar_mysql.logical.layout import HEADER_PREFIX, HELD_LIMIT, JSON_LIMIT
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

SOURCE_SQL = (
    "CREATE DATABASE src",
    "CREATE TABLE src.t (id INT PRIMARY KEY, v VARCHAR(20))",
    "INSERT INTO src.t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    "CREATE TABLE src.u (id INT PRIMARY KEY, t_id INT)",
    "INSERT INTO src.u VALUES (10, 1), (20, 2)",
    "CREATE VIEW src.vw AS SELECT t.v, u.id FROM src.t JOIN src.u ON u.t_id = t.id",
    "CREATE FUNCTION src.twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x",
)
TARGET_SQL = (
    "CREATE DATABASE keep",
    "CREATE TABLE keep.k (id INT PRIMARY KEY, secret VARCHAR(20))",
    "INSERT INTO keep.k VALUES (1, 'untouched')",
    "CREATE VIEW keep.kv AS SELECT secret FROM keep.k",
    # An older src: a restore that went ahead would change it.
    "CREATE DATABASE src",
    "CREATE TABLE src.t (id INT PRIMARY KEY, v VARCHAR(20))",
    "INSERT INTO src.t VALUES (1, 'old')",
    "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
    "GRANT SELECT ON keep.* TO 'app'@'%'",
)
TABLE_T = "databases/src/tables/t.sql"


# -- the layout: files as a real snapshot holds them ------------------------------------


def read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header of a snapshot file as JSON, and the rest of the file."""
    line, _, rest = path.read_bytes().partition(b"\n")
    assert line.startswith(HEADER_PREFIX), line[:80]
    data: dict[str, Any] = json.loads(line[len(HEADER_PREFIX) :])
    return data, rest


def write_header(path: Path, header: dict[str, Any], rest: bytes) -> None:
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"))
    path.write_bytes(HEADER_PREFIX + text.encode() + b"\n" + rest)


def edit_header(path: Path, **changes: Any) -> None:
    header, rest = read_header(path)
    header.update(changes)
    write_header(path, header, rest)


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_bytes())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def src_inventory(catalog: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in catalog["databases"] if d["database"] == "src"]
    assert len(found) == 1
    return found[0]


def big_file(path: Path, start: bytes, size: int, fill: bytes = b" ") -> None:
    """``start`` followed by ``fill`` up to ``size`` bytes, with no line break."""
    with path.open("wb") as out:
        out.write(start)
        block = fill * (1 << 20)
        left = size - len(start)
        while left > 0:
            out.write(block[:left])
            left -= len(block)


# -- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One forged layout: how to make it, and the line its restore must print."""

    forge: Callable[[Path], None]
    file: str  # the file the message must name, as the restore sees its path
    message: str
    restore: str = ""  # the snapshot directory restored, below the layout
    database: str = ""  # the target database of the URI (none: the snapshot's names)


def _not_json(root: Path) -> None:
    (root / "catalog.json").write_bytes(b'{"format": 2, "databases": [')


def _catalog_wrong_types(root: Path) -> None:
    edit_json(root / "catalog.json", lambda c: c.update(databases={"src": 1}))


def _catalog_format(root: Path) -> None:
    edit_json(root / "catalog.json", lambda c: c.update(format=99))


def _catalog_huge(root: Path) -> None:
    big_file(root / "catalog.json", b'{"format": 2, "pad": "', JSON_LIMIT + (1 << 20))


def _manifest_not_json(root: Path) -> None:
    (root / "manifest.json").write_bytes(b"\x00\xff not json")


def _manifest_format(root: Path) -> None:
    edit_json(root / "manifest.json", lambda m: m.update(format="2; DROP DATABASE keep"))


def _absent_table(root: Path) -> None:
    (root / "databases/src/tables/u.sql").unlink()


def _table_not_in_catalog(root: Path) -> None:
    extra = root / "databases/src/tables/extra.sql"
    shutil.copy(root / TABLE_T, extra)
    edit_header(extra, name="extra")


def _database_not_in_catalog(root: Path) -> None:
    other = root / "databases/keep"
    (other / "tables").mkdir(parents=True)
    shutil.copy(root / "databases/src/schema.sql", other / "schema.sql")
    header, rest = read_header(other / "schema.sql")
    header["database"] = header["inventory"]["database"] = "keep"
    write_header(other / "schema.sql", header, rest)


def _schema_other_inventory(root: Path) -> None:
    header, rest = read_header(root / "databases/src/schema.sql")
    header["inventory"]["tables"].append("keep")
    write_header(root / "databases/src/schema.sql", header, rest)


def _header_other_database(root: Path) -> None:
    edit_header(root / TABLE_T, database="keep")


def _header_says_accounts(root: Path) -> None:
    header, rest = read_header(root / TABLE_T)
    for key in ("database", "name", "character_set", "collation"):
        header.pop(key, None)
    write_header(root / TABLE_T, {**header, "kind": "users"}, rest)


def _header_dot_dot(root: Path) -> None:
    edit_header(root / TABLE_T, database="../keep")


def _header_nul(root: Path) -> None:
    edit_header(root / TABLE_T, name="t\x00keep")


def _two_files_one_table(root: Path) -> None:
    shutil.copy(root / TABLE_T, root / "databases/src/tables/t2.sql")


def _table_twice_in_catalog(root: Path) -> None:
    edit_json(root / "catalog.json", lambda c: src_inventory(c)["tables"].append("t"))


def _accounts_with_a_database(root: Path) -> None:
    edit_header(root / "server/users.sql", database="keep")


def _charset_injection(root: Path) -> None:
    edit_header(root / "databases/src/schema.sql", character_set="latin1 COLLATE x; --")


def _create_options_injection(root: Path) -> None:
    edit_json(
        root / "catalog.json",
        lambda c: src_inventory(c).update(create_options=" COMMENT 'x'; DROP DATABASE keep"),
    )


def _huge_packet(root: Path) -> None:
    edit_header(root / TABLE_T, max_allowed_packet=1 << 40)


def _unknown_field(root: Path) -> None:
    edit_header(root / TABLE_T, defaults_file="/tmp/evil.cnf")


def _no_header(root: Path) -> None:
    _, rest = read_header(root / TABLE_T)
    (root / TABLE_T).write_bytes(rest)


def _huge_header_line(root: Path) -> None:
    big_file(root / TABLE_T, HEADER_PREFIX + b'{"kind": "table", "x": "', (16 << 20) + (2 << 20))


def _huge_held_file(root: Path) -> None:
    header, _ = read_header(root / "databases/src/views.sql")
    line = HEADER_PREFIX + json.dumps(header).encode() + b"\n-- "
    big_file(root / "databases/src/views.sql", line, HELD_LIMIT + (1 << 20), b"x")


def _enormous_line(root: Path) -> None:
    """A table file whose rows are one line of 100 MB: it streams to the client,
    which refuses it; nothing of it may reach the target."""
    header, _ = read_header(root / TABLE_T)
    start = HEADER_PREFIX + json.dumps(header).encode() + b"\nINSERT INTO t VALUES (4, '"
    big_file(root / TABLE_T, start, 100 << 20, b"x")


def _stray_file(root: Path) -> None:
    (root / "databases/src/notes.txt").write_text("hello\n")


def _symbolic_link(root: Path) -> None:
    (root / TABLE_T).unlink()
    (root / TABLE_T).symlink_to("/etc/passwd")


def _plain_dump_among_ours(root: Path) -> None:
    (root / "zz.sql").write_text("CREATE TABLE zz (id INT);\n")


def _not_utf8_name(root: Path) -> None:
    # Linux names are bytes; Plakar's protocol carries UTF-8 strings only.
    (Path(os.fsdecode(bytes(root / "databases/src/tables") + b"/\xff\xfe.sql"))).write_bytes(
        (root / TABLE_T).read_bytes()
    )


def _subpath_lies(root: Path) -> None:
    edit_header(root / TABLE_T, database="keep")


def _subpath_held_file_lies(root: Path) -> None:
    header, rest = read_header(root / "databases/src/routines.sql")
    header["database"] = "keep"
    write_header(root / "databases/src/routines.sql", header, rest)


CASES: dict[str, Case] = {
    "catalog not JSON": Case(_not_json, "/catalog.json", "not valid JSON"),
    "catalog of wrong types": Case(_catalog_wrong_types, "/catalog.json", "not a list"),
    "catalog of another format": Case(_catalog_format, "/catalog.json", "format 99"),
    "catalog over its cap": Case(_catalog_huge, "/catalog.json", "larger than 16 MiB"),
    "manifest not JSON": Case(_manifest_not_json, "/manifest.json", "not valid JSON"),
    "manifest of a forged format": Case(_manifest_format, "/manifest.json", "is not supported"),
    "catalog names an absent file": Case(
        _absent_table, "/catalog.json", "not in the snapshot (/databases/src/tables/u.sql)"
    ),
    "table not in the catalog": Case(
        _table_not_in_catalog, "/databases/src/tables/extra.sql", "not in the inventory"
    ),
    "database not in the catalog": Case(
        _database_not_in_catalog, "/databases/keep/schema.sql", "not in the catalog"
    ),
    "schema.sql's inventory unlike the catalog's": Case(
        _schema_other_inventory, "/databases/src/schema.sql", "differs from the inventory"
    ),
    "header names another database": Case(
        _header_other_database, f"/{TABLE_T}", "holds at /databases/keep/tables/t.sql"
    ),
    "header says accounts": Case(
        _header_says_accounts, f"/{TABLE_T}", "which a snapshot holds at /server/users.sql"
    ),
    "header database with ..": Case(
        _header_dot_dot, f"/{TABLE_T}", "holds at /databases/%2E.%2Fkeep/"
    ),
    "header name with NUL": Case(_header_nul, f"/{TABLE_T}", "is not a valid name"),
    "two files for one table": Case(
        _two_files_one_table, "/databases/src/tables/t2.sql", "holds at /databases/src/tables/t.sql"
    ),
    "one table twice in the catalog": Case(
        _table_twice_in_catalog, "/catalog.json", "names 't' twice"
    ),
    "accounts naming a database": Case(
        _accounts_with_a_database, "/server/users.sql", "accounts, yet names a database"
    ),
    "character set written into SQL": Case(
        _charset_injection, "/databases/src/schema.sql", "not a character set"
    ),
    "CREATE DATABASE options written into SQL": Case(
        _create_options_injection, "/catalog.json", "create_options"
    ),
    "max_allowed_packet of 1 TiB": Case(_huge_packet, f"/{TABLE_T}", "max_allowed_packet"),
    "header with an unknown field": Case(_unknown_field, f"/{TABLE_T}", "defaults_file"),
    "table file without its header": Case(_no_header, f"/{TABLE_T}", "no plakar-mysql header"),
    "header line over its cap": Case(_huge_header_line, f"/{TABLE_T}", "longer than 16 MiB"),
    "views over their cap": Case(_huge_held_file, "/databases/src/views.sql", "larger than 64 MiB"),
    "a 100 MB line": Case(_enormous_line, "table src.t", "at line 2"),
    "a file that is not SQL": Case(
        _stray_file, "/databases/src/notes.txt", "not part of a MySQL snapshot"
    ),
    "a symbolic link": Case(_symbolic_link, f"/{TABLE_T}", "not a regular file"),
    "a plain dump among our files": Case(
        _plain_dump_among_ours, "/zz.sql", "single dump files and per-object files"
    ),
    # Plakar itself cannot send such a name to a plugin (and says so, without it).
    "a name that is not UTF-8": Case(_not_utf8_name, "", "invalid UTF-8"),
    "one database restored, a table lies": Case(
        _subpath_lies,
        "/tables/t.sql",
        "one of them says it belongs to another database",
        restore="databases/src",
        database="copy",
    ),
    "one database restored, routines lie": Case(
        _subpath_held_file_lies,
        "/schema.sql",
        "one of them says it belongs to another database",
        restore="databases/src",
    ),
}


# -- the shared servers, store and layout ---------------------------------------------------


@dataclass
class Bench:
    plakar: Plakar
    source: MariaDBServer
    target: MariaDBServer
    layout: Path  # the real snapshot's files
    work: Path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    base = tmp_path_factory.mktemp("hostile")
    source = MariaDBServer(base / "source")
    target = MariaDBServer(base / "target")
    plakar = make_plakar(base / "plakar")
    try:
        for sql in SOURCE_SQL:
            source.execute(sql)
        for sql in TARGET_SQL:
            target.execute(sql)
        snapshot = plakar.backup(uri(source), password(source))
        layout = base / "layout"
        plakar.restore(f"{snapshot}:/", layout)
        yield Bench(plakar, source, target, layout, base / "work")
    finally:
        plakar.close()
        source.cleanup()
        target.cleanup()


@pytest.fixture(scope="module")
def forgeries(bench: Bench) -> str:
    """One snapshot holding every forged layout, each in its own directory
    (one backup instead of one per case: Plakar takes seconds per run)."""
    for name, case in {"control": Case(lambda _: None, "", ""), **CASES}.items():
        root = bench.work / slug(name)
        shutil.copytree(bench.layout, root, symlinks=True)
        case.forge(root)
    return bench.plakar.backup(str(bench.work))


def slug(name: str) -> str:
    return name.replace(" ", "-")


def restore(bench: Bench, snapshot: str, name: str, *options: str) -> str:
    """Restore the forged layout ``name``; it must fail: its output."""
    case = CASES[name]
    root = bench.work / slug(name) / case.restore
    proc = bench.plakar.restore(
        f"{snapshot}:{str(root).rstrip('/')}",
        uri(bench.target, case.database),
        password(bench.target),
        *options,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    return output


def test_the_layout_as_a_directory_restores(bench: Bench, forgeries: str) -> None:
    """The control: the real layout, backed up as a directory, restores exactly
    (so each failure below is the forged part's)."""
    root = bench.work / "control"
    bench.plakar.restore(
        f"{forgeries}:{root}", uri(bench.target, "control"), password(bench.target)
    )
    try:
        expected = describe_database(bench.source, "src", rename={"src": "control"})
        assert diff(expected, describe_database(bench.target, "control")) == []
    finally:
        bench.target.execute("DROP DATABASE control")


@pytest.mark.parametrize("name", list(CASES))
def test_forged_layout_is_refused_and_changes_nothing(
    bench: Bench, forgeries: str, name: str
) -> None:
    """One line naming the file; every database and account of the target as it was."""
    case = CASES[name]
    before = describe_server(bench.target), describe_accounts(bench.target)
    output = restore(bench, forgeries, name, "overwrite=true")
    assert any(case.file in line and case.message in line for line in output.splitlines()), output
    assert (describe_server(bench.target), describe_accounts(bench.target)) == before


def test_without_overwrite_nothing_outside_the_chosen_database(
    bench: Bench, forgeries: str
) -> None:
    """Without overwrite=true a refusal stops the restore where it is found: what
    the forged header names (``keep``) and every other database stay as they were."""
    name = "one database restored, a table lies"
    before = describe_server(bench.target), describe_accounts(bench.target)
    output = restore(bench, forgeries, name)
    assert "/tables/t.sql" in output and "belongs to another database" in output, output
    after = describe_server(bench.target), describe_accounts(bench.target)
    assert after[1] == before[1]
    assert {k: v for k, v in after[0].items() if k != "copy"} == before[0]
    bench.target.execute("DROP DATABASE IF EXISTS copy")
