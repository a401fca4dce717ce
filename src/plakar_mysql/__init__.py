"""MySQL and MariaDB integration for Plakar: three kinds of backup on one shared core.

- :mod:`.core` - what every kind shares: options, connection and credentials,
  the server's questions, flavour and tools, GTID positions and the restore point;
- :mod:`.logical` - ``mysql://``: the server's own dump tool, one file per object;
- :mod:`.physical` - ``mysql+bin://``: the data directory, copied hot as files;
- :mod:`.binlog` - ``mysql+binlog://``: binary-log archives, replayed to a point in time.

Each kind has a ``backup`` module (the importer) and a ``restore`` module (the
exporter); :mod:`.entry` starts the one the location's scheme names.
"""

__version__ = "0.1.0"
