"""A plain ``mysqldump`` file loaded as it is, but for its ``SET @@GLOBAL.GTID_PURGED``.

``mysqldump`` of a server with GTIDs (``--set-gtid-purged=AUTO``, its default)
writes, before the first database, ``SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/
'<the source's GTID set>';``: a server-wide change, refused when the target
has executed any of those transactions already (``ERROR 3546``), which is the
case of the source itself, or of a target a dump of the same source was
restored to.  So restoring the official integration's ``/all.sql`` or
``/<db>.sql`` back onto its own server failed on MySQL 9.7.4.  That statement
is not data: it is left out (each of its lines made a comment, so the server's
error line numbers still match the file), and the set it held is said, for a
DBA who wants it (``SET @@GLOBAL.GTID_PURGED = '+...'``).  This integration's
own snapshots record that point in their manifest instead (``restore_point``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

#: Where the statement may be: the dump's head, before any row.
_HEAD_LIMIT = 1 << 20
_STATEMENT = re.compile(
    rb"^SET @@GLOBAL\.GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)';[ \t]*$", re.M
)


def without_gtid_purged(chunks: Iterable[bytes], log: Callable[[str], None]) -> Iterator[bytes]:
    """``chunks`` with the first ``SET @@GLOBAL.GTID_PURGED`` of its head made a comment."""
    source = iter(chunks)
    head = b""
    for chunk in source:
        head += chunk
        if len(head) >= _HEAD_LIMIT:
            break
    found = _STATEMENT.search(head)
    if found is not None:
        statement = found[0]
        commented = b"\n".join(b"-- " + line for line in statement.split(b"\n"))
        head = head[: found.start()] + commented + head[found.end() :]
        gtids = found[1].decode("ascii", errors="replace").replace("\n", "")
        log(
            "left @@GLOBAL.gtid_purged as it was: the dump would add the source's "
            f"GTID set {gtids!r} to it (refused where any of them ran already); "
            "SET @@GLOBAL.GTID_PURGED = '+<that set>' does it by hand"
        )
    yield head
    yield from source
