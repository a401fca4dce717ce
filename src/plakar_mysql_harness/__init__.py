"""What the tests and the benchmarks both drive: servers, Plakar and timed processes.

The end-to-end tests (``tests/``) and the benchmarks (``bench/``) run the
integration the same way, so they share one harness, installed into the
development venv with the project (``pip install -e '.[dev]'``) and imported
by its name; neither edits ``sys.path``.  It is never part of the Plakar
package: nothing in :mod:`plakar_mysql` imports it, so PyInstaller leaves it
out of the ``.ptar``.

- :mod:`plakar_mysql_harness.mariadb`: a private, throwaway ``mariadbd``
  (:class:`~plakar_mysql_harness.mariadb.MariaDBServer`);
- :mod:`plakar_mysql_harness.mysql`: the same for Oracle MySQL, from ``make mysql``;
- :mod:`plakar_mysql_harness.datadir`: a server started on a restored data directory;
- :mod:`plakar_mysql_harness.plakar`: the ``plakar`` CLI with a private home,
  an encrypted store and the package installed;
- :mod:`plakar_mysql_harness.timing`: a command's wall time, CPU time and
  memory, its whole process tree included.

Helpers only the tests use (the ``shop`` database, comparisons, interruptions,
storage servers...) stay in ``tests/support``.
"""
