"""How a problem is told to the user: in one line."""

from __future__ import annotations

__all__ = ["shown"]


def shown(path: str) -> str:
    """A path for a one-line message: quoted and escaped if it holds a control character."""
    return path if path.isprintable() else repr(path)
