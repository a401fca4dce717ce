"""Serve a gRPC server over this process's stdin and stdout.

Plakar starts a connector with no arguments and speaks HTTP/2 (gRPC without
TLS) over the child's stdin and stdout.  grpcio cannot serve on a pair of pipes,
so the server listens on a unix socket (in a private directory, both removed as
soon as our one connection is made) and two threads
relay bytes between the pipes and one connection to that socket.  Where the
kernel allows it (stdin and stdout are pipes, as Plakar makes them), the relay
is ``splice(2)``: the bytes move from pipe to socket and back inside the
kernel, never copied into Python and with the GIL released for each whole
block (see :func:`relay`); anything else (a file, a terminal, a socket) falls back to reads and
writes of the same size.  The pipes are enlarged to :data:`_PIPE_CHUNK` when
the system lets us, so that each wake-up moves a large block.

The session ends when Plakar closes our stdin (after ``Close``, or because
Plakar itself went away): the server stops, in-flight calls are cancelled, and
``serve`` returns, without waiting for the calls' threads; the entry point
(:mod:`kloset_sdk.entrypoint`) then ends the process without joining them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
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
_SUN_PATH = 107  # bytes of a unix socket's path (sockaddr_un.sun_path, less its NUL)


# splice(2) refuses a pair of descriptors it cannot join (neither is a pipe, a
# file opened for appending...) with one of these, before moving anything.
_NO_SPLICE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EBADF, errno.ESPIPE})


def enlarge_pipe(fd: int, size: int = _PIPE_CHUNK) -> None:
    """Make the pipe ``fd`` hold ``size`` bytes, if it is a pipe and the system allows."""
    with contextlib.suppress(OSError):
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < size:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def _copy(src: int, dst: int, write: Callable[[int, memoryview], int]) -> None:
    while data := os.read(src, _PIPE_CHUNK):
        view = memoryview(data)
        while view:
            view = view[write(dst, view) :]


def _wait(fd: int, event: int) -> None:
    poller = select.poll()
    poller.register(fd, event)
    poller.poll()


def relay(src: int, dst: int, write: Callable[[int, memoryview], int]) -> bool:
    """Move bytes from ``src`` to ``dst`` until EOF: spliced in the kernel when one
    of them is a pipe, else read and written in blocks as large as the pipe gives.

    A splice never waits inside the kernel: a blocking one would hold the pipe's
    lock while it waits for the socket, and Plakar could then neither read
    that pipe nor, in turn, take what we send it.  It is asked not to block,
    and when a side is not ready the relay waits for both with ``poll``.

    Returns whether the bytes were spliced."""
    try:
        while True:
            try:
                if not os.splice(src, dst, _PIPE_CHUNK, flags=os.SPLICE_F_NONBLOCK):
                    return True
            except BlockingIOError:
                _wait(src, select.POLLIN)
                _wait(dst, select.POLLOUT)
    except OSError as exc:
        if exc.errno not in _NO_SPLICE:
            raise
    _copy(src, dst, write)
    return False


def _listen(register: Callable[[grpc.Server], None]) -> tuple[grpc.Server, socket.socket]:
    """The server, and our one connection to it, on a unix socket nobody else can
    reach: made in a private directory, connected to once, then removed with it."""
    tmp = tempfile.mkdtemp(prefix="kloset-sdk-")
    held = os.open(tmp, os.O_PATH | os.O_DIRECTORY)
    path = os.path.join(tmp, "grpc.sock")
    # A socket's path holds 107 bytes at most: under a long TMPDIR, the same
    # directory is reached through our own descriptor of it.
    address = path if len(os.fsencode(path)) <= _SUN_PATH else f"/proc/self/fd/{held}/grpc.sock"
    try:
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
        return server, conn
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.rmdir(tmp)
        os.close(held)


def serve(register: Callable[[grpc.Server], None], stdin: int = 0, stdout: int = 1) -> None:
    """Run a gRPC server, populated by ``register``, over the given pipe descriptors."""
    server, conn = _listen(register)
    enlarge_pipe(stdin)
    enlarge_pipe(stdout)

    def inbound() -> None:
        with contextlib.suppress(OSError):
            relay(stdin, conn.fileno(), lambda fd, b: conn.send(b))
        # Plakar closed our stdin: the session is over, whatever is in flight.
        server.stop(grace=None)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)

    reader = threading.Thread(target=inbound, name="stdin-relay", daemon=True)
    reader.start()
    try:
        relay(conn.fileno(), stdout, os.write)
    except OSError:
        pass  # Plakar went away: there is nobody left to answer
    finally:
        conn.close()
        server.stop(grace=None)
