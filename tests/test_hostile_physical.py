"""Hostile physical snapshots: a restore (``-to mysql+bin:///DIR``) puts data into its
target and does nothing else.

One real physical snapshot of a small MariaDB server is restored as plain files;
each case copies those files, edits them as an attacker who could write to the
store would (a ``backup-my.cnf`` that loads a library or runs SQL, paths that
leave the data directory, symbolic links, a manifest that lies), backs the
directory up again with ``plakar backup`` and restores it with the packaged
integration.  Each case proves that the restore either fails with one line
naming the file, or restores only data into the target; that nothing ran
(sentinel files must not appear); that nothing was written outside the target
(every directory of the test is listed before and after); and that a failed
restore leaves the target as it was.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.mounts import tmpfs
from test_backup_restore import password
from test_physical import LOG_BIN, bin_uri, restore_uri

from plakar_mysql.physical.manifest import MANIFEST_LIMIT
from plakar_mysql_harness.datadir import DatadirServer
from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, make_plakar

pytestmark = pytest.mark.skipif(
    shutil.which("mariadb-backup") is None, reason="mariadb-backup missing: run `make deps`"
)

ROWS = 500


@dataclass(frozen=True)
class Base:
    plakar: Plakar
    files: Path  # the real snapshot restored as files: manifest.json, datadir/
    root_password: str


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    root = tmp_path_factory.mktemp("hostile-physical")
    ptar = os.environ.get("PLAKAR_MYSQL_PTAR")  # as the plakar fixture: another package
    plakar = make_plakar(root, ptar=Path(ptar) if ptar else None)
    source = MariaDBServer(root / "source", extra_args=LOG_BIN)
    try:
        source.execute("CREATE DATABASE shop")
        source.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, label VARCHAR(20))")
        source.execute(
            f"INSERT INTO shop.t SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{ROWS}",
            database="shop",
        )
        snapshot = plakar.backup(bin_uri(source), password(source))
        files = root / "files"
        plakar.restore(snapshot, files)
        assert (files / "manifest.json").is_file()
        assert (files / "datadir" / "backup-my.cnf").is_file()
        yield Base(plakar, files, source.root_password)
    finally:
        source.cleanup()
        plakar.close()


# -- helpers: crafting, watching --------------------------------------------------------


def relist(crafted: Path) -> None:
    """Make manifest.json list exactly the regular files under datadir/, with their sizes
    (so that a case tests what comes after the manifest check)."""
    manifest = json.loads((crafted / "manifest.json").read_bytes())
    datadir = crafted / "datadir"
    files = {}
    for directory, _dirs, names in os.walk(datadir):
        for name in names:
            path = Path(directory) / name
            if stat.S_ISREG(path.lstat().st_mode):
                files[path.relative_to(datadir).as_posix()] = path.lstat().st_size
    manifest["files"] = files
    (crafted / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(crafted: Path, change: Callable[[dict[str, object]], None]) -> None:
    manifest = json.loads((crafted / "manifest.json").read_bytes())
    change(manifest)
    (crafted / "manifest.json").write_text(json.dumps(manifest))


def tree(root: Path, skip: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry under ``root`` but ``skip``: (mode, uid, size, mtime), links not
    followed (a directory's size and mtime are left out: its entries are listed)."""
    state = {}
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if Path(directory) / d != skip]
        for name in [*dirs, *names]:
            path = Path(directory) / name
            if path == skip:
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):  # its entries are listed; its mtime tells nothing
                state[str(path)] = (info.st_mode, info.st_uid, 0, 0)
            else:
                state[str(path)] = (info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns)
    return state


def target_state(target: Path) -> tuple[int, int, list[str]] | None:
    """None if absent, else (mode, owner, what it holds)."""
    if not os.path.lexists(target):
        return None
    info = target.lstat()
    held = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    return (info.st_mode, info.st_uid, held)


