"""Plakar's official ``mysql`` integration as a contender, when its package is given.

That integration (Go; one ``.sql`` file per snapshot) is not part of this
repository and nothing of it is committed here: a user builds its package
from its public source with this project's ``bin/plakar`` (see the README,
"Benchmarks against the official integration") and hands the bench its path,
with ``--official-ptar PATH`` or the environment variable
:data:`ENVIRONMENT`.  Without it the contender is skipped, and the reports say so.

It is installed into a plakar home of its own: both packages claim the
``mysql`` and ``mysql+mariadb`` schemes.  On MariaDB it is run through
``mysql+mariadb://`` (its MariaDB connectors, which run ``mariadb-dump`` and
``mariadb``); on MySQL through ``mysql://`` (its MySQL connectors, which run
``mysqldump`` and ``mysql``, found with its ``mysql_bin_dir`` option), as its
``manifest.yaml`` declares them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENVIRONMENT", "KEY", "SCHEME", "SCHEMES", "find_package", "skipped_note", "uri"]

ENVIRONMENT = "PLAKAR_MYSQL_OFFICIAL_PTAR"
KEY = "official"
"""The contender's key in the results."""
SCHEME = "mysql+mariadb"
"""The scheme of the official integration's MariaDB connectors."""
SCHEMES = {"mariadb": SCHEME, "mysql": "mysql"}
"""The official integration's scheme for each flavour of server."""


def find_package(option: Path | None) -> Path | None:
    """The official package: the option, else :data:`ENVIRONMENT`, else None.

    A path given but missing is an error, not a silent skip."""
    given = option or (Path(os.environ[ENVIRONMENT]) if os.environ.get(ENVIRONMENT) else None)
    if given is None:
        return None
    if not given.is_file():
        raise FileNotFoundError(f"official integration package {given}: no such file")
    return given.resolve()


def skipped_note() -> str:
    """What the reports say when the contender was not run."""
    return (
        "Plakar's official mysql integration: skipped (no package given: pass"
        f" --official-ptar PATH or set {ENVIRONMENT}; the README says how to build it)."
    )


def uri(plain: str, flavour: str = "mariadb") -> str:
    """A ``mysql://`` URI of ours, as the official integration's connector for the
    ``flavour`` of server takes it."""
    scheme, sep, rest = plain.partition("://")
    if not sep or scheme != "mysql":
        raise ValueError(f"not a mysql:// URI: {plain}")
    return f"{SCHEMES[flavour]}://{rest}"
