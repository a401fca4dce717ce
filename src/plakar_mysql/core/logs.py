"""Where the integration's progress and notices go: stderr, as ``plakar-mysql: <text>``.

Every module logs through ``logging.getLogger(__name__)``; this module sets up,
once at start-up (:mod:`plakar_mysql.entry`), the one handler of the package's
logger.  Plakar shows a plugin's stderr as it comes, so the user reads exactly
the lines the integration wrote, each with the prefix that says whose they are.
Other libraries' loggers are left as they were.  Without :func:`configure`
(library use, unit tests) the records go where the caller's logging sends them.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["PREFIX", "configure"]

PREFIX = "plakar-mysql: "
"""The start of each line the integration writes on stderr."""

_PACKAGE = "plakar_mysql"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The package's own handler, told apart from any other so it is added once."""


def configure(stream: TextIO | None = None) -> logging.Logger:
    """Send the package's records of level INFO and above to ``stream`` (stderr by
    default) as ``plakar-mysql: <message>``, one per line, flushed as written.
    Called again, it changes nothing: there is still one handler."""
    logger = logging.getLogger(_PACKAGE)
    if not any(isinstance(h, _Handler) for h in logger.handlers):
        handler = _Handler(sys.stderr if stream is None else stream)
        handler.setFormatter(logging.Formatter(PREFIX + "%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
