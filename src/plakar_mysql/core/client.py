"""Feed SQL into the server's own client, and report its error with its line.

Every load is one ``mariadb``/``mysql`` process reading the file on its
standard input, with the password handed over through an anonymous pipe, and
in sandbox mode (:attr:`~plakar_mysql.core.flavour.Tool.sandbox_args`): a snapshot is
data, so a ``\\!``, ``system``, ``\\T``, ``\\.``, ``source`` or ``connect`` in it
fails the load instead of running a shell command, writing or reading a file,
or sending the credentials elsewhere; ``LOAD DATA LOCAL INFILE`` is off too.  A
file already on disk is given to the client as its stdin, so the bytes never
pass through Python; a stream is copied in large blocks.  ``definer=current``
rewrites the ``DEFINER`` clauses of views, routines, triggers and events on
the way (:class:`DefinerRewriter`).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from kloset_sdk.guard import Guard
from kloset_sdk.records import Content
from plakar_mysql.core.credentials import hide_secrets, option_pipe
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.flavour import Tool
from plakar_mysql.core.options import Connection

MAX_PACKET = "1073741824"  # the protocol's maximum: any row the server holds fits

BLOCK = 1 << 20
_LINE = 8 << 10  # of a child's stderr kept per line: no line is held whole


class LoadError(PlakarMySQLError, RuntimeError):
    """The client failed; the message holds its own error line."""


class StderrTail:
    """Collects a child's stderr in the background, keeping its last lines: the
    pipe is drained as the child runs, so a chatty child never blocks on it."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe: IO[bytes]) -> None:
        for raw in iter(lambda: pipe.readline(_LINE), b""):  # a line cut at _LINE bytes
            self.lines = [*self.lines[-19:], raw.decode(errors="replace").rstrip()]

    def text(self) -> str:
        """The client's error lines (``ERROR ... at line N: ...``), else its last lines."""
        self._thread.join()
        errors = [line for line in self.lines if line.startswith("ERROR")]
        return hide_secrets(" | ".join(errors or [line for line in self.lines if line.strip("- ")]))


# The DEFINER clause where the dump tools write it: triggers, views, routines, events.
_DEFINER = re.compile(
    rb"^(/\*!50003 CREATE\*/ /\*!50017 |/\*!50013 |CREATE |/\*!50106 CREATE\*/ /\*!50117 )"
    rb"DEFINER=`(?:[^`\n]|``)*`@`(?:[^`\n]|``)*`",
    re.M,
)


