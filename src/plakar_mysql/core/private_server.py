"""What every private start of a server takes, whoever starts it, on either flavour.

The integration starts a server of its own in three places: the MySQL clone
backup's start on the clone (:mod:`plakar_mysql.physical.clone_start`), and the
drill's throwaway servers (:mod:`plakar_mysql.drill.server`), on MariaDB and on
MySQL.  Each such server must be unreachable and inert: no network, no
replication started, no binary log, no event run, no buffer pool dump written
into the data directory; on MySQL also no X Protocol listener (port 33060) and
no TLS certificates generated into the data directory.  The flags differ by
flavour (MySQL 8.4 and later no longer know ``--skip-slave-start``); they are
written here once.

MySQL's ``mysqld`` needs no installation paths on its command line: it derives
``--basedir`` from its own executable (``/usr/sbin/mysqld`` gives ``/usr``; a
tree unpacked elsewhere, such as ``build/mysql-sid``, gives the tree's
``usr``), and ``--lc-messages-dir`` and ``--plugin-dir`` from it.
"""

from __future__ import annotations

from plakar_mysql.core.flavour import Flavour

_COMMON = (
    "--skip-networking",
    "--skip-log-bin",
    "--event-scheduler=OFF",
    "--innodb-buffer-pool-load-at-startup=0",
    "--innodb-buffer-pool-dump-at-shutdown=0",
)
_BY_FLAVOUR = {
    Flavour.MARIADB: ("--skip-slave-start",),
    Flavour.MYSQL: ("--skip-replica-start", "--mysqlx=OFF", "--auto-generate-certs=OFF"),
}


def private_args(flavour: Flavour) -> list[str]:
    """The flags that keep a private server of ``flavour`` unreachable and inert."""
    return [*_COMMON, *_BY_FLAVOUR[flavour]]
