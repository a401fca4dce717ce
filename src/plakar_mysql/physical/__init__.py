"""Physical backups (``mysql+bin://``): the server's data directory, copied hot as files.

The logical backups (:mod:`plakar_mysql.logical.backup`, :mod:`plakar_mysql.logical.restore`)
dump rows as SQL; this package copies the data files themselves with the
server's own hot-backup tool and restores them as a data directory:

- :mod:`.backup_tool`: find ``mariadb-backup`` (MariaDB) or ``xtrabackup`` (MySQL) of the
  server's version, run it, judge how it ended;
- :mod:`.mbstream`: read the tool's xbstream/mbstream output file by file;
- :mod:`.backup`: the importer, one record per file under ``/datadir``;
- :mod:`.manifest`: the tool's metadata files and ``/manifest.json``;
- :mod:`.restore`: the exporter, files into an empty directory, then ``--prepare``;
- :mod:`.replay_point`: the backup's binary-log point left in the restored files.

They share the connection, options and credentials of :mod:`plakar_mysql.core`.
"""

SCHEME = "mysql+bin"
