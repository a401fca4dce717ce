"""Run the documentation's own blocks: the account SQL and the shell commands.

A fenced block that the tests run is marked, on the line just before its
fence, with an HTML comment that Markdown does not show::

    <!-- tested: NAME -->
    ```sh
    ...
    ```

:func:`marked_blocks` reads them from the Markdown file itself, never from a
copy.  A shell block runs one command at a time (a line, or lines joined by a
trailing backslash; comment lines are skipped) through ``bash``, after a small
table of literal substitutions (host names, ports, sockets, paths, a stop
time) given by the test, and with the snapshot names bound as the docs bind
them: a ``backup`` command whose comment ends in ``snapshot NAME`` makes the
snapshot that ``NAME`` stands for in the commands after it, as the reader
would read its id from ``plakar ls``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from plakar_mysql_harness.plakar import Plakar, describe, strip_ansi

_MARKED = re.compile(
    r"^<!-- tested: (?P<name>[\w-]+) -->\n```(?P<language>\w+)\n(?P<text>.*?)^```$",
    re.M | re.S,
)
_FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<text>.*?)^```$", re.M | re.S)
_SNAPSHOT_NAME = re.compile(r"\bsnapshot ([A-Z][A-Z_]*)\s*$")
_BACKUP_RESULT = re.compile(r"^([0-9a-f]{8}): backup completed without errors in ", re.M)


@dataclass(frozen=True)
class Block:
    """One marked fenced block of a Markdown file."""

    path: Path
    name: str
    language: str
    text: str

    def commands(self) -> list[str]:
        """The block's shell commands: continuation lines joined, comment lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        return [line for line in joined.splitlines() if line.strip() and not _is_comment(line)]


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def marked_blocks(path: Path) -> dict[str, Block]:
    """The blocks of ``path`` marked ``<!-- tested: NAME -->``, by name."""
    text = path.read_text(encoding="utf-8")
    blocks: dict[str, Block] = {}
    for match in _MARKED.finditer(text):
        name = match["name"]
        assert name not in blocks, f"{path}: two blocks are marked {name!r}"
        blocks[name] = Block(path, name, match["language"], match["text"])
    return blocks


def fenced_blocks(path: Path, language: str) -> list[str]:
    """Every fenced block of ``language`` in ``path``, marked or not."""
    text = path.read_text(encoding="utf-8")
    return [m["text"] for m in _FENCE.finditer(text) if m["language"] == language]


def split_comment(command: str) -> tuple[str, str]:
    """``command`` as its code and its trailing ``# comment`` (outside quotes)."""
    quote = ""
    for index, char in enumerate(command):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or command[index - 1].isspace()):
            return command[:index].rstrip(), command[index + 1 :].strip()
    return command, ""


def substitute(code: str, table: Mapping[str, str]) -> str:
    """``code`` with each key of ``table`` replaced by its value, longest keys first."""
    for key in sorted(table, key=len, reverse=True):
        code = code.replace(key, table[key])
    return code


@dataclass
class Shell:
    """Runs docs commands as a reader would type them, in ``plakar``'s private home.

    ``plakar`` is ``bin/plakar`` on ``PATH``, with the test's home (``$HOME``,
    ``~``) and store passphrase; ``table`` holds the literal substitutions;
    ``snapshots`` the snapshot names bound so far; ``hooks`` replace a program
    the docs name with the test's own way of doing the same (``mariadbd`` on a
    restored directory is started by the test harness).
    """

    plakar: Plakar
    table: dict[str, str]
    snapshots: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Callable[[str], None]] = field(default_factory=dict)
    timeout: float = 300.0

    def code(self, command: str) -> str:
        """What runs for ``command``: substituted, snapshot names replaced by their ids."""
        code, _ = split_comment(command)
        code = substitute(code, self.table)
        for name, snapshot in self.snapshots.items():
            code = re.sub(rf"\b{name}\b", snapshot, code)
        return code

    def run(self, command: str) -> str:
        """Run one command of a block; fail the test with its output if it fails.
        Returns what it printed."""
        code = self.code(command)
        program = code.split(maxsplit=1)[0]
        if program in self.hooks:
            self.hooks[program](code)
            return ""
        env = self.plakar.env
        env["PATH"] = f"{self.plakar.binary.parent}:{env.get('PATH', '')}:/usr/sbin:/sbin"
        # Its own session: on a timeout, bash, plakar and the plugin's tools all go.
        with subprocess.Popen(
            ["bash", "-c", code],
            env=env,
            cwd=self.plakar.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as child:
            try:
                stdout, stderr = child.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                stdout, stderr = child.communicate()
        out = strip_ansi(stdout + stderr)
        failed = (
            child.returncode != 0
            or re.search(r"^plakar: ", out, re.M)
            or re.search(r"^[0-9a-f]{8}: backup completed with \d+ errors?", out, re.M)
        )
        assert not failed, f"the docs' command failed:\n{command}\n" + describe(
            ["bash", "-c", code], child.returncode, stdout, stderr
        )
        self._bind(command, out)
        return out

    def _bind(self, command: str, out: str) -> None:
        """Bind the snapshot name a ``backup`` command's comment gives to its id."""
        _, comment = split_comment(command)
        named = _SNAPSHOT_NAME.search(comment)
        if named is None or " backup " not in f" {command} ":
            return
        made = _BACKUP_RESULT.findall(out)
        assert len(made) == 1, f"no snapshot made by:\n{command}\n{out}"
        self.snapshots[named[1]] = self.plakar.resolve(made[0])

    def run_block_all(self, block: Block) -> None:
        """Run every command of ``block``."""
        for _ in self.run_block(block):
            pass

    def run_block(self, block: Block) -> Iterator[str]:
        """Run every command of ``block``, yielding each before it runs (so that the
        test may act between two of them)."""
        for command in block.commands():
            yield command
            self.run(command)
