"""Throwaway Oracle MySQL servers for tests, beside the MariaDB ones.

Debian 12 has no MySQL package, so ``make mysql`` (``scripts/mysql_tree.sh``)
unpacks Debian sid's MySQL server and clients into ``build/mysql-sid/tree`` and
writes wrappers in ``build/mysql-sid/bin`` that run each tool through the
tree's own loader.  :class:`MySQLServer` runs that ``mysqld`` the way
:class:`~plakar_mysql_harness.mariadb.MariaDBServer` runs ``mariadbd`` (private data
directory, loopback port, socket, root password, bounded waits; the lifecycle
and the clients are that class's own code), and the integration finds MySQL's
``mysqldump``, ``mysql`` and ``mysqlbinlog`` through ``-o bin_dir=`` with
:attr:`MySQLServer.bin_dir`.

The server runs as a DBA runs MySQL 8 and later: the binary log on with GTIDs
(``gtid_mode=ON``, ``enforce_gtid_consistency=ON``), ``caching_sha2_password``
accounts, and its own TLS certificates (``mysqld`` makes them when it
initialises the data directory).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pymysql.connections
import pymysql.cursors

from plakar_mysql_harness.mariadb import MariaDBError, MariaDBServer

__all__ = ["MySQLServer", "mysql_bin_dir"]

#: Where ``make mysql`` puts the wrappers; ``PLAKAR_MYSQL_BIN_DIR`` names others.
_DEFAULT_BIN_DIR = Path(__file__).resolve().parents[2] / "build" / "mysql-sid" / "bin"

#: The tools the wrappers' directory must hold.
_TOOLS = ("mysqld", "mysql", "mysqldump", "mysqlbinlog", "mysqladmin")

#: 8 MiB is the least MySQL accepts; its 100 MiB default would be written out
#: in every test server's directory.
_REDO_LOG_CAPACITY = "--innodb-redo-log-capacity=8M"


def mysql_bin_dir() -> Path:
    """The directory of the MySQL wrappers, checked; one line saying how to get them."""
    bin_dir = Path(os.environ.get("PLAKAR_MYSQL_BIN_DIR") or _DEFAULT_BIN_DIR)
    missing = [tool for tool in _TOOLS if not os.access(bin_dir / tool, os.X_OK)]
    if missing:
        raise MariaDBError(
            f"MySQL's {', '.join(missing)} not found in {bin_dir}: run `make mysql` "
            "(or set PLAKAR_MYSQL_BIN_DIR to a directory holding MySQL's tools)"
        )
    return bin_dir


class MySQLServer(MariaDBServer):
    """A private Oracle MySQL server (``make mysql``'s) in its own temporary directory.

    The same interface as :class:`~plakar_mysql_harness.mariadb.MariaDBServer` (the same
    constructor, lifecycle and clients), with :attr:`flavour` ``"mysql"`` and
    :attr:`bin_dir` naming MySQL's client tools.  The data directory is made
    with ``mysqld --initialize-insecure``; root then gets its password as on
    MariaDB.  ``extra_args`` still come last and override these settings.
    """

    flavour = "mysql"

    def _find_programs(self) -> None:
        """MySQL's tools from the wrappers' directory (no installer: ``mysqld`` is one)."""
        bin_dir = mysql_bin_dir()
        self.bin_dir = str(bin_dir)
        self._tree = bin_dir.parent / "tree"
        self._mariadbd = str(bin_dir / "mysqld")
        self._client = str(bin_dir / "mysql")

    def _tree_args(self) -> list[str]:
        """Where the tree's server finds its messages and plugins (not in ``/usr``)."""
        usr = self._tree / "usr"
        return [
            f"--basedir={usr}",
            f"--lc-messages-dir={usr / 'share' / 'mysql'}",
            f"--plugin-dir={usr / 'lib' / 'mysql' / 'plugin'}",
        ]

    def _install_command(self) -> list[str]:
        """``mysqld --initialize-insecure``: ``root@localhost`` without a password."""
        return [
            *self._base_args(self._mariadbd),
            f"--log-error={self.error_log}",
            _REDO_LOG_CAPACITY,
            *self._page_size_args(),
            "--initialize-insecure",
        ]

    def _server_args(self) -> list[str]:
        """A small footprint, and the binary log with GTIDs (the tree's paths come first)."""
        files = self.base_dir / "files"
        files.mkdir(exist_ok=True)
        return [
            "--innodb-buffer-pool-size=64M",
            _REDO_LOG_CAPACITY,
            # The X Protocol listens on port 33060 by default: two servers would clash.
            "--mysqlx=OFF",
            # The compiled-in /var/lib/mysql-files does not exist: a private one.
            f"--secure-file-priv={files}",
            "--log-bin=binlog",
            "--server-id=1",
            "--gtid-mode=ON",
            "--enforce-gtid-consistency=ON",
        ]

    def connect(
        self,
        database: str | None = None,
        user: str = "root",
        password: str | None = None,
        **kwargs: Any,
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """A TCP connection over TLS (the server's own certificate, not verified).

        A ``caching_sha2_password`` login over TCP whose account is not in the
        server's cache needs TLS (or RSA, which PyMySQL does only with the
        ``cryptography`` package): the harness uses TLS, as ``mysql`` does by
        default.  ``ssl=`` in ``kwargs`` replaces it.
        """
        kwargs.setdefault("ssl", {"check_hostname": False, "verify_mode": ssl.CERT_NONE})
        return super().connect(database, user, password, **kwargs)
