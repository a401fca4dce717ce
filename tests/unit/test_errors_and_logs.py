"""One root for the integration's errors, and its lines through ``logging``.

Every exception class the integration defines is a user's error (one line,
from :class:`PlakarMySQLError`) unless it is an internal signal listed here;
each keeps the built-in base its callers catch.  Progress and notices reach
stderr as ``plakar-mysql: <text>``, set up once.
"""

from __future__ import annotations

import importlib
import inspect
import io
import logging
import pkgutil
from collections.abc import Iterator

import pymysql
import pytest

import plakar_mysql
from kloset_sdk import ConnectorError
from kloset_sdk.errors import error_line, is_bug, one_line
from plakar_mysql.binlog.restore import ReplayError
from plakar_mysql.binlog.restore import log as binlog_log
from plakar_mysql.core.errors import PlakarMySQLError
from plakar_mysql.core.gtid import GtidError
from plakar_mysql.core.logs import PREFIX, configure
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.server import ServerError

#: Raised and caught inside the package, never told to the user.
INTERNAL = {"plakar_mysql.physical.backup_tool.ToolStopped"}


def _error_classes() -> Iterator[type[BaseException]]:
    for info in pkgutil.walk_packages(plakar_mysql.__path__, "plakar_mysql."):
        if info.name == "plakar_mysql.entry":
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                yield cls


def test_every_error_of_the_package_has_the_one_root() -> None:
    classes = {f"{c.__module__}.{c.__qualname__}": c for c in _error_classes()}
    assert len(classes) >= 20, sorted(classes)
    assert set(classes) >= INTERNAL
    rootless = sorted(
        name
        for name, cls in classes.items()
        if name not in INTERNAL and not issubclass(cls, PlakarMySQLError)
    )
    assert rootless == []
    assert issubclass(PlakarMySQLError, ConnectorError)


def test_the_errors_keep_the_bases_their_callers_catch() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(GtidError, ValueError)
    assert issubclass(ServerError, RuntimeError)
    assert issubclass(ReplayError, RuntimeError)


def test_a_users_error_is_one_line_and_a_bug_is_not_taken_for_one() -> None:
    stderr = io.StringIO()
    assert error_line(ConfigError("option jobs: must be\na number"), stderr) == (
        "option jobs: must be a number"
    )
    assert stderr.getvalue() == ""
    assert not is_bug(ServerError("cannot connect"))
    assert is_bug(KeyError("files"))


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """The package's logger, put back as it was after the test."""
    logger = logging.getLogger("plakar_mysql")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_lines_carry_the_prefix_and_setting_up_twice_adds_nothing(
    package_logger: logging.Logger,
) -> None:
    out = io.StringIO()
    configure(out)
    configure(out)
    logging.getLogger("plakar_mysql.logical.restorer").info("verified 9 table(s)")
    logging.getLogger("plakar_mysql.physical.backup").warning("50% done")
    logging.getLogger("plakar_mysql.core.server").debug("not shown")
    assert out.getvalue() == f"{PREFIX}verified 9 table(s)\n{PREFIX}50% done\n"
    assert PREFIX == "plakar-mysql: "


def test_other_libraries_lines_are_not_prefixed(package_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure(out)
    logging.getLogger("pymysql").warning("from the driver")
    assert "from the driver" not in out.getvalue()


def test_the_replay_escapes_names_in_its_lines(package_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure(out)
    binlog_log("db\nname: applied")
    assert out.getvalue() == f"{PREFIX}db\\nname: applied\n"


def test_a_driver_error_that_escapes_is_the_servers_answer_told_as_before() -> None:
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
    assert isinstance(lost, ConnectorError)  # registered by plakar_mysql.core.errors
    stderr = io.StringIO()
    assert error_line(lost, stderr) == one_line(lost)  # the driver's own line, as before
    assert stderr.getvalue() == ""


def test_a_bug_is_not_taken_for_the_servers_answer() -> None:
    stderr = io.StringIO()
    assert "this is a bug" in error_line(KeyError("files"), stderr)
    assert "KeyError" in stderr.getvalue()