@dataclass
class Case:
    """One hostile restore: the crafted directory, where it goes, what must not appear."""

    base: Base
    tmp: Path

    @property
    def crafted(self) -> Path:
        return self.tmp / "crafted"

    @property
    def datadir(self) -> Path:
        return self.crafted / "datadir"

    @property
    def outside(self) -> Path:
        """Where an attacker would like the restore to write or run something."""
        return self.tmp / "outside"

    @property
    def target(self) -> Path:
        return self.tmp / "place" / "target"

    def sentinels(self) -> list[str]:
        return sorted(p.name for p in self.outside.iterdir() if p.name.startswith("sentinel"))

    def restore(self, target: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Back the crafted directory up and restore it to ``target``."""
        snapshot = self.base.plakar.backup(str(self.crafted))
        return self.base.plakar.restore(
            f"{snapshot}:{self.crafted}", restore_uri(target or self.target), check=False
        )

    def assert_refused(self, needle: str, *, target: Path | None = None) -> str:
        """The restore fails with ``needle`` in one line, runs and writes nothing,
        and leaves the target as it was."""
        where = target or self.target
        before = tree(self.tmp, where)
        target_before = target_state(where)
        proc = self.restore(where)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        lines = [line for line in output.splitlines() if needle in line]
        assert lines, f"{needle!r} not in one line of:\n{output}"
        assert self.sentinels() == []
        assert tree(self.tmp, where) == before, "something was written outside the target"
        assert target_state(where) == target_before, "the target was changed"
        return lines[0]


@pytest.fixture
def case(base: Base, tmp_path: Path) -> Case:
    c = Case(base, tmp_path)
    shutil.copytree(base.files, c.crafted, symlinks=True)
    c.outside.mkdir()
    (c.outside / "victim").write_text("keep me")
    c.target.parent.mkdir()
    return c


# -- backup-my.cnf: the private server and --prepare read it as data only ----------------

EVIL_SO = r"""
#include <stdio.h>
__attribute__((constructor)) static void pwn(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("plugin ran\n", f); fclose(f); }
}
"""


def build_plugin(source_dir: Path, out: Path, sentinel: Path) -> None:
    """A shared library that writes ``sentinel`` as soon as anything loads it."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the plugin of the attack")
    c_file = source_dir / "evil.c"
    c_file.write_text(EVIL_SO % sentinel)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(out), str(c_file)], check=True, timeout=120
    )
    c_file.unlink()


def test_a_hostile_backup_my_cnf_configures_nothing_and_runs_nothing(
    case: Case, tmp_path: Path
) -> None:
    """plugin_dir + plugin_load_add (a library shipped in the snapshot), init_file (SQL
    shipped in the snapshot), the general log to a path outside: the restore takes the
    InnoDB layout, names what it ignored, and restores the files as data."""
    outside = case.outside
    build_plugin(tmp_path, case.datadir / "evil.so", outside / "sentinel-plugin")
    (case.datadir / "evil.sql").write_text(
        "CREATE DATABASE sentinel_init;\n"
        f"SELECT 'init_file ran' INTO OUTFILE '{outside / 'sentinel-init'}';\n"
    )
    with (case.datadir / "backup-my.cnf").open("a") as cnf:
        cnf.write(
            f"plugin_dir={case.target}\n"
            "plugin_load_add=evil.so\n"
            "plugin-load-add=evil\n"
            f"init_file={case.target}/evil.sql\n"
            "general_log=1\n"
            f"general_log_file={outside}/sentinel-log\n"
            "[mariadb-backup]\n"
            f"plugin_dir={case.target}\nplugin_load=evil.so\n"
        )
    relist(case.crafted)  # the files are listed: only the settings are hostile
    before = tree(case.tmp, case.target)

    proc = case.restore()
    output = proc.stdout + proc.stderr
    assert case.sentinels() == [], output  # at main: sentinel-init, -log and -plugin
    assert not (case.target / "sentinel_init").exists()
    assert proc.returncode == 0, output
    ignored = next(line for line in output.splitlines() if "backup-my.cnf: ignored" in line)
    for name in ("plugin_dir", "plugin_load_add", "init_file", "general_log_file"):
        assert name in ignored, ignored
    assert "[mariadb-backup] plugin_load" in ignored
    assert "set the backup's point" in output, output  # the private start did run
    assert tree(case.tmp, case.target) == before
    # Only data: the attack's files are in the target, inert.
    assert (case.target / "evil.so").is_file() and (case.target / "evil.sql").is_file()
    server = DatadirServer(
        case.target, tmp_path / "restored", root_password=case.base.root_password
    )
    try:
        assert server.query("SELECT COUNT(*) FROM shop.t") == [(ROWS,)]
        assert server.query("SHOW DATABASES LIKE 'sentinel%'") == []
    finally:
        server.cleanup()
    assert case.sentinels() == []


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("!include /etc/passwd", "backup-my.cnf line"),
        ("innodb_page_size=65537", "innodb_page_size = '65537' is out of range"),
        ("innodb_data_file_path=/etc/passwd:12M", "innodb_data_file_path"),
    ],
    ids=["include", "page-size", "data-file-path"],
)
def test_a_malformed_backup_my_cnf_is_refused(case: Case, line: str, needle: str) -> None:
    with (case.datadir / "backup-my.cnf").open("a") as cnf:
        cnf.write(line + "\n")
    relist(case.crafted)
    case.assert_refused(needle)


# -- the manifest ------------------------------------------------------------------------


def test_a_malformed_manifest_is_one_line(case: Case) -> None:
    (case.crafted / "manifest.json").write_text('{"kind": "physical", "files": {')
    case.assert_refused("manifest.json is malformed")


def test_a_manifest_over_the_size_limit_is_refused_unread(case: Case) -> None:
    """A sparse file just over the cap (Plakar stores its zeros once); the cap is checked
    on the record's size before anything is read (a 2 GiB one: the same check)."""
    with (case.crafted / "manifest.json").open("r+b") as f:
        f.truncate(MANIFEST_LIMIT + (1 << 20))
    case.assert_refused(f"manifest.json is {MANIFEST_LIMIT + (1 << 20)} bytes, over the limit")


