"""Executables that the tests write: fake tools, wrappers, launchers."""

from __future__ import annotations

from pathlib import Path


def executable(path: Path, text: str) -> Path:
    """Write ``text`` (a script, shebang included) to ``path``, executable; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path
