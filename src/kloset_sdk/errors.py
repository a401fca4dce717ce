"""Whose fault an error is, and how each kind is told to the user.

Plakar prints a plugin's error as one line after its own prefix.  That suits
an error the user can act on (a bad option, a server that refuses, a malformed
input): a connector raises those as subclasses of :class:`ConnectorError`, and
an :class:`OSError` (a full disk, a refused connection, a missing file) is the
environment's, told the same way.

Anything else (a ``KeyError``, a ``TypeError``, an ``AssertionError``) is a
bug in the connector or in this SDK.  Told as one line it would read like the
user's mistake, and its one line alone does not say where it happened.  So
:func:`error_line` first writes the last frames of its traceback on stderr
(which Plakar shows), then gives a line that says it is a bug to report.
"""

from __future__ import annotations

import abc
import os
import sys
import traceback
from typing import TextIO

__all__ = ["FRAMES", "ConnectorError", "error_line", "is_bug", "one_line"]

FRAMES = 6
"""How many of a bug's innermost frames are written: enough to find the line,
short enough not to bury the user's own output."""


class ConnectorError(Exception, metaclass=abc.ABCMeta):
    """The root of the errors a connector raises for its user: its message is
    what went wrong in words, and the SDK tells it as exactly that one line.

    A library's own error class that is the user's business (a database
    driver's refusals) joins with ``ConnectorError.register(ThatError)``."""


def is_bug(exc: BaseException) -> bool:
    """Whether ``exc`` is a bug rather than the user's or the environment's error.

    A :class:`ConnectorError` or an :class:`OSError` is not; neither is a
    ``BaseException`` that is no ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``), which ends a process on purpose."""
    return isinstance(exc, Exception) and not isinstance(exc, (ConnectorError, OSError))


def one_line(exc: BaseException) -> str:
    """An exception's message as a single line (its type's name if it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def error_line(exc: BaseException, stderr: TextIO | None = None) -> str:
    """The line Plakar prints for ``exc``.

    A user's error is its message alone.  A bug is told as a bug: the last
    :data:`FRAMES` frames of its traceback go to ``stderr`` (the process's by
    default) first, and the line names the program, the exception's type and
    message, and asks for a report."""
    if not is_bug(exc):
        return one_line(exc)
    program = os.path.basename(sys.argv[0]) or "the plugin"
    out = sys.stderr if stderr is None else stderr
    frames = "".join(traceback.format_exception(exc, limit=-FRAMES, chain=False))
    out.write(f"{program}: internal error, the last frames of its traceback:\n{frames}")
    out.flush()
    detail = " ".join(str(exc).split())
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return (
        f"internal error in {program}: {what} - this is a bug,"
        " not a problem with the input or the set-up: please report it to the project"
        " that makes this integration, with the traceback above"
    )
