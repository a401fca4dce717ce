"""The SDK's stream path, piece by piece: the relay between pipes and the gRPC
socket (spliced in the kernel, or copied when splice cannot join the two), and
the hand-written encoding of ``Open`` responses."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from pathlib import Path

import pytest

from kloset_sdk._pb import importer_pb2 as pb
from kloset_sdk.importer import CHUNK_SIZE, serialize_open_response
from kloset_sdk.transport import enlarge_pipe, relay

PAYLOAD = bytes(range(256)) * 20_000  # 5 MB: several pipe-fulls


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 1 << 20, CHUNK_SIZE])
def test_open_response_encoding_is_protobufs(size: int) -> None:
    chunk = os.urandom(size)
    encoded = serialize_open_response(chunk)
    assert encoded == pb.OpenResponse(chunk=chunk).SerializeToString()
    assert pb.OpenResponse.FromString(encoded).chunk == chunk


def test_chunk_size_fits_plakars_default_message_limit() -> None:
    assert len(serialize_open_response(bytes(CHUNK_SIZE))) < 4 << 20


def _relay(src: int, dst: int, spliced: list[bool]) -> None:
    spliced.append(relay(src, dst, os.write))


def _drain(fd: int, out: bytearray) -> None:
    while data := os.read(fd, 1 << 16):
        out += data


def test_relay_pipe_to_socket_and_back_keeps_every_byte() -> None:
    """As in ``serve``: Plakar's pipe -> socket -> socket -> Plakar's pipe."""
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    enlarge_pipe(in_read)
    ours, theirs = socket.socketpair()
    received = bytearray()
    spliced: list[bool] = []
    threads = [
        threading.Thread(target=_relay, args=(in_read, ours.fileno(), spliced)),
        threading.Thread(target=_relay, args=(theirs.fileno(), out_write, spliced)),
        threading.Thread(target=_drain, args=(out_read, received)),
    ]
    for thread in threads:
        thread.start()
    view = memoryview(PAYLOAD)
    while view:
        view = view[os.write(in_write, view) :]
    os.close(in_write)
    threads[0].join(timeout=30)
    ours.shutdown(socket.SHUT_WR)
    threads[1].join(timeout=30)
    os.close(out_write)
    threads[2].join(timeout=30)
    for fd in (in_read, out_read):
        os.close(fd)
    ours.close()
    theirs.close()
    assert not any(thread.is_alive() for thread in threads)
    assert received == PAYLOAD
    assert spliced == [True, True]  # both ways inside the kernel


def test_relay_falls_back_to_copies_where_splice_cannot(tmp_path: Path) -> None:
    """Two regular files: splice(2) needs a pipe on one side, so the relay copies."""
    source, target = tmp_path / "in", tmp_path / "out"
    source.write_bytes(PAYLOAD)
    src = os.open(source, os.O_RDONLY)
    dst = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        assert relay(src, dst, os.write) is False
    finally:
        os.close(src)
        os.close(dst)
    assert target.read_bytes() == PAYLOAD


def test_enlarge_pipe_grows_a_pipe_and_ignores_anything_else(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) < 1 << 20
        enlarge_pipe(write_end, 1 << 20)
        # What an unprivileged process may ask for is capped by fs.pipe-max-size.
        cap = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) >= min(1 << 20, cap)
    finally:
        os.close(read_end)
        os.close(write_end)
    with (tmp_path / "f").open("wb") as fh:
        enlarge_pipe(fh.fileno())  # not a pipe: nothing happens, nothing raised
