"""Hostile logical snapshots: the SQL client's own commands in every file a restore loads.

The ``mariadb``/``mysql`` client runs commands of its own found in the SQL it
reads: ``\\!`` and ``system`` run a shell command, ``\\T`` (tee) writes a file,
``\\.`` and ``source`` read one.  A snapshot is untrusted, so each of the five is
planted in each kind of file a logical restore feeds the client or the server -
a table file, ``routines.sql``, ``views.sql``, ``events.sql``,
``/server/users.sql``, the official integration's ``/<db>.sql`` and ``/all.sql``,
and the first layout's ``/dump.sql`` - and restored by the real plakar into a
real server.  Every case must either fail with one line naming what it was
loading, leaving the target as it was, or restore only data; none may run its
command (its sentinel file or database never appears) or write anywhere outside
the target (the directories around it are unchanged).

The crafted snapshots are made as an attacker would: the files of a real
snapshot, edited, laid out as ours in a directory and backed up by ``plakar
backup`` (all cases in one snapshot, one server and store for the module).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.hostile import (
    CLIENT_COMMANDS,
    Sentinels,
    TreeWatch,
    client_commands,
    craft_snapshot,
    one_line,
    plant,
    server_state,
    snapshot_files,
    without_dump_sandbox,
    write_layout,
)

from plakar_mysql.logical.layout import DatabaseEntry, DumpHeader
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

SOURCE = "victim"
PREAMBLE_END = b"/*!40111 SET @OLD_SQL_NOTES"  # the dump's last session line before any object
TABLE_ROWS_END = b"(2,'b');"  # the end of the table's INSERT: rows already sent


@dataclass(frozen=True)
class Placement:
    """Where a command is planted and how that file is restored.

    ``files`` makes the case's layout from the real snapshot's files, the
    plain dump of the source and the planted line; ``restore`` is the path
    below the case's directory that is restored; ``into`` the target database
    (None: the whole server); ``options`` the restore's options; ``names`` what
    the one-line error names; ``restored`` checks a successful restore's data;
    ``fails`` whether the restore must fail (None: it may also succeed, loading
    only data: ``users.sql`` goes to the server statement by statement, not
    through the client, and a line without ``;`` is no statement there).
    """

    files: Callable[[dict[str, bytes], bytes, bytes], dict[str, bytes]]
    restore: str
    into: str | None
    options: tuple[str, ...]
    names: str
    prepare: tuple[str, ...]
    restored: str
    fails: bool | None = True


def _edited(
    path: str, after: bytes
) -> Callable[[dict[str, bytes], bytes, bytes], dict[str, bytes]]:
    """The snapshot's files with ``line`` planted in ``path`` after ``after``."""

    def files(snapshot: dict[str, bytes], plain: bytes, line: bytes) -> dict[str, bytes]:
        crafted = {
            name: without_dump_sandbox(data)
            for name, data in snapshot.items()
            if name.startswith(f"/databases/{SOURCE}/") or name == "/server/users.sql"
        }
        crafted[path] = plant(crafted[path], line, after=after)
        return crafted

    return files


def _plain_db(snapshot: dict[str, bytes], plain: bytes, line: bytes) -> dict[str, bytes]:
    return {
        "/manifest.json": b'{"version": 1, "connector": "mariadb"}\n',
        f"/{SOURCE}.sql": plant(plain, line, after=PREAMBLE_END),
    }


def _plain_all(snapshot: dict[str, bytes], plain: bytes, line: bytes) -> dict[str, bytes]:
    body = (
        line + b"CREATE DATABASE IF NOT EXISTS hostile_all;\nUSE hostile_all;\n"
        b"CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\n"
    )
    return {"/manifest.json": b'{"version": 1, "connector": "mariadb"}\n', "/all.sql": body}


def _first_layout(snapshot: dict[str, bytes], plain: bytes, line: bytes) -> dict[str, bytes]:
    header = DumpHeader(
        scope="database",
        flavour="mariadb",
        databases=(DatabaseEntry(SOURCE, "latin1", "latin1_swedish_ci", ("t",)),),
        max_allowed_packet=16 << 20,
    )
    return {"/dump.sql": header.encode() + plant(plain, line, after=PREAMBLE_END)}


TARGET = "hostile_target"
_TARGET_TABLE = (
    f"CREATE DATABASE {TARGET}",
    f"CREATE TABLE {TARGET}.t (id INT PRIMARY KEY, v VARCHAR(20))",
    f"INSERT INTO {TARGET}.t VALUES (10, 'before')",
)
_ROUTINE = f"SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{TARGET}'"

