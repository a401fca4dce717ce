"""A private OpenSSH server on a loopback port, and its SFTP subsystem mounted
with ``sshfs``, for tests that keep a Plakar store on an SFTP server.

Keys are generated for each server (ed25519, no passphrase): a host key that
the client pins in its own ``known_hosts``, and a user key, the only way in.
Password and keyboard-interactive logins are off.  Everything lives under the
server's base directory and goes with :meth:`SFTPServer.stop`.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from pathlib import Path

from plakar_mysql_harness.mariadb import free_port

from .fuse import MountedServer, fuse_missing

SSHD = "/usr/sbin/sshd"


def ssh_tools_missing() -> str | None:
    """Why SFTP tests cannot run here, or None."""
    missing = [tool for tool in (SSHD, "ssh-keygen", "sshfs") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (make test-deps installs them)"
    return fuse_missing()


class SFTPServer(MountedServer):
    """``sshd`` on 127.0.0.1:``port`` for the current user, keys only."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user_key = self.base / "user_key"
        self.known_hosts = self.base / "known_hosts"
        host_key = self.base / "host_key"
        for key in (host_key, self.user_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        (self.base / "authorized_keys").write_text(self.user_key.with_suffix(".pub").read_text())
        algorithm, public = host_key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {algorithm} {public}\n")
        config = self.base / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"PidFile {self.base / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.base / 'authorized_keys'}\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "Subsystem sftp internal-sftp\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.log = self.base / "sshd.log"
        # -D: stays in the foreground, so the process is ours to stop.
        self.process = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(self.log)])
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while "Server listening" not in (self.log.read_text() if self.log.exists() else ""):
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"sshd exited: {self.log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd did not start in {timeout:g}s")
            time.sleep(0.05)

    def mount(self, remote_dir: Path, mountpoint: Path) -> Path:
        """Mount ``remote_dir`` of the server at ``mountpoint`` over SFTP."""
        options = ",".join(
            [
                f"IdentityFile={self.user_key}",
                f"UserKnownHostsFile={self.known_hosts}",
                "StrictHostKeyChecking=yes",
                "BatchMode=yes",
            ]
        )
        source = f"{getpass.getuser()}@127.0.0.1:{remote_dir}"
        return self.mount_with(["sshfs", "-p", str(self.port), "-o", options, source], mountpoint)
