"""Logical backups (``mysql://``): the server's own dump tool, laid out one file per object.

- :mod:`.backup` - the importer: one dump of every database, split as it streams
  (:mod:`.dump`, :mod:`.split`, :mod:`.writer`), with :mod:`.events`,
  :mod:`.users` and :mod:`.filters`;
- :mod:`.layout` - the snapshot's format: paths, headers, catalog and manifest;
- :mod:`.restore` - the exporter: each file checked, then handed to the
  :mod:`.restorer` (tables in parallel, the rest in order), with
  :mod:`.preflight`, :mod:`.shadow` (atomic overwrite) and :mod:`.rollback`.
"""

SCHEME = "mysql"
