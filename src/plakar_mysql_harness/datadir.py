"""A private MariaDB server started on a data directory that already exists.

A physical restore produces a data directory, not a running server: to check
it, a test starts ``mariadbd`` on it (as a DBA would) and compares what that
server holds with the source.  The directory's own accounts apply, so root
logs in with the source server's root password.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from plakar_mysql_harness.mariadb import MariaDBServer


class DatadirServer(MariaDBServer):
    """:class:`MariaDBServer` on ``datadir`` as it is: nothing installed, nothing secured."""

    def __init__(
        self,
        datadir: Path,
        base_dir: Path,
        *,
        root_password: str,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._given_datadir = Path(datadir).resolve()
        # With --skip-name-resolve, the harness's default, a server that starts
        # ignores the accounts of named hosts that the source created at run time.
        super().__init__(
            base_dir,
            root_password=root_password,
            extra_args=["--skip-name-resolve=0", *extra_args],
        )

    def _install(self) -> None:
        self.datadir = self._given_datadir
        self._tmpdir.mkdir(parents=True, exist_ok=True)
        self._secured = True  # the restored accounts are the source's
