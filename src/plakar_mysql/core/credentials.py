"""Hand connection settings, the password above all, to the client tools through a pipe.

Command lines are readable by every local user (``ps``) and environments leak
into crash reports and child processes, so the settings are written as an
option file into an anonymous pipe, which the tool reads as
``--defaults-file=/dev/fd/N``.  The password never touches the disk, so nothing
is left behind even when the plugin is killed.  A user's own ``defaults_file``
is pulled in with ``!include``; explicit options override it, and nothing else
(no ``/etc/mysql/my.cnf``, no ``~/.my.cnf``) changes what the tools do.

What the tools and the server say back can quote a statement that carries a
password or its hash: :func:`hide_secrets` takes those out of every message.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from plakar_mysql.core.flavour import Flavour
from plakar_mysql.core.options import ConfigError, Connection


def _value(name: str, value: str) -> str:
    """Quote a value for an option file; the format has no escape for a newline."""
    if "\n" in value or "\r" in value:
        raise ConfigError(f"{name} contains a line break; put it in a defaults_file instead")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _tls_lines(conn: Connection, flavour: Flavour) -> list[str]:
    """TLS settings: MySQL's tools take ``ssl-mode``; MariaDB's take ``ssl`` switches,
    and check the CA and the host name together."""
    mode = conn.ssl_mode
    if mode is None:
        return []
    if flavour is Flavour.MYSQL:
        return [f"ssl-mode={mode.upper()}"]
    return {
        "disabled": ["skip-ssl"],
        "preferred": [],
        "required": ["ssl"],
        "verify_ca": ["ssl", "ssl-verify-server-cert"],
        "verify_identity": ["ssl", "ssl-verify-server-cert"],
    }[mode]


def option_file_text(conn: Connection, flavour: Flavour) -> str:
    """The ``[client]`` group for ``conn``; the tools read it as their only option file."""
    lines: list[str] = []
    if conn.defaults_file:
        path = os.path.abspath(conn.defaults_file)
        if not os.access(path, os.R_OK):
            raise ConfigError(f"defaults_file {path}: not readable")
        lines.append(f"!include {path}")
    lines.append("[client]")
    settings: list[tuple[str, str | None]] = [
        ("user", conn.user),
        ("password", conn.password),
        ("socket", conn.socket),
        ("ssl-ca", conn.ssl_ca),
        ("ssl-cert", conn.ssl_cert),
        ("ssl-key", conn.ssl_key),
    ]
    if not conn.socket:
        settings += [("host", conn.host), ("port", str(conn.port)), ("protocol", "TCP")]
    else:
        settings += [("protocol", "SOCKET")]
    for name, value in settings:
        if value is not None:
            lines.append(f"{name}={_value(name, value)}")
    lines.extend(_tls_lines(conn, flavour))
    # Only the interactive client knows this one; the dump tool would reject it.
    lines += ["[mysql]", f"connect-timeout={conn.connect_timeout}"]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def option_pipe(conn: Connection, flavour: Flavour) -> Iterator[tuple[int, str]]:
    """Yield ``(fd, "--defaults-file=/dev/fd/N")`` for a child started with ``pass_fds=(fd,)``.

    The pipe holds the whole option file before the child starts, so a child
    that dies early cannot block us; the descriptor is closed on exit.
    """
    data = option_file_text(conn, flavour).encode()
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as writer:
            writer.write(data)  # far below the pipe's capacity
        yield read_end, f"--defaults-file=/dev/fd/{read_end}"
    finally:
        os.close(read_end)


# What a server's error may quote of a statement that carries a secret: the
# literal after IDENTIFIED BY [PASSWORD] / IDENTIFIED WITH|VIA plugin AS|BY|USING,
# PASSWORD('...'), a privilege table's authentication_string (JSON in MariaDB's
# global_priv), and hashes as mysql.user rows hold them (*<40 hex>, $A$005$...).
# The literal may be cut short by the server's "near '...'" excerpt.
_SECRET = re.compile(
    r"(?i)(?P<keep>IDENTIFIED\s+(?:BY(?:\s+PASSWORD)?|(?:WITH|VIA)\s+\S+\s+(?:AS|BY|USING))"
    r"\s*|PASSWORD\s*\(\s*|\"authentication_string\"\s*:\s*)"
    r"(?:(?P<quote>')(?:[^'\\]|\\.|'')*'?|(?P<dquote>\")(?:[^\"\\]|\\.|\"\")*\"?)"
    r"|\*[0-9A-F]{40}|\$[A-Z]\$\d{3}\$[^'\"\s]*"
)


def hide_secrets(text: str) -> str:
    """``text`` (a client's or server's error) with password literals and hashes
    shown as ``***``: a failing ``CREATE USER`` must not put its hash in a message."""

    def replace(match: re.Match[str]) -> str:
        if match["keep"] is None:
            return "***"
        quote = match["quote"] or match["dquote"]
        return f"{match['keep']}{quote}***{quote}"

    return _SECRET.sub(replace, text)
