"""The SDK's private socket: made, connected to once, removed, whatever TMPDIR is."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kloset_sdk.transport import _listen


@pytest.mark.parametrize("depth", [1, 200], ids=["short", "longer than a socket path"])
def test_the_socket_works_and_leaves_nothing_under_any_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    """A TMPDIR deeper than a unix socket's 107 bytes still serves (the plugin
    failed to start there before), and the private directory is gone once the
    one connection is made."""
    tmp = tmp_path / ("d" * depth)
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    server, conn = _listen(lambda _server: None)
    try:
        assert list(tmp.iterdir()) == []
    finally:
        conn.close()
        server.stop(None)
