"""Parse and validate what the user configured: the location URI and the ``key=value`` options.

Plakar hands a connector a flat map of strings.  Every option is declared once,
in the JSON schemas shipped in the package manifest (``schemas/*.json``); this
module converts the strings to the types those schemas declare, validates the
result against the same schema, and checks what a schema cannot say.  Every
problem becomes a :class:`ConfigError` with one line that names the option.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema

from plakar_mysql.core.errors import PlakarMySQLError

SCHEMES = ("mysql", "mariadb", "mysql+mariadb")
DEFAULT_PORT = 3306
DEFAULT_CONNECT_TIMEOUT = 10
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(PlakarMySQLError, ValueError):
    """A bad URI or option; the message is one line meant for the user."""


def redact(location: str) -> str:
    """``location`` as a message may show it: the password and the values of a
    query string or fragment replaced by ``***``; scheme, user, host, port and
    path kept, so that the message still says which part is wrong.

    Works on text that :func:`urllib.parse.urlsplit` rejects too (a bad port),
    and on a password with an unencoded ``@``, ``/`` or ``?``: whatever comes
    before the last ``@`` is the user part.
    """
    scheme, sep, rest = location.partition("://")
    if not sep:
        scheme, rest = "", location
    user, at, host = rest.rpartition("@")
    if at and ":" in user:
        rest = f"{user.partition(':')[0]}:***@{host}"
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    query = re.sub(r"=[^&#]*", "=***", rest[cut:])
    return f"{scheme}{sep}{rest[:cut]}{query}"


def load_schema(kind: str) -> dict[str, Any]:
    text = resources.files("plakar_mysql").joinpath("schemas", f"{kind}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True)
class Connection:
    """Where the server is and who we are on it; ``password`` never leaves this process
    except through an option file (see :mod:`plakar_mysql.core.credentials`)."""

    scheme: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    socket: str | None = None
    defaults_file: str | None = None
    ssl_mode: str | None = None
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    bin_dir: str | None = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT

    @property
    def address(self) -> str:
        """Host and port (or socket) for messages and the snapshot's origin; never secrets."""
        if self.socket:
            return f"{self.host}:{self.socket}" if self.host else self.socket
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Config:
    """Validated options, typed as the schema declares them, plus the connection."""

    connection: Connection
    databases: tuple[str, ...]
    values: Mapping[str, Any]

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        assert isinstance(value, bool)
        return value

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)