def test_a_snapshot_without_manifest_is_refused(case: Case) -> None:
    (case.crafted / "manifest.json").unlink()
    case.assert_refused("the snapshot has no /manifest.json")


def test_a_manifest_listing_absent_files_is_refused(case: Case) -> None:
    edit_manifest(case.crafted, lambda m: m["files"].update({"shop/ghost.ibd": 16384}))  # type: ignore[attr-defined]
    case.assert_refused("are not in the snapshot: shop/ghost.ibd")


def test_a_file_missing_from_the_snapshot_is_refused(case: Case) -> None:
    (case.datadir / "shop" / "t.frm").unlink()
    case.assert_refused("are not in the snapshot: shop/t.frm")


def test_files_not_listed_in_the_manifest_are_refused(case: Case) -> None:
    (case.datadir / "evil.so").write_bytes(b"\x7fELF not really")
    (case.datadir / "shop" / "a\nb.ibd").write_bytes(b"x")
    line = case.assert_refused("not listed in manifest.json")
    assert "evil.so" in line and "'shop/a\\nb.ibd'" in line


def test_a_file_of_another_size_than_listed_is_refused(case: Case) -> None:
    with (case.datadir / "xtrabackup_info").open("a") as f:
        f.write("tool_command = --plugin-load=evil\n")
    case.assert_refused("differ in size from manifest.json: xtrabackup_info")


@pytest.mark.parametrize(
    ("path", "needle"),
    [("../escape", "unsafe file name '../escape'"), ("/etc/cron.d/x", "unsafe file name")],
    ids=["dotdot", "absolute"],
)
def test_a_manifest_path_leaving_the_directory_is_refused(
    case: Case, path: str, needle: str
) -> None:
    edit_manifest(case.crafted, lambda m: m["files"].update({path: 1}))  # type: ignore[attr-defined]
    case.assert_refused(needle)


def test_a_snapshot_without_checkpoints_is_refused(case: Case) -> None:
    (case.datadir / "xtrabackup_checkpoints").unlink()
    relist(case.crafted)
    case.assert_refused("the snapshot has no xtrabackup_checkpoints")


# -- paths and file types ------------------------------------------------------------------


def test_a_path_outside_datadir_is_refused(case: Case) -> None:
    (case.crafted / "etc" / "cron.d").mkdir(parents=True)
    (case.crafted / "etc" / "cron.d" / "evil").write_text("* * * * * root touch /pwned\n")
    line = case.assert_refused("'/etc' is not part of a physical backup")
    assert "restore the whole snapshot" in line


@pytest.mark.parametrize(
    ("name", "points_to"),
    [("shop/t2.ibd", "victim"), ("backup-my.cnf", "victim"), ("evil", ".")],
    ids=["file-link", "cnf-link", "directory-link"],
)
def test_a_symbolic_link_in_datadir_is_refused(case: Case, name: str, points_to: str) -> None:
    link = case.datadir / name
    if link.exists():
        link.unlink()
    link.symlink_to(case.outside / points_to)
    relist(case.crafted)
    case.assert_refused(f"'/datadir/{name}' is not a regular file")
    assert (case.outside / "victim").read_text() == "keep me"


def test_a_name_that_is_not_utf8_is_refused(case: Case) -> None:
    """Plakar stores such a name but cannot send it to a plugin (its protocol's strings
    are UTF-8): the restore fails in Plakar's own line, and nothing stays behind."""
    os.close(os.open(bytes(case.datadir / "shop") + b"/t\xff.ibd", os.O_CREAT | os.O_WRONLY))
    case.assert_refused("invalid UTF-8")


# -- the target ----------------------------------------------------------------------------


def test_a_target_owned_by_another_user_is_refused(case: Case) -> None:
    nobody = pwd.getpwnam("nobody")
    case.target.mkdir(mode=0o755)
    os.chown(case.target, nobody.pw_uid, nobody.pw_gid)
    if os.geteuid() == nobody.pw_uid:
        pytest.skip("running as nobody")
    case.assert_refused(f"{case.target} belongs to nobody")


def test_a_target_writable_by_others_is_refused(case: Case) -> None:
    case.target.mkdir()
    case.target.chmod(0o777)
    case.assert_refused(f"{case.target} is writable by other users")


def test_a_symbolic_link_on_the_way_to_the_target_is_refused(case: Case) -> None:
    real = case.outside / "real"
    real.mkdir()
    link = case.target.parent / "link"
    link.symlink_to(real)
    case.assert_refused(f"{link} is a symbolic link", target=link / "target")
    assert list(real.iterdir()) == []
    case.assert_refused(f"{link} is a symbolic link", target=link)


def test_a_read_only_target_is_one_line(case: Case) -> None:
    with tmpfs(case.target.parent / "ro", "ro,size=1m,mode=755") as ro:
        line = case.assert_refused("read-only file system", target=ro / "target")
        assert "Errno" not in line
        case.assert_refused(f"{ro} is on a read-only file system", target=ro)