PLACEMENTS: dict[str, Placement] = {
    "table file": Placement(
        _edited(f"/databases/{SOURCE}/tables/t.sql", TABLE_ROWS_END),
        f"databases/{SOURCE}/",
        TARGET,
        ("overwrite=true",),
        f"table {TARGET}.t",
        _TARGET_TABLE,
        f"SELECT 1 FROM {TARGET}.t WHERE id = 2",
    ),
    "routine": Placement(
        _edited(f"/databases/{SOURCE}/routines.sql", PREAMBLE_END),
        f"databases/{SOURCE}/routines.sql",
        TARGET,
        (),
        f"routines of '{TARGET}'",
        _TARGET_TABLE,
        _ROUTINE,
    ),
    "view": Placement(
        _edited(f"/databases/{SOURCE}/views.sql", PREAMBLE_END),
        f"databases/{SOURCE}/views.sql",
        TARGET,
        (),
        f"of '{TARGET}'",  # "view placeholders of" or "views of"
        _TARGET_TABLE,
        f"SELECT 1 FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{TARGET}'",
    ),
    "event": Placement(
        _edited(f"/databases/{SOURCE}/events.sql", PREAMBLE_END),
        f"databases/{SOURCE}/events.sql",
        TARGET,
        (),
        f"events of '{TARGET}'",
        _TARGET_TABLE,
        f"SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{TARGET}'",
    ),
    "users.sql": Placement(
        _edited("/server/users.sql", b'-- Account: ["app", "%", false]'),
        "server/users.sql",
        None,
        ("users=true",),
        "users.sql",
        ("DROP USER IF EXISTS 'app'@'%'",),
        "SELECT 1 FROM mysql.user WHERE User = 'app'",
        fails=None,
    ),
    "/<db>.sql": Placement(
        _plain_db,
        "",
        TARGET,
        (),
        f"/{SOURCE}.sql",
        (f"CREATE DATABASE {TARGET}",),
        f"SELECT 1 FROM {TARGET}.t WHERE id = 2",
    ),
    "/all.sql": Placement(
        _plain_all,
        "",
        None,
        ("overwrite=true",),
        "/all.sql",
        (),
        "SELECT 1 FROM hostile_all.t",
    ),
    "/dump.sql": Placement(
        _first_layout,
        "",
        TARGET,
        (),
        "/dump.sql",
        (f"CREATE DATABASE {TARGET}",),
        f"SELECT 1 FROM {TARGET}.t WHERE id = 2",
    ),
}

#: The file a LOAD DATA LOCAL INFILE (into the source's table, which exists on
#: the server) is planted in: a table file after its rows, a /<db>.sql first.
LOCAL_INFILE: dict[str, Callable[[dict[str, bytes], bytes, bytes], dict[str, bytes]]] = {
    "table file": _edited(f"/databases/{SOURCE}/tables/t.sql", TABLE_ROWS_END),
    "/<db>.sql": _plain_db,
}

#: Every command in one file, restored with force=true: the client goes on past
#: each refused command, so one restore proves all five refused, and the data loads.
FORCED = ("table file", "/<db>.sql")


@dataclass
class World:
    """The module's server, store, crafted snapshot and watches' roots."""

    server: MariaDBServer
    plakar: Plakar
    sentinels: Sentinels
    layouts: Path
    snapshot: str
    roots: tuple[Path, ...]
    ignore: tuple[Path, ...]

    def uri(self, database: str | None) -> str:
        where = f"mysql://root@{self.server.host}:{self.server.port}"
        return f"{where}/{database}" if database else where


def _case_name(placement: str, command: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in f"{placement}-{command}")


