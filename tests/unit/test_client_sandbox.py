"""The SQL client runs a snapshot's SQL in sandbox mode, or is refused.

A snapshot's SQL can hold the client's own commands (``\\!`` runs a shell
command, ``\\T`` writes a file, ``\\.`` reads one, ``connect`` sends the
credentials elsewhere).  What the client offers against them is asked of the
client itself (its ``--help``), once per tool; these fake clients print the help
of each kind of client and record how they were called.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.scripts import executable

from plakar_mysql.core.client import Client
from plakar_mysql.core.credentials import hide_secrets
from plakar_mysql.core.flavour import Flavour, Tool, ToolError, find_tool, offered_options
from plakar_mysql.core.options import Connection

MARIADB_VERSION = "mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
MYSQL_VERSION = "mysql  Ver 9.7.0 for Linux on x86_64 (MySQL Community Server - GPL)"

# Excerpts of real --help outputs: the options at a line's start, descriptions after.
MARIADB_HELP = """\
  --binary-mode       Binary mode allows certain character sequences to be
                      processed as data that would otherwise be treated with a
  --connect-expired-password
                      Notify the server that this client is prepared to handle
                      expired password sandbox mode even if --batch was
  -G, --named-commands
                      Enable named commands.
  --sandbox           Disallow commands that access the file system (except \\P
sandbox                           FALSE
"""
MYSQL_HELP = """\
  --binary-mode       By default, ASCII '\\0' is disallowed and '\\r\\n' is
  --commands          Enable or disable processing of local mysql commands.
"""
OLD_HELP = """\
  --binary-mode       Binary mode allows certain character sequences to be
  -G, --named-commands
                      Enable named commands.
"""
# A client without any of the options, whose descriptions still mention them.
NONE_HELP = """\
  --connect-expired-password
                      expired password sandbox mode even if --batch was
  -G, --named-commands
                      Named commands mean this program's internal commands;
"""


def fake_client(directory: Path, version: str, help_text: str, name: str = "mariadb") -> Path:
    """A client that prints ``version`` or ``help_text``, and logs each call's
    arguments (one line per call) to ``calls`` beside it."""
    calls = directory / "calls"
    return executable(
        directory / name,
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        f"  *--version*) echo '{version}' ;;\n"
        f"  *--help*) cat <<'EOF'\n{help_text}EOF\n ;;\n"
        "  *) cat > /dev/null ;;\n"
        "esac\n",
    )


def calls(directory: Path) -> list[str]:
    return (directory / "calls").read_text().splitlines()


@pytest.mark.parametrize(
    ("version", "help_text", "flavour", "expected"),
    [
        (MARIADB_VERSION, MARIADB_HELP, Flavour.MARIADB, ("--sandbox", "--binary-mode")),
        (MYSQL_VERSION, MYSQL_HELP, Flavour.MYSQL, ("--commands=OFF", "--binary-mode")),
        (MARIADB_VERSION, OLD_HELP, Flavour.MARIADB, ("--binary-mode",)),
    ],
    ids=["mariadb sandbox", "mysql commands off", "binary mode only"],
)
def test_sandbox_options_come_from_the_clients_help(
    tmp_path: Path, version: str, help_text: str, flavour: Flavour, expected: tuple[str, ...]
) -> None:
    name = flavour.client_names[0]
    fake_client(tmp_path, version, help_text, name)
    tool = find_tool(flavour.client_names, flavour, str(tmp_path))
    assert tool.sandbox_args == expected
    assert tool.sandbox_args == expected  # asked once per tool
    assert calls(tmp_path) == ["--version", "--no-defaults --help"]


@pytest.mark.parametrize(
    ("flavour", "install"),
    [
        (Flavour.MARIADB, "install MariaDB's client 10.5.25, 10.6.18, 10.11.8, 11.4.2 or later"),
        (Flavour.MYSQL, "install MySQL's client from a current 8.0, 8.4 or 9.x release"),
    ],
)
def test_a_client_without_sandbox_is_refused_in_one_line(
    tmp_path: Path, flavour: Flavour, install: str
) -> None:
    version = MARIADB_VERSION if flavour is Flavour.MARIADB else MYSQL_VERSION
    path = fake_client(tmp_path, version, NONE_HELP, flavour.client_names[0])
    tool = find_tool(flavour.client_names, flavour, str(tmp_path))
    with pytest.raises(ToolError) as error:
        _ = tool.sandbox_args
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path} ({'.'.join(map(str, tool.version))}) has neither --sandbox")
    assert install in message


def test_a_client_without_sandbox_is_refused_before_any_load(tmp_path: Path) -> None:
    """The refusal comes when the loader is made, before any SQL is sent."""
    fake_client(tmp_path, MARIADB_VERSION, NONE_HELP)
    tool = find_tool(("mariadb",), Flavour.MARIADB, str(tmp_path))
    with pytest.raises(ToolError, match="has neither --sandbox, --commands nor --binary-mode"):
        Client(tool, Connection(scheme="mysql"), force=False)
    assert calls(tmp_path) == ["--version", "--no-defaults --help"]


def test_a_help_that_fails_is_one_line(tmp_path: Path) -> None:
    path = executable(tmp_path / "mariadb", "#!/bin/sh\necho 'no help here' >&2\nexit 3\n")
    tool = Tool(path=str(path), flavour=Flavour.MARIADB, version_text=MARIADB_VERSION)
    with pytest.raises(ToolError) as error:
        _ = tool.sandbox_args
    assert str(error.value).startswith(f"{path} --help does not run")
    assert "\n" not in str(error.value)


def test_every_load_runs_in_sandbox_mode(tmp_path: Path) -> None:
    fake_client(tmp_path, MARIADB_VERSION, MARIADB_HELP)
    tool = find_tool(("mariadb",), Flavour.MARIADB, str(tmp_path))
    client = Client(tool, Connection(scheme="mysql", password="pw"), force=True)
    client.load("table db.t", "db", chunks=[b"SELECT 1;\n"])
    client.load("views of 'db'", "db", chunks=[b"SELECT 2;\n"])
    loads = calls(tmp_path)[2:]
    assert len(loads) == 2
    for line in loads:
        assert "--sandbox --binary-mode --local-infile=0" in line
        assert "pw" not in line
    assert calls(tmp_path)[:2] == ["--version", "--no-defaults --help"]  # help asked once


def test_the_installed_client_offers_sandbox_mode() -> None:
    """The client the end-to-end tests use (MariaDB 10.11.8 or later) has the sandbox."""
    if shutil.which("mariadb") is None:
        pytest.skip("no mariadb client installed")
    tool = find_tool(("mariadb",), Flavour.MARIADB, None)
    if tool.version < (10, 11, 8):
        pytest.skip(f"{tool.version_text} predates --sandbox")
    assert tool.sandbox_args == ("--sandbox", "--binary-mode")


def test_option_names_are_read_at_line_starts_only() -> None:
    assert offered_options(MARIADB_HELP) == {
        "binary-mode",
        "connect-expired-password",
        "named-commands",
        "sandbox",
    }
    assert offered_options(NONE_HELP) == {"connect-expired-password", "named-commands"}


HASH = "*0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.mark.parametrize(
    "error",
    [
        "ERROR 1064 (42000) at line 3: You have an error in your SQL syntax; check the manual "
        f"near 'IDENTIFIED BY PASSWORD '{HASH}' x' at line 1",
        f"ERROR 1396 (HY000) at line 9: near 'CREATE USER `a`@`%` IDENTIFIED BY '{HASH[1:]}",
        "ERROR 1524 (HY000) at line 4: near 'IDENTIFIED VIA ed25519 USING 'ZmFrZWhhc2hmYWtl' x",
        "ERROR 1064 at line 2: near 'IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$Zm9v'",
        f"ERROR 1064 at line 2: near 'SET PASSWORD FOR a = PASSWORD('{HASH[1:]}')'",
        'ERROR 1062 at line 7: near \'{"plugin":"x","authentication_string":"ZmFrZWhhc2g"}\'',
        f"ERROR 1136 at line 5: near 'VALUES ('localhost','a','{HASH}','N')'",
        # Quotes inside the password: the whole literal goes, not up to its first quote.
        "ERROR 1064 at line 2: near 'IDENTIFIED BY 'Zm9v''s \"x\" Zm9v' REQUIRE'",
        'ERROR 1064 at line 2: near "IDENTIFIED BY "Zm9v""Zm9v" x"',
    ],
)
def test_load_errors_never_show_a_password_or_hash(error: str) -> None:
    """A failing CREATE USER or privilege-table row (an official /all.sql) in the
    client's error keeps its line and error number, not its secret."""
    shown = hide_secrets(error)
    for secret in (HASH[1:], "ZmFrZWhhc2g", "Zm9v"):
        assert secret not in shown
    assert shown.startswith(error.split(":", 1)[0]) and "***" in shown


def test_errors_without_secrets_are_unchanged() -> None:
    error = "ERROR 1146 (42S02) at line 3: Table 'db.no_such_table' doesn't exist"
    assert hide_secrets(error) == error
