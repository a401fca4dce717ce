"""PyInstaller entry script of the ``mysql-exporter`` executable.

Plakar starts it with no arguments and speaks gRPC on its stdin/stdout.
``mysql-exporter --bundle-selftest`` checks the bundle instead (see
bundle_selftest.py).
"""

from bundle_selftest import maybe_run

from plakar_mysql.entry import exporter_main

if __name__ == "__main__":
    maybe_run()
    exporter_main()