def _plain_dump(server: MariaDBServer, base: Path) -> bytes:
    """The source database as the official integration stores it: mariadb-dump's output."""
    defaults = base / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{server.root_password}"\n')
    dump = subprocess.run(
        [
            "mariadb-dump",
            f"--defaults-file={defaults}",
            "-h",
            server.host,
            "-P",
            str(server.port),
            "--single-transaction",
            SOURCE,
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    return without_dump_sandbox(dump)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("hostile")
    server = MariaDBServer(base / "mariadb")
    try:
        for statement in (
            f"CREATE DATABASE {SOURCE}",
            f"CREATE TABLE {SOURCE}.t (id INT PRIMARY KEY, v VARCHAR(20))",
            f"INSERT INTO {SOURCE}.t VALUES (1, 'a'), (2, 'b')",
            f"CREATE PROCEDURE {SOURCE}.p() SELECT 1",
            f"CREATE VIEW {SOURCE}.vw AS SELECT id FROM {SOURCE}.t",
            f"CREATE EVENT {SOURCE}.ev ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1",
            "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
            f"GRANT SELECT ON {SOURCE}.* TO 'app'@'%'",
        ):
            server.execute(statement)
        home = base / "plakar"
        home.mkdir()
        ptar = os.environ.get("PLAKAR_MYSQL_PTAR")  # as the plakar fixture: a package to test
        plakar = make_plakar(home, ptar=Path(ptar) if ptar else None)
        private_tmp = base / "tmp"  # the restore's TMPDIR (table spools): watched
        private_tmp.mkdir()
        plakar.extra_env["TMPDIR"] = str(private_tmp)
        real = snapshot_files(
            plakar, plakar.backup(server_uri(server), f"password={server.root_password}")
        )
        plain = _plain_dump(server, base)
        sentinels = Sentinels(base / "outside")
        layouts = base / "layouts"
        for placement_name, placement in PLACEMENTS.items():
            lines = client_commands(sentinels, _case_name(placement_name, ""))
            for command, line in lines.items():
                write_layout(
                    layouts / _case_name(placement_name, command),
                    placement.files(real, plain, line),
                )
            if placement_name in FORCED:
                write_layout(
                    layouts / _case_name(placement_name, "forced"),
                    placement.files(real, plain, b"".join(lines.values())),
                )
                local = f"LOAD DATA LOCAL INFILE '{sentinels.secret()}' INTO TABLE {SOURCE}.t;\n"
                write_layout(
                    layouts / _case_name(placement_name, "local"),
                    LOCAL_INFILE[placement_name](real, plain, local.encode()),
                )
        snapshot = craft_snapshot(plakar, layouts)
        yield World(
            server=server,
            plakar=plakar,
            sentinels=sentinels,
            layouts=layouts,
            snapshot=snapshot,
            roots=(base,),
            ignore=(base / "mariadb", home / "plakar-home", home / "plakar-store"),
        )
    finally:
        server.cleanup()


def server_uri(server: MariaDBServer) -> str:
    return f"mysql://root@{server.host}:{server.port}"


def _restore(world: World, placement: Placement, case: str, *options: str) -> tuple[int, str]:
    source = f"{world.snapshot}:{world.layouts}/{case}/{placement.restore}"
    proc = world.plakar.restore(
        source,
        world.uri(placement.into),
        f"password={world.server.root_password}",
        *placement.options,
        *options,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def clean(world: World) -> Iterator[None]:
    """Each case starts and ends without the target database or crafted leftovers."""
    yield
    for database in (TARGET, "hostile_all", world.sentinels.database):
        world.server.execute(f"DROP DATABASE IF EXISTS {database}")


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("command", list(CLIENT_COMMANDS))
@pytest.mark.parametrize("placement_name", list(PLACEMENTS))
def test_a_client_command_in_a_snapshot_never_runs(
    world: World, placement_name: str, command: str
) -> None:
    placement = PLACEMENTS[placement_name]
    for statement in placement.prepare:
        world.server.execute(statement)
    before = server_state(world.server)
    watch = TreeWatch(world.roots, world.ignore)

    code, output = _restore(world, placement, _case_name(placement_name, command))

    assert world.sentinels.found(world.server) == [], output
    assert watch.changes() == [], output
    if placement.fails is not None:
        assert (code != 0) is placement.fails, output
    if code != 0:
        line = one_line(output, placement.names)
        assert "failed loading" in line or "ERROR" in line, output
        assert server_state(world.server) == before, output
    else:
        # The line was refused or skipped as data: the file's objects loaded.
        assert world.server.query(placement.restored), output


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("placement_name", FORCED)
def test_with_force_every_command_is_refused_and_only_data_loads(
    world: World, placement_name: str
) -> None:
    """force=true lets the client go past each failing line: all five commands
    reach it in one file, none runs, and the rows load."""
    placement = PLACEMENTS[placement_name]
    world.server.execute(f"CREATE DATABASE {TARGET}")
    watch = TreeWatch(world.roots, world.ignore)

    code, output = _restore(world, placement, _case_name(placement_name, "forced"), "force=true")

    assert code == 0, output
    assert world.sentinels.found(world.server) == [], output
    assert watch.changes() == [], output
    assert world.server.query(f"SELECT id, v FROM {TARGET}.t ORDER BY id") == [(1, "a"), (2, "b")]
    ignored = one_line(output, "errors ignored (force=true)")
    for refused in ("Unknown command '\\!'", "Unknown command '\\T'", "Unknown command '\\.'"):
        assert refused in ignored, ignored


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("force", [False, True], ids=["fails", "forced"])
@pytest.mark.parametrize("placement_name", FORCED)
def test_load_data_local_infile_reads_no_file_of_the_restoring_machine(
    world: World, placement_name: str, force: bool
) -> None:
    """The sandbox lets LOAD DATA LOCAL INFILE read any file the restore can
    (root's, often): the client runs with it off, so the file's row never lands
    in the target; the restore fails in one line, or with force=true skips it."""
    placement = PLACEMENTS[placement_name]
    for statement in placement.prepare:
        world.server.execute(statement)
    before = server_state(world.server)
    watch = TreeWatch(world.roots, world.ignore)

    code, output = _restore(
        world, placement, _case_name(placement_name, "local"), *(["force=true"] if force else [])
    )

    assert watch.changes() == [], output
    assert (code == 0) is force, output
    line = one_line(output, "ERROR 4166")  # the local infile capability is disabled
    if force:
        assert "errors ignored (force=true)" in line, output
        rows = world.server.query(f"SELECT id, v FROM {TARGET}.t ORDER BY id")
        assert rows == [(1, "a"), (2, "b")], output
    else:
        assert placement.names in line, output
        assert server_state(world.server) == before, output
    # The row the file holds is nowhere: the table it was to go into is as it was.
    assert world.server.query(f"SELECT id, v FROM {SOURCE}.t ORDER BY id") == [(1, "a"), (2, "b")]
