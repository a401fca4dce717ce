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

import pymysql

from kloset_sdk.errors import ConnectorError

__all__ = ["PlakarMySQLError", "shown"]


class PlakarMySQLError(ConnectorError):
    """The root of the integration's errors for its user: the message is one line
    in words, saying what went wrong and, where it can, what to do."""


# A driver error that no code put in words is the server's answer (a lost
# connection, a refused statement), not a bug: told as the driver's own line.
# Every kind imports this module (through core.server) before it connects.
ConnectorError.register(pymysql.err.MySQLError)


def shown(path: str) -> str:
    """A path for a one-line message: quoted and escaped if it holds a control character."""
    return path if path.isprintable() else repr(path)
