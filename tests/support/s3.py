"""A private S3-compatible object store on a loopback port, and a bucket of it
mounted with ``s3fs``, for tests that keep a Plakar store on object storage.

The server is the Versity S3 Gateway (``bin/versitygw``, built by ``make
test`` from its pinned Go module) with its POSIX backend: each bucket is a
directory below :attr:`S3Server.root` and each object a file in it, so a test
can read every byte the object store holds.  Credentials are generated for
each server and reach it through its environment and ``s3fs`` through a
0600 file, never through an argv.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from plakar_mysql_harness.mariadb import free_port
from plakar_mysql_harness.plakar import ROOT

from .fuse import MountedServer, fuse_missing

VERSITYGW = ROOT / "bin" / "versitygw"


def s3_tools_missing() -> str | None:
    """Why S3 tests cannot run here, or None."""
    if not VERSITYGW.is_file():
        return f"{VERSITYGW} is missing (make test builds it)"
    if shutil.which("s3fs") is None:
        return "s3fs not installed (make test-deps installs it)"
    return fuse_missing()


class S3Server(MountedServer):
    """versitygw on 127.0.0.1:``port``, one account, buckets below ``root``."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self.root = base / "objects"
        self.root.mkdir(parents=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key = "plakar-test"
        self.secret_key = secrets.token_urlsafe(24)
        env = dict(
            os.environ,
            ROOT_ACCESS_KEY=self.access_key,
            ROOT_SECRET_KEY=self.secret_key,
        )
        self.log = base / "versitygw.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(VERSITYGW),
                    "--quiet",
                    "--port",
                    f"127.0.0.1:{self.port}",
                    "posix",
                    str(self.root),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # an S3 error answer (403 without credentials): it is up
            except OSError as exc:
                if self.process is not None and self.process.poll() is not None:
                    raise AssertionError(f"versitygw exited: {self.log.read_text()}") from exc
                if time.monotonic() > deadline:
                    raise AssertionError(f"versitygw did not start in {timeout:g}s") from exc
                time.sleep(0.05)

    def create_bucket(self, name: str) -> Path:
        """A new bucket (with the POSIX backend, a top-level directory); its directory."""
        bucket = self.root / name
        bucket.mkdir()
        return bucket

    def mount(self, bucket: str, mountpoint: Path) -> Path:
        """Mount ``bucket`` at ``mountpoint`` with s3fs (path-style requests)."""
        credentials = self.base / f"s3fs-{bucket}.passwd"
        credentials.touch(mode=0o600)
        credentials.write_text(f"{self.access_key}:{self.secret_key}\n")
        options = ",".join(
            [
                f"passwd_file={credentials}",
                f"url={self.endpoint}",
                "use_path_request_style",
                "endpoint=us-east-1",
            ]
        )
        return self.mount_with(["s3fs", bucket, "-o", options], mountpoint)
