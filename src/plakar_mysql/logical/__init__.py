"""Logical backups (``mysql://``): the server's own dump tool, laid out one file per object.

- :mod:`.backup` - the importer: one dump of every database, split as it streams
  (:mod:`.dump`, :mod:`.split`, :mod:`.writer`), with :mod:`.events`,
  :mod:`.users` and :mod:`.filters`;
- :mod:`.layout` - the snapshot's format: paths, headers, catalog and manifest;
- :mod:`.restore` - the exporter: each file checked, then handed to the
  :mod:`.restorer`, which wires one part per job around the :mod:`.target`
  (connection, packet size, databases): :mod:`.admission` and :mod:`.preflight`
  (checks before anything is written), :mod:`.tables` and :mod:`.scheduler`
  (tables in parallel, into :mod:`.shadow` databases for an atomic overwrite,
  undone by :mod:`.rollback`), :mod:`.deferred` (routines, views, events and
  accounts, in order, at the end) and :mod:`.verify`.  A single dump file is
  loaded by :mod:`.restore` itself through the same target and checks.
"""

SCHEME = "mysql"
