"""Where the snapshots live: the same backup and restore through the real plakar
CLI with the encrypted store on an SFTP server, on S3-compatible object
storage, copied there with ``plakar sync``, and archived for cold storage with
``plakar ptar``.

Each test backs up shop plus a small database whose rows carry a marker
string, restores the snapshot from where it was stored into a fresh server,
compares both databases object by object, and reads every raw byte the
storage server holds to show that the marker never reached it in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
from conftest import MariaDBFactory
from support.compare import describe_database, diff
from support.fuse import MountedServer
from support.s3 import S3Server, s3_tools_missing
from support.sftp import SFTPServer, ssh_tools_missing
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, assert_no_clear_data, find_ptar, make_plakar

Server = TypeVar("Server", bound=MountedServer)
MARKER = "plakar-marker-0d5e7b31-in-clear"
#: Never in clear in a store: the marker (as written, and as UTF-16) and a
#: statement every dump holds.
NEEDLES = (MARKER.encode(), MARKER.encode("utf-16-le"), b"CREATE TABLE `")


@pytest.fixture
def marked(shop_server: MariaDBServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database next to shop whose 2,000 rows carry :data:`MARKER`; dropped afterwards."""
    name = f"marked_{quote(request.node.name, safe='')[:40]}".replace("%", "_")
    shop_server.execute(f"CREATE DATABASE `{name}`")
    try:
        shop_server.execute(
            f"CREATE TABLE `{name}`.notes (id INT PRIMARY KEY, note TEXT)",
        )
        shop_server.execute(
            f"INSERT INTO `{name}`.notes SELECT seq, CONCAT('{MARKER} ', seq) FROM seq_1_to_2000",
            database=name,
        )
        yield name
    finally:
        shop_server.execute(f"DROP DATABASE `{name}`")


def back_up(plakar: Plakar, server: MariaDBServer, marked: str) -> str:
    return plakar.backup(uri(server), password(server), f"databases=shop,{marked}")


def restore_and_compare(
    plakar: Plakar, snapshot: str, source: MariaDBServer, target: MariaDBServer, marked: str
) -> None:
    """Restore the whole snapshot into ``target``; both databases must match the source."""
    plakar.restore(snapshot, uri(target), password(target))
    for database in ("shop", marked):
        assert diff(describe_database(source, database), describe_database(target, database)) == []


def _running(missing: str | None, start: Callable[[], Server]) -> Iterator[Server]:
    """A storage server for one test, stopped (and unmounted) afterwards."""
    if missing is not None:
        pytest.fail(missing)
    server = start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    yield from _running(s3_tools_missing(), lambda: S3Server(tmp_path / "s3"))


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SFTPServer]:
    yield from _running(ssh_tools_missing(), lambda: SFTPServer(tmp_path / "sshd"))


def test_store_on_s3_object_storage(
    tmp_path: Path,
    s3: S3Server,
    shop_server: MariaDBServer,
    marked: str,
    mariadb_factory: MariaDBFactory,
) -> None:
    bucket = s3.create_bucket("backups")
    mount = s3.mount("backups", tmp_path / "mnt")
    plakar = make_plakar(tmp_path / "client", store=mount / "mysql", encrypted=True)

    snapshot = back_up(plakar, shop_server, marked)
    plakar.check(snapshot)
    assert (bucket / "mysql" / "CONFIG").is_file()
    restore_and_compare(plakar, snapshot, shop_server, mariadb_factory(), marked)
    assert_no_clear_data(s3.root, NEEDLES)


@pytest.mark.encrypted_store
def test_local_store_synced_to_s3_restores_from_the_copy(
    tmp_path: Path,
    plakar: Plakar,
    s3: S3Server,
    shop_server: MariaDBServer,
    marked: str,
    mariadb_factory: MariaDBFactory,
) -> None:
    snapshot = back_up(plakar, shop_server, marked)
    s3.create_bucket("offsite")
    copy = s3.mount("offsite", tmp_path / "mnt") / "mysql"
    # The peer's passphrase comes from a command, as the README shows, not
    # from plakar's configuration file.
    secret = tmp_path / "offsite.passphrase"
    secret.touch(mode=0o600)
    secret.write_text(plakar.passphrase + "\n")
    plakar.run("store", "add", "offsite", str(copy), f"passphrase_cmd=cat {secret}")
    plakar.run("at", "@offsite", "create")
    plakar.at("sync", "to", "@offsite")
    assert_no_clear_data(s3.root, NEEDLES)

    # The copy alone, from another home: the local store plays no part.
    remote = Plakar(tmp_path / "elsewhere", store=copy, passphrase=plakar.passphrase)
    remote.pkg_add(find_ptar())
    assert remote.snapshots() == [snapshot]
    remote.check(snapshot)
    restore_and_compare(remote, snapshot, shop_server, mariadb_factory(), marked)


def test_store_on_an_sftp_server(
    tmp_path: Path,
    sftp: SFTPServer,
    shop_server: MariaDBServer,
    marked: str,
    mariadb_factory: MariaDBFactory,
) -> None:
    served = tmp_path / "sftp-home"  # the server's side of the SFTP session
    served.mkdir()
    mount = sftp.mount(served, tmp_path / "mnt")
    plakar = make_plakar(tmp_path / "client", store=mount / "store", encrypted=True)

    snapshot = back_up(plakar, shop_server, marked)
    plakar.check(snapshot)
    assert (served / "store" / "CONFIG").is_file()
    restore_and_compare(plakar, snapshot, shop_server, mariadb_factory(), marked)
    assert_no_clear_data(served, NEEDLES)


@pytest.mark.encrypted_store
def test_cold_storage_archive_restores_into_a_fresh_server(
    tmp_path: Path,
    plakar: Plakar,
    shop_server: MariaDBServer,
    marked: str,
    mariadb_factory: MariaDBFactory,
) -> None:
    """``plakar ptar`` packs a store into one encrypted file; the file alone restores."""
    snapshot = back_up(plakar, shop_server, marked)
    plakar.run("store", "add", "live", str(plakar.store), f"passphrase={plakar.passphrase}")
    archive = tmp_path / "cold" / "mysql.ptar"
    archive.parent.mkdir()
    plakar.run("ptar", "-k", "@live", "-o", str(archive))
    assert_no_clear_data(archive.parent, NEEDLES)

    # Another host: only the archive and its passphrase, a new home, the package.
    cold = Plakar(tmp_path / "elsewhere", store=archive, passphrase=plakar.passphrase)
    cold.pkg_add(find_ptar())
    assert cold.snapshots() == [snapshot]
    restore_and_compare(cold, snapshot, shop_server, mariadb_factory(), marked)
