"""Point-in-time recovery: archive a server's binary logs, replay them onto a restored base.

``mysql+binlog://`` is a kind of its own, served by the same executables as
the logical backup (they dispatch on the URI scheme, see
:mod:`plakar_mysql.entry`):

* :mod:`.backup` - the importer: one record ``/binlog/<file>`` per binary log
  the server still has, read over the network by ``mariadb-binlog
  --read-from-remote-server --raw`` (MySQL's ``mysqlbinlog``), and
  ``/manifest.json``;
* :mod:`.restore` - the exporter: the events after the target's restored point,
  up to a stop, through ``mariadb-binlog | mariadb`` (MySQL: ``mysqlbinlog |
  mysql``, the point being ``@@gtid_executed``);
* :mod:`.layout` - the snapshot's format: its paths and ``/manifest.json``,
  written by the one and read by the other;
* :mod:`.scanner` - the little of the binary-log format this needs, of both
  flavours;
* :mod:`.comments` - the tool's comment lines, made safe to send.

GTID positions and the restore point are shared with the other kinds
(:mod:`plakar_mysql.core.gtid`, :mod:`plakar_mysql.core.restore_point`).
"""

SCHEME = "mysql+binlog"
