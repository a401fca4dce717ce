"""MariaDB or MySQL: tell the server's flavour, and find the client tools built for it.

The two flavours share a wire protocol but their dump tools have diverged
(MariaDB's ``--dump-history`` and ``--system``, MySQL's ``--set-gtid-purged`` and
``--column-statistics``), and Debian installs MariaDB's build under MySQL's
names.  So a backup always runs the tools of the server's own flavour, checked
by what the binary says of itself, and says which to install when they are
missing.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
from dataclasses import dataclass


class ToolError(RuntimeError):
    """A client tool is missing, broken or of the wrong flavour; one line for the user."""


class Flavour(enum.Enum):
    MARIADB = "mariadb"
    MYSQL = "mysql"

    @property
    def dump_names(self) -> tuple[str, ...]:
        return ("mariadb-dump", "mysqldump") if self is Flavour.MARIADB else ("mysqldump",)

    @property
    def client_names(self) -> tuple[str, ...]:
        return ("mariadb", "mysql") if self is Flavour.MARIADB else ("mysql",)

    @property
    def package_hint(self) -> str:
        if self is Flavour.MARIADB:
            return "install MariaDB's client tools (Debian: apt-get install mariadb-client)"
        return "install MySQL's client tools (mysql-client from MySQL's own packages)"

    @property
    def title(self) -> str:
        return "MariaDB" if self is Flavour.MARIADB else "MySQL"


def detect(*texts: str) -> Flavour:
    """The flavour that ``SELECT VERSION(), @@version_comment`` or ``TOOL --version`` names."""
    return Flavour.MARIADB if "mariadb" in " ".join(texts).lower() else Flavour.MYSQL


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_tuple(text: str) -> tuple[int, int, int]:
    """The first ``x.y.z`` in a version string; MariaDB's dump reports the server library's."""
    found = _VERSION.findall(text)
    if not found:
        return (0, 0, 0)
    # "mariadb-dump from 11.4.2-MariaDB, client 10.19"
    # "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB" / "mysqldump  Ver 8.0.36 for Linux"
    distrib = re.search(r"(?:Distrib|from)\s+(\d+)\.(\d+)\.(\d+)", text)
    major, minor, patch = distrib.groups() if distrib else found[0]
    return (int(major), int(minor), int(patch))


@dataclass(frozen=True)
class Tool:
    """A client executable of a known flavour and version."""

    path: str
    flavour: Flavour
    version_text: str

    @property
    def version(self) -> tuple[int, int, int]:
        return version_tuple(self.version_text)


def find_tool(names: tuple[str, ...], flavour: Flavour, bin_dir: str | None) -> Tool:
    """The first of ``names`` found in ``bin_dir`` (or PATH) that is ``flavour``'s build."""
    where = bin_dir or "PATH"
    wrong: list[str] = []
    for name in names:
        path = shutil.which(name, path=bin_dir) if bin_dir else shutil.which(name)
        if path is None:
            continue
        try:
            out = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolError(f"{path} does not run ({exc}); {flavour.package_hint}") from None
        found = detect(out)
        if found is flavour:
            return Tool(path=path, flavour=flavour, version_text=out)
        wrong.append(f"{path} is {found.title}'s build")
    if wrong:
        raise ToolError(
            f"the server is {flavour.title} but {'; '.join(wrong)}: "
            f"{flavour.package_hint}, or point bin_dir to {flavour.title}'s {names[0]}"
        )
    # "Not found" would send the user looking for a file that is there but
    # cannot run (a copy that lost its execute bit): name it instead.
    directories = (bin_dir or os.environ.get("PATH", "")).split(os.pathsep)
    for path in (os.path.join(d or ".", name) for name in names for d in directories):
        if os.path.isfile(path) and not os.access(path, os.X_OK):
            raise ToolError(
                f"{path} is not executable: make it executable (chmod +x), "
                f"or {flavour.package_hint}"
            )
    raise ToolError(
        f"{' or '.join(names)} not found in {where}: {flavour.package_hint}, "
        "or point bin_dir to the directory that holds it"
    )