class _LineRewriter:
    """Applies ``pattern`` -> ``replacement`` to whole lines of a stream of blocks.

    Every pattern starts with a word (``marker``) that most blocks of a dump do
    not hold: those pass through without a regular-expression scan.  A line
    cut across blocks is kept as its pieces and joined once, when it ends.
    """

    pattern: re.Pattern[bytes]
    replacement: bytes | Callable[[re.Match[bytes]], bytes]
    marker: bytes

    def __call__(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        started: list[bytes] = []  # the pieces of a line not ended yet
        for block in blocks:
            cut = block.rfind(b"\n") + 1
            if not cut:
                started.append(block)
                continue
            ended = block if cut == len(block) else block[:cut]
            if started:
                started.append(ended)
                ended = b"".join(started)
                started = []
            yield self._rewrite(ended)
            if cut < len(block):
                started.append(block[cut:])
        if started:
            yield self._rewrite(b"".join(started))

    def _rewrite(self, lines: bytes) -> bytes:
        return self.pattern.sub(self.replacement, lines) if self.marker in lines else lines


class DefinerRewriter(_LineRewriter):
    """Rewrites ``DEFINER=`u`@`h``` to ``DEFINER=CURRENT_USER`` in a stream of blocks."""

    pattern = _DEFINER
    replacement = rb"\1DEFINER=CURRENT_USER"
    marker = b"DEFINER="


_IDENT = rb"(?:`(?:[^`\n]|``)+`|[0-9A-Za-z_$\x80-\xff]+)"
# A trigger's name and table as the dump tools write them (the statement as it was
# typed): a database qualifier there would create it in the source's database.
_TRIGGER = re.compile(
    rb"^(?P<head>/\*!50003 CREATE\*/ (?:/\*!50017 DEFINER="
    rb"(?:CURRENT_USER|`(?:[^`\n]|``)*`@`(?:[^`\n]|``)*`)\*/ )?/\*!50003 TRIGGER\s+)"
    rb"(?P<q1>" + _IDENT + rb"\s*\.\s*)?"
    rb"(?P<body>(?P<name>" + _IDENT + rb")"
    rb"\s+(?i:BEFORE|AFTER)\s+(?i:INSERT|UPDATE|DELETE)\s+(?i:ON)\s+)"
    rb"(?P<q2>" + _IDENT + rb"\s*\.\s*)?",
    re.M,
)


def unquote_identifier(text: str) -> str:
    """An identifier as written (`` `a``b` `` or ``ab``) as its name."""
    return text[1:-1].replace("``", "`") if text.startswith("`") else text


class TriggerRewriter(_LineRewriter):
    """Drops the database qualifier of a trigger's name and table, so that a table
    file loaded into another database (a shadow, a new name) gets its triggers there.
    A trigger lives in its table's database, so any qualifier names the source's.
    What it dropped is kept in ``dropped`` (trigger name -> the two qualifiers as
    written), so that the trigger can be created again exactly as it was typed."""

    pattern = _TRIGGER
    marker = b"TRIGGER"

    def __init__(self, dropped: dict[str, tuple[str, str]] | None = None) -> None:
        self.dropped = dropped if dropped is not None else {}

    def replacement(self, match: re.Match[bytes]) -> bytes:
        q1, q2 = match["q1"] or b"", match["q2"] or b""
        if q1 or q2:
            name = unquote_identifier(match["name"].decode(errors="replace"))
            self.dropped[name] = (q1.decode(errors="replace"), q2.decode(errors="replace"))
        return match["head"] + match["body"]


class Client:
    """The SQL client of the target server, ready to run loads."""

    def __init__(
        self,
        tool: Tool,
        conn: Connection,
        *,
        force: bool,
        init_command: str | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.tool = tool
        self.guard = guard  # kills a client left running if the plugin dies
        self.conn = conn
        self.force = force
        self.init_command = init_command  # run first in every session (the lock wait bounds)
        self.name = tool.path.rsplit("/", 1)[-1]
        self.sandbox = tool.sandbox_args  # a client that has no sandbox is refused here

    def load(
        self,
        what: str,
        database: str | None,
        *,
        file: IO[bytes] | None = None,
        chunks: Iterable[bytes] = (),
    ) -> str:
        """Run ``file`` (a file on disk) or else ``chunks`` in ``database``.

        Returns the errors ignored with ``force``; raises :class:`LoadError`
        naming ``what`` if the client fails.
        """
        args = [
            "--batch",
            "--silent",
            "--comments",  # keep the comments inside routine and trigger bodies
            f"--max-allowed-packet={MAX_PACKET}",
            "--default-character-set=utf8mb4",
            *self.sandbox,
            # LOAD DATA LOCAL INFILE would read any file this process can (the
            # sandbox allows it): no dump needs it, so a snapshot gets none.
            "--local-infile=0",
        ]
        if self.force:
            args.append("--force")
        if self.init_command:
            args.append(f"--init-command={self.init_command}")
        if database is not None:
            args += ["--database", database]
        with option_pipe(self.conn, self.tool.flavour) as (fd, defaults):
            process = subprocess.Popen(
                [self.tool.path, defaults, *args],
                stdin=file if file is not None else subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        with self.guard.child(process) if self.guard else contextlib.nullcontext():
            return self._run(process, what, file is None, chunks)

    def _run(
        self, process: subprocess.Popen[bytes], what: str, piped: bool, chunks: Iterable[bytes]
    ) -> str:
        """Feed ``chunks`` to the started client if ``piped``; its errors, or raise."""
        assert process.stderr is not None
        errors = StderrTail(process.stderr)
        if piped:
            assert process.stdin is not None
            try:
                for chunk in chunks:
                    process.stdin.write(chunk)
            except BrokenPipeError:
                pass  # the client stopped on an error: its message says which
            finally:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()
        code = process.wait()
        message = errors.text()
        if code != 0:
            raise LoadError(
                f"{self.name} failed loading {what}: {message or f'exit status {code}'}"
            )
        return message


def blocks(stream: Content, first: bytes = b"") -> Iterator[bytes]:
    """``first``, then ``stream`` read in large blocks."""
    if first:
        yield first
    while chunk := stream.read(BLOCK):
        yield chunk
