"""Point-in-time recovery: archive a server's binary logs, replay them onto a restored base.

``mysql+binlog://`` is a kind of its own, served by the same executables as
the logical backup (they dispatch on the URI scheme, see
:mod:`plakar_mysql.entry`):

* :mod:`.archive` - the importer: one record ``/binlog/<file>`` per binary log
  the server still has, read over the network by ``mariadb-binlog
  --read-from-remote-server --raw``, and ``/manifest.json``;
* :mod:`.replay` - the exporter: the events after the target's restored point,
  up to a stop, through ``mariadb-binlog | mariadb``;
* :mod:`.point` - where a restore leaves the backup's point on the target;
* :mod:`.events` - the little of the binary-log format this needs;
* :mod:`.gtid` - MariaDB GTID positions.
"""

SCHEME = "mysql+binlog"
