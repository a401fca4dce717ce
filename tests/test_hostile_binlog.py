"""Hostile binlog snapshots: the replay treats every byte of one as data.

Each case is a directory laid out as a binlog snapshot (``binlog/<log>`` and
``manifest.json``, as ``plakar ls -recursive`` shows a real one), made from a
real archive's files with one thing wrong, backed up by ``plakar backup`` and
replayed into a real server.  Every case must fail with one line that names
the file, run nothing (the sentinel file that shell escapes in the snapshot
would create never appears) and write nothing beside the target (the
directory that holds the sentinel stays as it was).  A case found before any
of its bytes is applied leaves the target as it was; the manifest comes after
the logs (Plakar hands records over in path order), so a case found in it
leaves what was applied before, recorded in ``@@gtid_slave_pos`` and said.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_binlog import LOG_BIN, binlog_uri, password

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

LOG = "mysql-bin.000002"
ROWS = 20


@dataclass
class Archive:
    plakar: Plakar
    files: dict[str, bytes]  # "binlog/<log>" and "manifest.json": a real archive's
    start: str  # the GTID position before the archive's first transaction
    end: str  # after its last
    root: Path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """A real binlog snapshot of one log: a database, a table and ROWS inserts."""
    root = tmp_path_factory.mktemp("hostile-binlog")
    plakar = make_plakar(root)
    source = MariaDBServer(root / "source", extra_args=LOG_BIN)
    try:
        source.execute("FLUSH BINARY LOGS")  # the server's own set-up stays in the first log
        # MariaDB keeps a log until InnoDB's binlog checkpoint has passed it, which
        # can lag on a busy machine: purge again until only the new log is left.
        deadline = time.monotonic() + 60
        while True:
            source.execute("PURGE BINARY LOGS TO 'mysql-bin.000002'")
            logs = [row[0] for row in source.query("SHOW BINARY LOGS")]
            if logs == [LOG] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert logs == [LOG], f"the first log was never purged: {logs}"
        start = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        source.execute("CREATE DATABASE hostile")
        source.execute("CREATE TABLE hostile.t (id INT PRIMARY KEY)")
        for i in range(ROWS):
            source.execute(f"INSERT INTO hostile.t VALUES ({i})")
        end = str(source.query("SELECT @@gtid_binlog_pos")[0][0])
        snapshot = plakar.backup(binlog_uri(source), password(source), "flush=false")
        files = {path.lstrip("/"): data for path, data in plakar.files(snapshot).items()}
        assert sorted(files) == [f"binlog/{LOG}", "manifest.json"], sorted(files)
        yield Archive(plakar, files, start, end, root)
    finally:
        source.cleanup()
        plakar.close()


@pytest.fixture(scope="module")
def target(archive: Archive) -> Iterator[MariaDBServer]:
    server = MariaDBServer(archive.root / "target")
    try:
        yield server
    finally:
        server.cleanup()


def manifest(files: dict[str, bytes]) -> dict[str, object]:
    data: dict[str, object] = json.loads(files["manifest.json"])
    return data


def with_manifest(files: dict[str, bytes], edit: Callable[[dict[str, object]], None]) -> None:
    data = manifest(files)
    edit(data)
    files["manifest.json"] = json.dumps(data).encode()


def events(log: bytes) -> list[bytes]:
    """The log's events, each whole (after the 4-byte magic number)."""
    out, at = [], 4
    while at < len(log):
        (length,) = struct.unpack_from("<I", log, at + 9)
        out.append(log[at : at + length])
        at += length
    return out


def sentinel_sql(sentinel: Path) -> bytes:
    """The client's own commands, which would create ``sentinel`` if anything ran them."""
    return (
        f"\\! touch {sentinel}\nsystem touch {sentinel}\n\\T {sentinel}\n"
        f"SELECT 1 INTO OUTFILE '{sentinel}';\n"
    ).encode()


Craft = Callable[[dict[str, bytes], Path], None]
"""Changes a real archive's files into a hostile case (``Path``: the sentinel)."""


def bad_magic(files: dict[str, bytes], sentinel: Path) -> None:
    files[f"binlog/{LOG}"] = sentinel_sql(sentinel)


def no_gtid_list(files: dict[str, bytes], sentinel: Path) -> None:
    log = files[f"binlog/{LOG}"]
    kept = [e for e in events(log) if e[4] != 163]  # every event but the GTID list
    files[f"binlog/{LOG}"] = log[:4] + b"".join(kept)


def mysql_log(files: dict[str, bytes], sentinel: Path) -> None:
    """A log in MySQL's format (``Previous_gtids``, a ``uuid:n`` GTID, a statement
    holding the sentinel's commands) in place of the MariaDB one."""

    def event(kind: int, body: bytes, at: int) -> bytes:
        length = 19 + len(body) + 4
        head = struct.pack("<IBIIIH", 1_800_000_000, kind, 1, length, at + length, 0) + body
        return head + struct.pack("<I", zlib.crc32(head))

    out = bytearray(b"\xfebin")
    version = b"9.7.4".ljust(50, b"\0")
    fde = struct.pack("<H", 4) + version + struct.pack("<IB", 0, 19) + b"\0" * 40 + b"\x01"
    out += event(15, fde, len(out))  # the format description, with checksums
    out += event(35, struct.pack("<Q", 0), len(out))  # Previous_gtids: empty
    gtid = b"\x01" + bytes(range(16)) + struct.pack("<Q", 1) + b"\x02" + b"\0" * 16
    out += event(33, gtid, len(out))
    query = struct.pack("<IIBHH", 1, 0, 0, 0, 0) + b"\0" + sentinel_sql(sentinel)
    out += event(2, query, len(out))
    files[f"binlog/{LOG}"] = bytes(out)


