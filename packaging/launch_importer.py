"""PyInstaller entry script of the ``mysql-importer`` executable.

Plakar starts it with no arguments and speaks gRPC on its stdin/stdout.
``mysql-importer --bundle-selftest`` checks the bundle instead (see
bundle_selftest.py).
"""

from bundle_selftest import maybe_run

from plakar_mysql.entry import importer_main

if __name__ == "__main__":
    maybe_run()
    importer_main()
