"""Prove that the server a physical backup talks to keeps its data directory here.

The backup tool copies the data files by path, on this machine, while it talks
to the server over a connection for locks and the redo log.  Checking only that
``@@datadir`` exists here is not enough: a remote server (or one in a container,
another mount namespace, behind a forwarded port) whose path happens to exist
here would get *these* files copied, with a success.  So before copying:

1. find the process that holds the server's end of our own connection.  Over a
   Unix socket the kernel says who it is (``SO_PEERCRED``).  Over TCP, the pid
   file the server names (``@@pid_file``) gives the candidate, which must hold
   the socket whose addresses are our connection's, reversed (its
   ``/proc/<pid>/net/tcp*`` table and ``/proc/<pid>/fd``).  A live local
   process named by the same pid file path is therefore not taken for it;
2. that process's working directory (the server changes to its data directory
   when it starts) must be the very directory, same device and inode, that
   ``@@datadir`` names on this machine.

Anything that cannot be proven is refused, in one line that says why.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Any

from plakar_mysql.core.server import ServerError

_Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
_RUN_HERE = "run the physical backup on the server's machine, as root or as its system user"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address, with an IPv4-mapped IPv6 address (a dual-stack listener's view) as IPv4."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def decode_proc_address(field: str) -> _Address:
    """``0100007F:0CEA`` (``/proc/net/tcp``: 32-bit words in host order, hex port) as
    ``(127.0.0.1, 3306)``; the 32-digit form is IPv6."""
    digits, port = field.split(":")
    raw = b"".join(struct.pack("=I", int(digits[i : i + 8], 16)) for i in range(0, len(digits), 8))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped, int(port, 16)
    return address, int(port, 16)


def socket_inodes(table: str, local: _Address, remote: _Address) -> set[int]:
    """Inodes of the sockets of a ``/proc/net/tcp``-style ``table`` with these ends."""
    found = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        if decode_proc_address(fields[1]) == local and decode_proc_address(fields[2]) == remote:
            found.add(int(fields[9]))
    return found


def _holds_socket(pid: int, inodes: set[int]) -> bool:
    """Whether process ``pid`` has one of these socket inodes open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{name}") in wanted:
                return True
        except OSError:
            continue  # closed meanwhile
    return False


def _pid_from_file(pid_file: str, address: str) -> int:
    """The pid the server's pid file names on this machine."""
    try:
        with open(pid_file, encoding="ascii", errors="replace") as handle:
            text = handle.read(64).strip()
    except FileNotFoundError:
        raise ServerError(
            f"the server at {address} names its pid file {pid_file}, which is not on this "
            f"machine: the server runs elsewhere; {_RUN_HERE}"
        ) from None
    except OSError as exc:
        raise ServerError(f"cannot read the server's pid file {pid_file}: {exc.strerror}") from None
    if not text.isdigit():
        raise ServerError(f"the server's pid file {pid_file} holds no process id")
    return int(text)


def _tcp_server_pid(sock: socket.socket, pid_file: str, address: str) -> int:
    """The process named by the pid file, once proven to hold our connection's far end."""
    ours = sock.getsockname()
    theirs = sock.getpeername()
    local, remote = (_ip(theirs[0]), int(theirs[1])), (_ip(ours[0]), int(ours[1]))
    pid = _pid_from_file(pid_file, address)
    try:
        inodes: set[int] = set()
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as handle:
                inodes |= socket_inodes(handle.read(), local, remote)
        held = bool(inodes) and _holds_socket(pid, inodes)
    except FileNotFoundError:
        raise ServerError(
            f"the pid file {pid_file} of the server at {address} names process {pid}, which "
            f"does not run on this machine: the server runs elsewhere; {_RUN_HERE}"
        ) from None
    except PermissionError:
        raise ServerError(
            f"cannot tell whether process {pid} is the server at {address} "
            f"(no access to /proc/{pid}): {_RUN_HERE}"
        ) from None
    if not held:
        raise ServerError(
            f"process {pid}, named by the pid file {pid_file}, is not the server this "
            f"connection reaches at {address} (another server, a forwarded port or a "
            f"container): {_RUN_HERE}, connecting to it directly or through its socket"
        )
    return pid


def _socket_server_pid(sock: socket.socket, address: str) -> int:
    """The process at the other end of a Unix socket, as the kernel reports it."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid: int = struct.unpack("3i", creds)[0]
    if pid <= 0:
        raise ServerError(
            f"the server at {address} runs in another process namespace (a container): {_RUN_HERE}"
        )
    return pid


def server_pid(db: Any, pid_file: str, address: str) -> int:
    """The id, on this machine, of the server process at the other end of ``db``."""
    sock: socket.socket = db._sock
    if sock.family == socket.AF_UNIX:
        return _socket_server_pid(sock, address)
    return _tcp_server_pid(sock, pid_file, address)


def prove_local(db: Any, datadir: str, pid_file: str, address: str) -> None:
    """Refuse unless the server at the other end of ``db`` runs here, in ``datadir``.

    ``db`` is an open PyMySQL connection; ``datadir`` and ``pid_file`` are the
    server's ``@@datadir`` and ``@@pid_file``.
    """
    pid_path = os.path.join(datadir, pid_file)  # absolute as the server reports it
    pid = server_pid(db, pid_path, address)
    try:
        cwd = os.stat(f"/proc/{pid}/cwd")
    except PermissionError:
        raise ServerError(
            f"cannot see the data directory of the server process {pid}: {_RUN_HERE}"
        ) from None
    except FileNotFoundError:
        raise ServerError(f"the server process {pid} at {address} has gone") from None
    try:
        here = os.stat(datadir)
    except OSError:
        here = None
    if here is None or not os.path.samestat(cwd, here):
        raise ServerError(
            f"the data directory {datadir} on this machine is not the one the server at "
            f"{address} (process {pid}) runs in (a remote server, a container or another "
            f"mount namespace): refusing to copy other files; {_RUN_HERE}"
        )
