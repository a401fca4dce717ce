"""Serve a gRPC server over this process's stdin and stdout.

Plakar starts a connector with no arguments and speaks HTTP/2 (gRPC without
TLS) over the child's stdin and stdout.  grpcio cannot serve on a pair of pipes,
so the server listens on a unix socket in a private directory and two threads
relay bytes between the pipes and one connection to that socket, in large
blocks, with the GIL released while they wait.

The process ends when Plakar closes our stdin (after ``Close``, or because
Plakar itself went away): the server stops, in-flight calls are cancelled, and
``serve`` returns.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

_PIPE_CHUNK = 1 << 20
# Each concurrent Open() holds a worker; Plakar opens up to its MaxConcurrency at once.
_MAX_WORKERS = 256
_MAX_MESSAGE = 64 << 20


def _pump(src: int, dst: int, write: Callable[[int, memoryview], int]) -> None:
    """Move bytes from ``src`` to ``dst`` until EOF, in blocks as large as the pipe gives."""
    while data := os.read(src, _PIPE_CHUNK):
        view = memoryview(data)
        while view:
            view = view[write(dst, view) :]


def serve(register: Callable[[grpc.Server], None], stdin: int = 0, stdout: int = 1) -> None:
    """Run a gRPC server, populated by ``register``, over the given pipe descriptors."""
    with tempfile.TemporaryDirectory(prefix="kloset-sdk-") as tmp:
        address = os.path.join(tmp, "grpc.sock")
        server = grpc.server(
            ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="rpc"),
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        register(server)
        server.add_insecure_port(f"unix:{address}")
        server.start()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(address)
        os.unlink(address)  # nobody else may ever connect

        def inbound() -> None:
            with contextlib.suppress(OSError):
                _pump(stdin, conn.fileno(), lambda fd, b: conn.send(b))
            # Plakar closed our stdin: the session is over, whatever is in flight.
            server.stop(grace=None)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

        reader = threading.Thread(target=inbound, name="stdin-relay", daemon=True)
        reader.start()
        try:
            _pump(conn.fileno(), stdout, os.write)
        except OSError:
            pass  # Plakar went away: there is nobody left to answer
        finally:
            conn.close()
            server.stop(grace=None)
