"""The values that cross Plakar's plugin protocol: file infos, records, results.

They mirror Kloset's ``connectors.Record`` and ``connectors.Result`` (and the
protobuf messages of ``integration-grpc``), in plain typed Python.  Conversion
to and from the generated protobuf classes lives here too, so that the rest of
the SDK never touches a protobuf message field by field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from kloset_sdk._pb import connectors_pb2 as pb
from kloset_sdk.guard import Guard

# Go's io/fs.FileMode keeps the type in the high bits, not POSIX's S_IFMT.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_TYPE = MODE_DIR | MODE_SYMLINK | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


class Content(Protocol):
    """A record's content: read in blocks until ``b""``, then closed."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[], Content]
"""Returns a record's content; called at most once, lazily."""


class Flags(enum.IntFlag):
    """Kloset's location flags, as an importer or exporter declares them in ``Init``."""

    LOCALFS = 1 << 0
    FILE = 1 << 1
    STREAM = 1 << 2  # importer: Import() can run only once (no counting pass)
    NEEDACK = 1 << 3  # importer: wants results back
    NOMERGE = 1 << 4


NO_FLAGS = Flags(0)


@dataclass(frozen=True)
class Options:
    """What Plakar tells a connector about the host in ``Init``."""

    hostname: str = ""
    os: str = ""
    arch: str = ""
    cwd: str = ""
    max_concurrency: int = 1
    excludes: tuple[str, ...] = ()
    no_xattr: bool = False
    # Not Plakar's: the process's guardian, for clean-up that must survive a kill.
    guard: Guard = field(default_factory=Guard.off, compare=False, repr=False)


@dataclass(frozen=True)
class ConnectorInfo:
    """What a connector answers to ``Init``: where the data comes from and how to treat it."""

    origin: str
    type: str
    root: str = "/"
    flags: Flags = NO_FLAGS


@dataclass(frozen=True)
class FileInfo:
    """A file's metadata, as Kloset stores it (``mode`` uses Go's FileMode bits)."""

    name: str
    size: int = 0
    mode: int = 0o644
    mod_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    dev: int = 0
    ino: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 1
    username: str = ""
    groupname: str = ""
    flags: int = 0

    @classmethod
    def regular(cls, name: str, mod_time: datetime, size: int = 0, perm: int = 0o644) -> FileInfo:
        return cls(name=name, size=size, mode=perm, mod_time=mod_time)

    @classmethod
    def directory(cls, name: str, mod_time: datetime, perm: int = 0o755) -> FileInfo:
        return cls(name=name, mode=MODE_DIR | perm, mod_time=mod_time)

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    @property
    def is_regular(self) -> bool:
        return not self.mode & MODE_TYPE


@dataclass(frozen=True)
class Record:
    """One entry of a snapshot: a path, its metadata and, for files, its content.

    An importer gives ``opener``, which the SDK calls only when Plakar asks for
    the content (or, if Plakar never asks, just before it drops the record, so
    that a streaming importer can skip past it).  An exporter receives records
    whose ``opener`` returns the content as it arrives over the wire.
    """

    pathname: str
    file_info: FileInfo | None
    opener: Opener | None = None
    error: str = ""
    target: str = ""
    is_xattr: bool = False
    xattr_name: str = ""
    xattr_type: int = 0
    extended_attributes: tuple[str, ...] = ()
    file_attributes: int = 0

    @classmethod
    def directory(cls, pathname: str, mod_time: datetime) -> Record:
        name = pathname.rsplit("/", 1)[-1] or "/"
        return cls(pathname, FileInfo.directory(name, mod_time))

    @classmethod
    def file(
        cls, pathname: str, opener: Opener, mod_time: datetime, size: int = 0, perm: int = 0o644
    ) -> Record:
        name = pathname.rsplit("/", 1)[-1]
        return cls(pathname, FileInfo.regular(name, mod_time, size, perm), opener)

    @property
    def has_content(self) -> bool:
        """Mirrors Kloset: only a regular file or an xattr without error carries content."""
        if self.error or self.opener is None:
            return False
        return self.is_xattr or (self.file_info is not None and self.file_info.is_regular)

    @property
    def key(self) -> str:
        """The identity under which Plakar asks for a record's content."""
        if not self.is_xattr:
            return self.pathname
        sep = "@" if self.xattr_type == pb.EXTENDED_ATTRIBUTE_TYPE_ADS else ":"
        return f"xattr:{self.pathname}{sep}{self.xattr_name}"

    def open(self) -> Content:
        if self.opener is None:
            raise FileNotFoundError(f"{self.pathname}: record has no content")
        return self.opener()

    def with_opener(self, opener: Opener | None) -> Record:
        return replace(self, opener=opener)


@dataclass(frozen=True)
class Result:
    """The outcome for one record: empty ``error`` means success."""

    record: Record
    error: str = ""

    @classmethod
    def ok(cls, record: Record) -> Result:
        return cls(record)

    @classmethod
    def failed(cls, record: Record, error: BaseException | str) -> Result:
        return cls(record, str(error) or type(error).__name__)


def record_to_proto(record: Record) -> pb.Record:
    msg = pb.Record(
        hasReader=record.has_content,
        pathname=record.pathname,
        error=record.error,
        isXattr=record.is_xattr,
        xattrName=record.xattr_name,
        xattrType=record.xattr_type,  # type: ignore[arg-type]
        target=record.target,
        extendedAttributes=list(record.extended_attributes),
        fileAttributes=record.file_attributes,
    )
    fi = record.file_info
    if fi is not None and not record.error and not record.is_xattr:
        msg.fileInfo.CopyFrom(
            pb.FileInfo(
                name=fi.name,
                size=fi.size,
                mode=fi.mode,
                mod_time=fi.mod_time.astimezone(UTC),
                dev=fi.dev,
                ino=fi.ino,
                uid=fi.uid,
                gid=fi.gid,
                nlink=fi.nlink,
                username=fi.username,
                groupname=fi.groupname,
                flags=fi.flags,
            )
        )
    return msg


def record_from_proto(msg: pb.Record) -> Record:
    fi: FileInfo | None = None
    if msg.HasField("fileInfo"):
        info = msg.fileInfo
        fi = FileInfo(
            name=info.name,
            size=info.size,
            mode=info.mode,
            mod_time=info.mod_time.ToDatetime(tzinfo=UTC),
            dev=info.dev,
            ino=info.ino,
            uid=info.uid,
            gid=info.gid,
            nlink=info.nlink,
            username=info.username,
            groupname=info.groupname,
            flags=info.flags,
        )
    elif not msg.error and not msg.isXattr:
        raise ValueError(f"invalid record {msg.pathname}: missing fileinfo")
    return Record(
        pathname=msg.pathname,
        file_info=fi,
        error=msg.error,
        target=msg.target,
        is_xattr=msg.isXattr,
        xattr_name=msg.xattrName,
        xattr_type=msg.xattrType,
        extended_attributes=tuple(msg.extendedAttributes),
        file_attributes=msg.fileAttributes,
    )


def result_to_proto(result: Result) -> pb.Result:
    return pb.Result(header=record_to_proto(result.record), error=result.error)


def result_from_proto(msg: pb.Result) -> Result:
    return Result(record_from_proto(msg.header), msg.error)