def _convert(name: str, raw: str, spec: Mapping[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "boolean":
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ConfigError(f"option {name}: {raw!r} is not a boolean (use true or false)")
    if kind == "integer":
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise ConfigError(f"option {name}: {raw!r} is not a whole number") from None
    return raw


def _schema_error(
    error: jsonschema.ValidationError, schema: Mapping[str, Any], schemes: tuple[str, ...]
) -> ConfigError:
    if error.validator == "additionalProperties":
        known = sorted(schema["properties"])
        instance: Mapping[str, Any] = error.instance  # type: ignore[assignment]
        extra = sorted(set(instance) - set(known))
        return ConfigError(f"unknown option {', '.join(extra)} (known: {', '.join(known)})")
    if error.validator == "not" and not error.path:
        return ConfigError("options no_data and no_create_info exclude each other")
    name = ".".join(str(p) for p in error.path) or "location"
    if error.validator == "enum":
        choices: list[Any] = error.validator_value  # type: ignore[assignment]
        allowed = ", ".join(str(v) for v in choices)
        return ConfigError(f"option {name}: {error.instance!r} is not one of {allowed}")
    if error.validator in ("minimum", "maximum"):
        spec = schema["properties"].get(name, {})
        low, high = spec.get("minimum"), spec.get("maximum")
        return ConfigError(f"option {name}: {error.instance} is out of range ({low} to {high})")
    if error.validator == "pattern" and name == "location":
        starts = ", ".join(f"{s}://" for s in schemes)
        shown = redact(str(error.instance))
        return ConfigError(f"location {shown!r} must start with one of {starts}")
    if list(error.path) == ["location"]:  # the schema's message would quote it whole
        return ConfigError(f"location {redact(str(error.instance))!r}: {error.validator} failed")
    return ConfigError(f"option {name}: {error.message}")


def _split_list(raw: str, what: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(","))
    if not all(items):
        raise ConfigError(f"option {what}: empty name in {raw!r}")
    return items


def _parse_location(location: str, schemes: tuple[str, ...]) -> dict[str, Any]:
    """The URI's parts as options, so that explicit options can override them."""
    shown = redact(location)  # never the password in a message
    try:
        url = urlsplit(location)
        port = url.port
    except ValueError as exc:
        # urlsplit quotes what it could not read, which may be part of the password.
        reason = re.sub(r"'.*'", "'***'", str(exc))
        raise ConfigError(f"location {shown!r} is malformed: {reason}") from None
    if url.scheme not in schemes:
        raise ConfigError(f"location {shown!r}: scheme must be one of {', '.join(schemes)}")
    if url.query or url.fragment:
        raise ConfigError(f"location {shown!r}: pass options with -o key=value, not in the URI")
    parts: dict[str, Any] = {}
    if url.hostname:
        parts["host"] = unquote(url.hostname)
    if port is not None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"location {shown!r}: port {port} is out of range (1 to 65535)")
        parts["port"] = port
    if url.username:
        parts["username"] = unquote(url.username)
    if url.password is not None:
        parts["password"] = unquote(url.password)
    path = url.path.lstrip("/")
    if path:
        if "/" in path:
            raise ConfigError(
                f"location {shown!r}: the path names one database; encode a '/' in its name as %2F"
            )
        parts["database"] = unquote(path)
    return parts


#: Path options and what each must name: a readable file, a directory or a socket.
_PATH_OPTIONS = {
    "defaults_file": "file",
    "ssl_ca": "file",
    "ssl_cert": "file",
    "ssl_key": "file",
    "bin_dir": "directory",
    "mysql_bin_dir": "directory",
    "mariadb_bin_dir": "directory",
    "socket": "socket",
}


def _check_path(name: str, path: str, kind: str) -> None:
    """Fail before connecting when a path option names nothing usable.

    Otherwise the driver ignores an option file it cannot read and the server
    answers "access denied", or a TLS library reports an unrelated handshake
    error: causes the user cannot see from the message.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(f"option {name}: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"option {name}: {path} cannot be read: {exc.strerror}") from None
    if kind == "directory":
        if not stat.S_ISDIR(mode):
            raise ConfigError(f"option {name}: {path} is not a directory")
    elif kind == "socket":
        if not stat.S_ISSOCK(mode):
            raise ConfigError(f"option {name}: {path} is not a socket")
    elif stat.S_ISDIR(mode):
        raise ConfigError(f"option {name}: {path} is a directory, not a file")
    elif not os.access(path, os.R_OK):
        raise ConfigError(f"option {name}: {path} is not readable")


def check_option_file_mode(name: str, path: str) -> None:
    """Refuse an option file the client tools would skip.

    MySQL's and MariaDB's tools ignore a world-writable option file (with a
    warning nobody sees in a backup), so the credentials in it never reach the
    dump or backup tool and the server answers "access denied", though the
    driver, which reads it anyway, connected fine.
    """
    if os.stat(path).st_mode & stat.S_IWOTH:
        raise ConfigError(
            f"option {name}: {path} is writable by every user, so the MySQL/MariaDB tools "
            f"ignore it: chmod 600 {path}"
        )


def parse(
    kind: str, scheme: str, config: Mapping[str, str], schemes: tuple[str, ...] = SCHEMES
) -> Config:
    """Validate Plakar's configuration map for the ``importer`` or the ``exporter``
    (``kind`` names the schema, ``schemes`` the URI schemes it takes)."""
    schema = load_schema(kind)
    properties: Mapping[str, Any] = schema["properties"]
    if "location" not in config:
        raise ConfigError("missing location (mysql://[user[:password]@]host[:port][/database])")
    typed: dict[str, Any] = {}
    for name, raw in config.items():
        spec = properties.get(name)
        typed[name] = raw if spec is None else _convert(name, raw, spec)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(typed))
    if error is not None:
        raise _schema_error(error, schema, schemes)

    values = {**_parse_location(typed["location"], schemes), **typed}
    for name, kind_of_path in _PATH_OPTIONS.items():
        if name in values:
            _check_path(name, values[name], kind_of_path)
    if "defaults_file" in values:
        check_option_file_mode("defaults_file", values["defaults_file"])
    if "database" in values and "databases" in values:
        raise ConfigError("give either database (or a URI path) or databases, not both")
    databases: tuple[str, ...] = ()
    if "databases" in values:
        databases = _split_list(values["databases"], "databases")
    elif "database" in values:
        databases = (values["database"],)
    if len(set(databases)) != len(databases):
        raise ConfigError(f"option databases: a database is named twice in {values['databases']!r}")
    for ssl_file in ("ssl_cert", "ssl_key"):
        if ssl_file in values and values.get("ssl_mode") == "disabled":
            raise ConfigError(f"option {ssl_file} makes no sense with ssl_mode=disabled")
    bin_dirs = {values[k] for k in ("bin_dir", "mysql_bin_dir", "mariadb_bin_dir") if k in values}
    if len(bin_dirs) > 1:
        raise ConfigError("bin_dir, mysql_bin_dir and mariadb_bin_dir disagree; give one")

    host = values.get("host") or ("localhost" if values.get("socket") else "127.0.0.1")
    connection = Connection(
        scheme=scheme or urlsplit(values["location"]).scheme,
        host=host,
        port=values.get("port", DEFAULT_PORT),
        user=values.get("username"),
        password=values.get("password"),
        socket=values.get("socket"),
        defaults_file=values.get("defaults_file"),
        ssl_mode=values.get("ssl_mode"),
        ssl_ca=values.get("ssl_ca"),
        ssl_cert=values.get("ssl_cert"),
        ssl_key=values.get("ssl_key"),
        bin_dir=next(iter(bin_dirs), None),
        connect_timeout=values.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
    )
    return Config(connection=connection, databases=databases, values=values)
