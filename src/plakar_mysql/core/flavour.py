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
import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from plakar_mysql.core.errors import PlakarMySQLError


class ToolError(PlakarMySQLError, RuntimeError):
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

    @property
    def sandbox_hint(self) -> str:
        """Which client to install when the one found cannot be kept from running the
        client commands of the SQL it reads (see :attr:`Tool.sandbox_args`)."""
        if self is Flavour.MARIADB:
            return "install MariaDB's client 10.5.25, 10.6.18, 10.11.8, 11.4.2 or later"
        return "install MySQL's client from a current 8.0, 8.4 or 9.x release"


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


#: The client's options that keep the SQL it reads from running the client's own
#: commands (``\!`` or ``system``: a shell command; ``\T``/``tee``: write a file;
#: ``\.``/``source``: read one; ``connect``: send the credentials to another host):
#: MariaDB's sandbox mode refuses those that touch the file system; MySQL's
#: ``--commands=OFF`` turns the commands off; binary mode turns off every command but
#: ``DELIMITER`` and ``\C`` (which the dumps need), ``connect`` among them, which the
#: sandbox allows.  Each is passed when the client offers it.
_SANDBOX_OPTIONS = (
    ("sandbox", "--sandbox"),
    ("commands", "--commands=OFF"),
    ("binary-mode", "--binary-mode"),
)


def offered_options(help_text: str) -> frozenset[str]:
    """The long options a client's ``--help`` lists, without their ``--``.

    Each is at the start of a line, maybe after its one-letter form
    (``  -G, --named-commands``); the descriptions that mention an option
    (``... expired password sandbox mode``) do not count.
    """
    return frozenset(re.findall(r"^\s*(?:-\w,\s*)?--([a-z][a-z0-9-]*)", help_text, re.M))


@dataclass(frozen=True)
class Tool:
    """A client executable of a known flavour and version."""

    path: str
    flavour: Flavour
    version_text: str

    @property
    def version(self) -> tuple[int, int, int]:
        return version_tuple(self.version_text)

    @functools.cached_property
    def sandbox_args(self) -> tuple[str, ...]:
        """The options that stop this client from running commands found in the SQL
        it reads (a snapshot's): whichever of ``--sandbox``, ``--commands=OFF`` and
        ``--binary-mode`` it offers.  Raises :class:`ToolError` if it offers none.

        Asked of the tool itself (``--help``), once per tool: the options exist
        from point releases that distributions backport, so a version rule
        would refuse clients that have them and accept forks that do not.
        """
        try:
            text = subprocess.run(
                [self.path, "--no-defaults", "--help"],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolError(
                f"{self.path} --help does not run ({exc}); {self.flavour.package_hint}"
            ) from None
        offered = offered_options(text)
        found = tuple(arg for option, arg in _SANDBOX_OPTIONS if option in offered)
        if not found:
            raise ToolError(
                f"{self.path} ({'.'.join(map(str, self.version))}) has neither --sandbox, "
                "--commands nor --binary-mode, so a snapshot could run commands through it: "
                f"{self.flavour.sandbox_hint}, or point bin_dir to one"
            )
        return found


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