def huge_event(files: dict[str, bytes], sentinel: Path) -> None:
    log = bytearray(files[f"binlog/{LOG}"])
    struct.pack_into("<I", log, 4 + 9, 2 << 30)  # the format description claims 2 GiB
    files[f"binlog/{LOG}"] = bytes(log)


def sql_beside_the_logs(files: dict[str, bytes], sentinel: Path) -> None:
    files["a.sql"] = sentinel_sql(sentinel)  # before /binlog in Plakar's order


def sql_after_the_logs(files: dict[str, bytes], sentinel: Path) -> None:
    files["zz.sql"] = sentinel_sql(sentinel)  # after the logs and the manifest


def manifest_not_json(files: dict[str, bytes], sentinel: Path) -> None:
    files["manifest.json"] = b'{"kind": "binlog", "files": [' + sentinel_sql(sentinel)


def manifest_huge(files: dict[str, bytes], sentinel: Path) -> None:
    files["manifest.json"] = files["manifest.json"] + b" " * (16 << 20)  # valid JSON, 16 MiB


def manifest_not_binlog(files: dict[str, bytes], sentinel: Path) -> None:
    with_manifest(files, lambda m: m.update(kind="logical"))


def manifest_files_malformed(files: dict[str, bytes], sentinel: Path) -> None:
    with_manifest(files, lambda m: m.update(files=[{"name": LOG, "size": "all of it"}]))


def manifest_lists_an_absent_log(files: dict[str, bytes], sentinel: Path) -> None:
    def edit(m: dict[str, object]) -> None:
        listed = m["files"]
        assert isinstance(listed, list)
        listed.append({**listed[-1], "name": "mysql-bin.000003"})

    with_manifest(files, edit)


def log_not_in_the_manifest(files: dict[str, bytes], sentinel: Path) -> None:
    with_manifest(files, lambda m: m.update(files=[]))


def log_size_differs(files: dict[str, bytes], sentinel: Path) -> None:
    def edit(m: dict[str, object]) -> None:
        listed = m["files"]
        assert isinstance(listed, list)
        listed[0]["size"] += 1

    with_manifest(files, edit)


# Each case: how the files are changed, what its one line says, and whether the log
# was applied before the fault was found (in the manifest, which comes last).
CASES: list[tuple[Craft, str, bool]] = [
    (bad_magic, f"{LOG} is not a binary log (bad magic); nothing was applied", False),
    (no_gtid_list, f"{LOG} has no GTID list (MariaDB's Gtid_list", False),
    (huge_event, f"{LOG}: an event of {2 << 30} bytes; nothing was applied", False),
    (mysql_log, f"{LOG} is a MySQL binary log: it cannot be replayed onto a MariaDB", False),
    (sql_beside_the_logs, "/a.sql is not part of a binary-log snapshot", False),
    (sql_after_the_logs, "/zz.sql is not part of a binary-log snapshot", True),
    (manifest_not_json, "/manifest.json is not JSON", True),
    (manifest_huge, f"/manifest.json is larger than {16 << 20} bytes", True),
    (manifest_not_binlog, "/manifest.json is not the manifest of a binlog snapshot", True),
    (manifest_files_malformed, '/manifest.json: "files" must list each log once', True),
    (manifest_lists_an_absent_log, "/manifest.json lists mysql-bin.000003, absent", True),
    (log_not_in_the_manifest, f"/binlog/{LOG} is in the snapshot but not in", True),
    (log_size_differs, f"/binlog/{LOG} holds", True),
]


def state(server: MariaDBServer) -> tuple[object, ...]:
    """What a replay may change: the databases, the table's rows, the restored point."""
    databases = tuple(server.query("SHOW DATABASES"))
    rows = server.query("SELECT COUNT(*) FROM hostile.t") if ("hostile",) in databases else None
    return databases, rows, server.query("SELECT @@gtid_slave_pos")[0][0]


@pytest.mark.parametrize(("craft", "message", "applied"), CASES, ids=[c[0].__name__ for c in CASES])
def test_hostile_binlog_snapshot_is_refused_in_one_line(
    archive: Archive,
    target: MariaDBServer,
    tmp_path: Path,
    craft: Craft,
    message: str,
    applied: bool,
) -> None:
    target.execute("DROP DATABASE IF EXISTS hostile")
    target.execute("SET GLOBAL gtid_slave_pos = ''")
    watched = tmp_path / "watched"  # nothing may appear here, the sentinel least of all
    watched.mkdir()
    sentinel = watched / "sentinel"
    layout = tmp_path / "snapshot"
    files = dict(archive.files)
    craft(files, sentinel)
    for name, data in files.items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    snapshot = archive.plakar.backup(str(layout))
    before = state(target)
    proc = archive.plakar.restore(
        f"{snapshot}:{layout}",
        binlog_uri(target),
        password(target),
        f"start_position={archive.start}",
        check=False,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert any(message in line for line in output.splitlines()), output
    assert list(watched.iterdir()) == [], "the snapshot's commands ran"
    if applied:  # found in the manifest, after the log: applied, recorded and said
        assert f"the transactions up to {archive.end} are applied" in output, output
        assert state(target)[1:] == ([(ROWS,)], archive.end)
    else:
        assert state(target) == before, output
    shutil.rmtree(layout)
