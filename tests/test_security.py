"""Security end to end, through the real plakar CLI: TLS with a CA the test
generates, and an encrypted store that holds no trace of the data in clear."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import MariaDBFactory
from test_backup_restore import password, uri

from plakar_mysql_harness.mariadb import MariaDBServer
from plakar_mysql_harness.plakar import Plakar, assert_no_clear_data

MARKER = "plakar-marker-5f1c2a9e-in-clear"


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1, signed by ``ca``."""
    key, csr, cert = (
        directory / "server-key.pem",
        directory / "server.csr",
        directory / "server.pem",
    )
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        [
            *("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(csr)),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1])),
            *("-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_server_with_a_test_ca(
    plakar: Plakar, flavour: str, server_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """MariaDB: a CA the test makes.  MySQL 9.7: the server's own certificates, which
    ``mysqld`` generated in its data directory (``ca.pem``)."""
    other_ca = make_ca(tmp_path, "other-ca")
    if flavour == "mysql":
        server = server_factory(extra_args=["--require-secure-transport=ON"])
        ca = (server.datadir / "ca.pem", server.datadir / "ca-key.pem")
    else:
        ca = make_ca(tmp_path, "test-ca")
        cert, key = make_server_cert(tmp_path, ca)
        server = server_factory(
            extra_args=[
                f"--ssl-ca={ca[0]}",
                f"--ssl-cert={cert}",
                f"--ssl-key={key}",
                "--require-secure-transport=ON",
            ]
        )
    tools = () if server.bin_dir is None else (f"bin_dir={server.bin_dir}",)
    server.execute("CREATE DATABASE shop")
    server.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    server.execute("INSERT INTO shop.t VALUES (1), (2)")

    verified = ("ssl_mode=verify_ca", f"ssl_ca={ca[0]}")
    snapshot = plakar.backup(uri(server, "shop"), password(server), *tools, *verified)
    plakar.restore(snapshot, uri(server, "copy"), password(server), *tools, *verified)
    assert server.query("SELECT COUNT(*) FROM copy.t")[0][0] == 2
    # Without a CA: TLS that verifies nothing, by default (preferred) and when required.
    plakar.backup(uri(server, "shop"), password(server), *tools)
    plakar.backup(uri(server, "shop"), password(server), *tools, "ssl_mode=required")

    proc = plakar.at(
        "backup",
        "-o",
        password(server),
        *(word for tool in tools for word in ("-o", tool)),
        "-o",
        "ssl_mode=verify_ca",
        "-o",
        f"ssl_ca={other_ca[0]}",
        uri(server, "shop"),
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "certificate" in output.lower(), output
    assert len(plakar.snapshots()) == 3

    # Without TLS the server refuses (MariaDB answers "access denied", MySQL that
    # connections "using insecure transport are prohibited").
    proc = plakar.at(
        "backup",
        "-o",
        password(server),
        *(word for tool in tools for word in ("-o", tool)),
        "-o",
        "ssl_mode=disabled",
        uri(server, "shop"),
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and ("denied" in output or "insecure transport" in output), output
    assert len(plakar.snapshots()) == 3


@pytest.mark.encrypted_store
def test_encrypted_store_holds_no_clear_data(
    plakar: Plakar, mariadb_factory: MariaDBFactory
) -> None:
    server = mariadb_factory()
    server.execute("CREATE DATABASE shop")
    server.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, note TEXT)")
    server.execute(
        f"INSERT INTO t SELECT seq, CONCAT('{MARKER} ', seq) FROM seq_1_to_2000", database="shop"
    )
    snapshot = plakar.backup(uri(server, "shop"), password(server))
    assert MARKER.encode() in plakar.cat(snapshot, "/databases/shop/tables/t.sql")

    assert_no_clear_data(
        Path(plakar.store), [MARKER.encode(), MARKER.encode("utf-16-le"), b"CREATE TABLE `t`"]
    )


def _watch(stop: threading.Event, seen: list[tuple[bytes, bytes]]) -> None:
    """Record the argv and environment of every process while ``stop`` is unset."""
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    seen.append(((proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()))
                except OSError:
                    continue
        time.sleep(0.01)


def _hashes(server: MariaDBServer) -> list[str]:
    """Every password hash of the server, as text and as hex."""
    rows = server.query(
        "SELECT authentication_string, HEX(authentication_string) FROM mysql.user "
        "WHERE authentication_string <> ''"
    )
    return [str(value) for row in rows for value in row]


def test_no_password_in_argv_environment_output_or_snapshot(
    plakar: Plakar, server: MariaDBServer, tmp_path: Path
) -> None:
    """On both flavours, with the password in a ``defaults_file``: a whole-server
    backup (accounts included) and restores of a database and of the accounts
    (``users=true overwrite=true``) show no password to any process's argv or
    environment (the dump tool and the client included), and neither plakar's
    output nor the snapshot holds a password; the output holds no 8 characters of
    any hash either (``users.sql`` holds the hashes, by design, and nothing else).
    The accounts dropped and created again from the snapshot log in with their
    passwords: ``caching_sha2_password`` and, on MySQL, ``sha256_password``."""
    mysql = server.flavour == "mysql"
    for statement in (
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id INT PRIMARY KEY)",
        "INSERT INTO shop.t VALUES (1)",
        "CREATE PROCEDURE shop.p() SELECT 1",
        "CREATE ROLE reader",
        "GRANT SELECT ON shop.* TO reader",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret-6d1e'",
        "GRANT reader TO 'app'@'%'",
        f"SET DEFAULT ROLE reader {'TO' if mysql else 'FOR'} 'app'@'%'",
    ):
        server.execute(statement)
    if mysql:  # MySQL's other plugin with a hash (9.7 has no mysql_native_password)
        server.execute("CREATE USER 'sha'@'%' IDENTIFIED WITH sha256_password BY 'sha-secret-2b9'")
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{server.root_password}"\n')
    defaults.chmod(0o600)
    opts = [f"defaults_file={defaults}"]
    if server.bin_dir is not None:
        opts.append(f"bin_dir={server.bin_dir}")
    at = f"mysql://{server.host}:{server.port}"
    passwords = [server.root_password, "app-secret-6d1e", "sha-secret-2b9"]
    hashes = _hashes(server)
    seen: list[tuple[bytes, bytes]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(stop, seen))
    watcher.start()
    try:
        snapshot = plakar.backup(at, *opts)
        outputs = [
            plakar.restore(snapshot, f"{at}/shop_secret", *opts, "overwrite=true"),
            plakar.restore(
                f"{snapshot}:/server/users.sql", at, *opts, "users=true", "overwrite=true"
            ),
        ]
    finally:
        stop.set()
        watcher.join()
    dump = b"mysqldump" if mysql else b"mariadb-dump"
    tools = [argv for argv, _ in seen if dump in argv]
    # (other processes of the machine may run a dump tool too: ours reads a pipe)
    assert any(b"--defaults-file=/dev/fd/" in argv for argv in tools), tools[:3]
    leaks = [argv for argv, env in seen for p in passwords if p.encode() in argv + env]
    assert leaks == []
    output = "".join(proc.stdout + proc.stderr for proc in outputs)
    assert "restored 2 account(s)" in output or "account(s) and role(s)" in output, output
    pieces = {h[i : i + 8] for h in hashes for i in range(len(h) - 7)}
    assert [p for p in passwords if p in output] == [] and not any(x in output for x in pieces)
    files = plakar.files(snapshot)
    assert [name for name, data in files.items() for p in passwords if p.encode() in data] == []
    with server.connect(user="app", password="app-secret-6d1e") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_ROLE()")
        assert cur.fetchall()[0][0] in ("reader", "`reader`@`%`")
    if mysql:  # dropped and created again from the snapshot's hash
        [(plugin,)] = server.query("SELECT plugin FROM mysql.user WHERE User = 'sha'")
        assert plugin == "sha256_password"
        server.connect(user="sha", password="sha-secret-2b9").close()
