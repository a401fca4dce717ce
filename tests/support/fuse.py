"""What the storage test servers share: a server process of ours, and the FUSE
mounts (``sshfs``, ``s3fs``) through which Plakar reaches it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def fuse_missing() -> str | None:
    """Why nothing can be mounted here, or None."""
    return None if Path("/dev/fuse").exists() else "/dev/fuse is missing: nothing can be mounted"


class MountedServer:
    """A server process (``self.process``, set by the subclass) and the mounts of it
    made with :meth:`mount_with`; :meth:`stop` undoes both."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._mounts: list[Path] = []

    def mount_with(self, command: Sequence[str], mountpoint: Path) -> Path:
        """Run a FUSE mount ``command`` whose last argument is ``mountpoint``."""
        mountpoint.mkdir(parents=True, exist_ok=True)
        subprocess.run([*command, str(mountpoint)], check=True, timeout=30)
        self._mounts.append(mountpoint)
        return mountpoint

    def stop(self) -> None:
        for mountpoint in reversed(self._mounts):
            subprocess.run(["fusermount", "-u", str(mountpoint)], check=False)
        self._mounts.clear()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None
