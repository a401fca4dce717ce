"""Option and URI parsing: every bad input is one line that names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from plakar_mysql.core.locks import DEFAULT_LOCK_WAIT_TIMEOUT
from plakar_mysql.core.option_models import LogicalBackupOptions, LogicalRestoreOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.physical.restore import target_directory

MODELS = {"importer": LogicalBackupOptions, "exporter": LogicalRestoreOptions}


def imp(location: str, **options: str) -> LogicalBackupOptions:
    scheme = location.split("://", maxsplit=1)[0]
    return LogicalBackupOptions.parse({"location": location, **options}, scheme)


def test_uri_parts_and_defaults() -> None:
    config = imp("mysql://backup:s%40cret@db.example.com:3307/shop")
    conn = config.connection
    assert (conn.host, conn.port, conn.user, conn.password) == (
        "db.example.com",
        3307,
        "backup",
        "s@cret",
    )
    assert config.databases == ("shop",)
    assert config.single_transaction is True
    assert "s@cret" not in repr(conn)


def test_options_override_uri_and_are_typed() -> None:
    config = imp(
        "mariadb://u@h/db1",
        host="other",
        port="3310",
        single_transaction="false",
        connect_timeout="3",
    )
    assert config.connection.host == "other"
    assert config.connection.port == 3310
    assert config.connection.connect_timeout == 3
    assert config.single_transaction is False


def test_whole_server_and_several_databases() -> None:
    assert imp("mysql://h").databases == ()
    assert imp("mysql+mariadb://h", databases="a, b,c").databases == ("a", "b", "c")


def test_database_names_are_data() -> None:
    assert imp("mysql://h/we%60ird%20%2F%20db%27").databases == ("we`ird / db'",)
    assert imp("mysql://h", database="$(rm -rf /);--").databases == ("$(rm -rf /);--",)


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("mysql://h", {"bogus": "1"}, "unknown option bogus"),
        ("mysql://h", {"routines": "maybe"}, "option routines: 'maybe' is not a boolean"),
        ("mysql://h", {"port": "0"}, "option port: 0 is out of range (1 to 65535)"),
        ("mysql://h", {"port": "http"}, "option port: 'http' is not a whole number"),
        ("mysql://h:99999", {}, "malformed"),
        ("mysql://h", {"no_data": "true", "no_create_info": "true"}, "no_data and no_create_info"),
        ("mysql://h", {"ssl_mode": "sometimes"}, "option ssl_mode: 'sometimes' is not one of"),
        ("postgres://h", {}, "must start with one of mysql://"),
        ("mysql://h/a/b", {}, "encode a '/'"),
        ("mysql://h/a", {"databases": "b"}, "either database"),
        ("mysql://h", {"databases": "a,,b"}, "empty name"),
        ("mysql://h", {"databases": "a,a"}, "named twice"),
        ("mysql://h?x=1", {}, "-o key=value"),
        ("mysql://h", {"bin_dir": "/usr", "mysql_bin_dir": "/tmp"}, "disagree"),
    ],
)
def test_bad_input_is_one_line(location: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        imp(location, **options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind", ["importer", "exporter"])
@pytest.mark.parametrize(
    ("option", "what", "message"),
    [
        ("defaults_file", "missing", "option defaults_file: {path} does not exist"),
        ("defaults_file", "directory", "option defaults_file: {path} is a directory, not a file"),
        ("defaults_file", "unreadable", "option defaults_file: {path} cannot be read"),
        ("ssl_ca", "missing", "option ssl_ca: {path} does not exist"),
        ("ssl_cert", "directory", "option ssl_cert: {path} is a directory, not a file"),
        ("ssl_key", "unreadable", "option ssl_key: {path} cannot be read"),
        ("bin_dir", "missing", "option bin_dir: {path} does not exist"),
        ("bin_dir", "file", "option bin_dir: {path} is not a directory"),
        ("socket", "missing", "option socket: {path} does not exist"),
        ("socket", "file", "option socket: {path} is not a socket"),
    ],
)
def test_path_options_are_checked_before_connecting(
    tmp_path: Path, kind: str, option: str, what: str, message: str
) -> None:
    path = tmp_path / "x"
    if what == "directory":
        path.mkdir()
    elif what == "file":
        path.write_text("")
    elif what == "unreadable":
        # Below a regular file: stat fails with ENOTDIR (the tests run as root,
        # whom no permission bit stops).
        path.write_text("")
        path = path / "client.cnf"
    with pytest.raises(ConfigError) as error:
        MODELS[kind].parse({"location": "mysql://h", option: str(path)}, "mysql")
    assert str(error.value).startswith(message.format(path=path)), str(error.value)
    assert "\n" not in str(error.value)


def test_readable_path_options_pass(tmp_path: Path) -> None:
    cnf = tmp_path / "client.cnf"
    cnf.write_text("[client]\n")
    config = LogicalBackupOptions.parse(
        {"location": "mysql://h", "defaults_file": str(cnf), "ssl_ca": str(cnf), "bin_dir": "/usr"}
    )
    assert config.connection.defaults_file == str(cnf)
    assert config.connection.bin_dir == "/usr"


def test_exporter_options() -> None:
    config = LogicalRestoreOptions.parse({"location": "mysql://h/copy", "overwrite": "true"})
    assert config.overwrite is True
    assert (config.create_db, config.force, config.users, config.verify) == (
        True,
        False,
        False,
        False,
    )
    assert (config.definer, config.jobs, config.restore_point) == ("keep", None, None)
    with pytest.raises(ConfigError, match="unknown option routines"):
        LogicalRestoreOptions.parse({"location": "mysql://h", "routines": "true"})


def test_lock_wait_timeout() -> None:
    """A whole number of seconds, at least 1; absent, the restore uses its default."""
    config = LogicalRestoreOptions.parse({"location": "mysql://h", "lock_wait_timeout": "5"})
    assert config.lock_wait_timeout == 5
    assert config.given["lock_wait_timeout"] == 5
    default = LogicalRestoreOptions.parse({"location": "mysql://h"})
    assert "lock_wait_timeout" not in default.given
    assert default.lock_wait_timeout == DEFAULT_LOCK_WAIT_TIMEOUT
    with pytest.raises(ConfigError, match="option lock_wait_timeout: 0 is out of range"):
        LogicalRestoreOptions.parse({"location": "mysql://h", "lock_wait_timeout": "0"})
    with pytest.raises(ConfigError, match="option lock_wait_timeout: 'soon' is not a whole number"):
        LogicalRestoreOptions.parse({"location": "mysql://h", "lock_wait_timeout": "soon"})


SECRET = "S3cretPW"


@pytest.mark.parametrize("kind", ["importer", "exporter"])
@pytest.mark.parametrize(
    ("location", "shown", "says"),
    [
        (f"mysql://root:{SECRET}@host:abc/db", "mysql://root:***@host:abc/db", "is malformed"),
        (f"mysql://root:{SECRET}@host:99999/db", "mysql://root:***@host:99999/db", "malformed"),
        (f"mysql+bin://root:{SECRET}@host/db", "mysql+bin://root:***@host/db", "must start with"),
        (f"postgres://root:{SECRET}@host/db", "postgres://root:***@host/db", "must start with"),
        (f"mysql://root:{SECRET}@host/db?x=1", "mysql://root:***@host/db?x=***", "-o key=value"),
        (f"mysql://root@host/db?password={SECRET}", "mysql://root@host/db?password=***", "-o"),
        (f"mysql://root:{SECRET}@host/db#frag", "mysql://root:***@host/db#frag", "-o key=value"),
        (f"mysql://root:{SECRET}@host/a/b", "mysql://root:***@host/a/b", "encode a '/'"),
        # A password with an unencoded '/' or '@': still hidden, whole.
        ("mysql://root:S3c/retPW@host:abc/db", "mysql://root:***@host:abc/db", "malformed"),
        ("mysql://root:S3c@retPW@host:abc/db", "mysql://root:***@host:abc/db", "malformed"),
    ],
)
def test_a_bad_location_never_shows_its_password(
    kind: str, location: str, shown: str, says: str
) -> None:
    """The message still shows the location (user, host, port, path) and the problem."""
    with pytest.raises(ConfigError) as error:
        MODELS[kind].parse({"location": location}, location.split("://", maxsplit=1)[0])
    message = str(error.value)
    assert "S3c" not in message and "retPW" not in message
    assert f"location '{shown}'" in message
    assert says in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("location", "says"),
    [
        (f"mysql+bin://root:{SECRET}@host/dir", "a physical restore writes a local directory"),
        (f"mysql+bin:///dir?password={SECRET}", "a physical restore writes a local directory"),
    ],
)
def test_a_bad_physical_target_never_shows_its_password(location: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        target_directory(location)
    message = str(error.value)
    assert SECRET not in message and says in message and "***" in message
