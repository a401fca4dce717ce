"""Leaving a physical backup's binary-log point: where the server is looked for, and
the one line a restore prints when the point cannot be set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.scripts import executable

from kloset_sdk.guard import Guard
from plakar_mysql.core.flavour import Flavour
from plakar_mysql.core.gtid import Position
from plakar_mysql.physical.manifest import BinlogPoint
from plakar_mysql.physical.replay_point import (
    PointError,
    find_server,
    leave_point,
    server_directories,
    set_point_in_datadir,
)

MARIADBD = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")


def fake_server(directory: Path, version_line: str) -> Path:
    return executable(directory / "mariadbd", f"#!/bin/sh\necho '{version_line}'\n")


def test_the_server_is_looked_for_in_bin_dir_beside_the_tool_then_path_then_sbin(
    tmp_path: Path,
) -> None:
    tool = tmp_path / "opt/bin/mariadb-backup"
    dirs = server_directories(str(tool), "/b", path="/p1:/p2", system="/sys")
    assert dirs == [
        "/b",
        str(tmp_path / "opt/bin"),
        str(tmp_path / "opt/sbin"),
        "/p1",
        "/p2",
        "/sys",
    ]


def test_a_server_of_another_release_is_passed_over_and_named(tmp_path: Path) -> None:
    tool = tmp_path / "bin/mariadb-backup"
    fake_server(tmp_path / "bin", "mariadbd  Ver 11.4.2-MariaDB for Linux")
    right = fake_server(tmp_path / "sbin", "mariadbd  Ver 10.11.19-MariaDB for Linux")
    found, why = find_server(str(tool), (10, 11, 6), None, path="", system=str(tmp_path / "none"))
    assert (found, why) == (str(right), "")
    right.unlink()
    found, why = find_server(str(tool), (10, 11, 6), None, path="", system=str(tmp_path / "none"))
    assert found is None
    assert why.startswith("no mariadbd 10.11 in bin_dir, beside the backup tool, in PATH or")
    assert f"{tmp_path / 'bin/mariadbd'} is 11.4" in why


POINT = BinlogPoint("mysql-bin.000002", 3709, "0-1-20")


def messages(binlog: BinlogPoint | None, flavour: Flavour = Flavour.MARIADB) -> list[str]:
    said: list[str] = []
    result = leave_point(
        "/r",
        binlog,
        flavour,
        lambda: (None, "no mariadbd 10.11 in X"),
        said.append,
        guard=Guard.off(),
    )
    assert result is None
    return said


def test_without_a_server_one_line_gives_the_statement_to_run() -> None:
    assert messages(POINT) == [
        "the backup's point 0-1-20 was not set (no mariadbd 10.11 in X): once the server "
        "runs on /r, run SET GLOBAL gtid_slave_pos = '0-1-20';"
    ]


def test_without_a_gtid_one_line_says_why_and_what_to_give_instead() -> None:
    assert messages(None) == [
        "the backup records no binary-log point (binary logging was off on the source)"
    ]
    (line,) = messages(BinlogPoint("mysql-bin.000002", 3709, None))
    assert "no point was set; give a binlog replay start_position=mysql-bin.000002:3709" in line
    (line,) = messages(BinlogPoint("b.1", 4, "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"))
    assert "is not a MariaDB GTID position: not set" in line
    (line,) = messages(POINT, Flavour.MYSQL)
    assert "automatic for MariaDB only" in line


@pytest.mark.skipif(MARIADBD is None, reason="mariadbd not installed")
def test_a_server_that_does_not_start_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    assert MARIADBD is not None
    datadir = tmp_path / "not-a-datadir"
    datadir.mkdir()
    (datadir / "keep").write_text("x")
    with pytest.raises(PointError, match=r"^mariadbd( did not start)?: \S") as caught:
        set_point_in_datadir(
            MARIADBD, str(datadir), Position.parse("0-1-5"), Guard.off(), start_timeout=60
        )
    assert "\n" not in str(caught.value)
    assert os.listdir(datadir) == ["keep"]
    said: list[str] = []
    leave_point(
        str(datadir), POINT, Flavour.MARIADB, lambda: (MARIADBD, ""), said.append, guard=Guard.off()
    )
    assert len(said) == 1 and said[0].startswith("warning: could not set the backup's point 0-1-20")
    assert said[0].endswith(
        "the restored files are good: once the server runs on them, run "
        "SET GLOBAL gtid_slave_pos = '0-1-20';"
    )
