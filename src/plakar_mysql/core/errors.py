"""How a problem is told to the user: in one line, from one root.

Every error the user can act on (a bad option, a server that refuses, a tool
that is missing, a snapshot that is malformed) is a :class:`PlakarMySQLError`,
which is a :class:`kloset_sdk.ConnectorError`: the SDK tells it as its one
line.  Each subclass keeps the built-in base it had (``ValueError`` for bad
input, ``RuntimeError`` for a failure on the way), so code that catches those
still does.  An exception that is none of these reaches the user as a bug to
report, with the last frames of its traceback (:mod:`kloset_sdk.errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pymysql

from kloset_sdk.errors import ConnectorError

__all__ = ["PlakarMySQLError", "ServerAnswer", "server_answers", "shown"]


class PlakarMySQLError(ConnectorError):
    """The root of the integration's errors for its user: the message is one line
    in words, saying what went wrong and, where it can, what to do."""


class ServerAnswer(PlakarMySQLError, RuntimeError):
    """A driver's error that no code put in words reached the user: the server's
    answer (a lost connection, a refused statement), told as the driver's own line."""


@contextlib.contextmanager
def server_answers() -> Iterator[None]:
    """Around a connector's work: a ``pymysql`` error that escapes it is the server's,
    not a bug, and is told as before, its text unchanged (:class:`ServerAnswer`)."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        raise ServerAnswer(str(exc)) from exc


def shown(path: str) -> str:
    """A path for a one-line message: quoted and escaped if it holds a control character."""
    return path if path.isprintable() else repr(path)
