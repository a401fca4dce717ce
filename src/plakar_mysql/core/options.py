"""Parse and validate what the user configured: the location URI and the ``key=value`` options.

Plakar hands a connector a flat map of strings.  Each kind and role has one
option model (:mod:`plakar_mysql.core.option_models`): a frozen dataclass whose
fields are the options, each declared once by :func:`option` with its type
(the field's annotation), default, bounds and description.  This module turns
the map into that model with its own code - strings converted to the declared
types, bounds and choices checked, the URI read, paths checked - and every
problem becomes a :class:`ConfigError` of one line that names the option.  The
JSON schemas shipped in the package and the man page are generated from the
same models (``scripts/gen_options.py``, :func:`json_schema`): nothing here
reads them.
"""

from __future__ import annotations

import os
import re
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Self
from urllib.parse import unquote, urlsplit

from plakar_mysql.core.errors import PlakarMySQLError

SCHEMES = ("mysql", "mariadb", "mysql+mariadb")
DEFAULT_PORT = 3306
DEFAULT_CONNECT_TIMEOUT = 10
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_SPEC = "plakar_mysql.option"  # the metadata key of an option's Spec

SslMode = Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"]
PathKind = Literal["file", "directory", "socket"]


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


# --- declaring options ------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What an option's annotation cannot say: its description and bounds."""

    description: str
    minimum: int | None = None
    maximum: int | None = None
    nonempty: bool = True  # a string option must not be empty
    path: PathKind | None = None  # checked on disk before connecting


def option(
    default: Any = MISSING,
    description: str = "",
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    nonempty: bool = True,
    path: PathKind | None = None,
    secret: bool = False,
) -> Any:
    """A model field that is an option; without a default, the option is required.

    ``description`` may say ``{tools}``: the model's :attr:`OptionModel.TOOLS`.
    """
    spec = Spec(description, minimum, maximum, nonempty, path)
    return field(default=default, repr=not secret, metadata={_SPEC: spec})


@dataclass(frozen=True)
class OptionField:
    """One option of a model, as the parser and the schema generator see it."""

    name: str
    kind: Literal["boolean", "integer", "string", "list"]
    choices: tuple[str, ...] | None
    default: Any  # dataclasses.MISSING when required
    spec: Spec

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def convert(self, raw: str) -> Any:
        """The typed value of ``raw`` (a list stays the text the user gave)."""
        if self.kind == "boolean":
            word = raw.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ConfigError(f"option {self.name}: {raw!r} is not a boolean (use true or false)")
        if self.kind == "integer":
            try:
                return int(raw.strip(), 10)
            except ValueError:
                raise ConfigError(f"option {self.name}: {raw!r} is not a whole number") from None
        return raw

    def check(self, value: Any, schemes: tuple[str, ...]) -> None:
        """Raise if ``value`` (converted) is outside what the option declares."""
        if self.name == "location":
            if not any(value.startswith(f"{s}://") for s in schemes):
                starts = ", ".join(f"{s}://" for s in schemes)
                raise ConfigError(f"location {redact(value)!r} must start with one of {starts}")
            return
        if self.kind in ("string", "list") and self.spec.nonempty and value == "":
            raise ConfigError(f"option {self.name}: '' should be non-empty")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(self.choices)
            raise ConfigError(f"option {self.name}: {value!r} is not one of {allowed}")
        low, high = self.spec.minimum, self.spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"option {self.name}: {value} is out of range ({low} to {high})")


def _kind_of(annotation: Any) -> tuple[Literal["boolean", "integer", "string", "list"], Any]:
    """The option kind of a field's annotation, and its Literal choices if any."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = args  # ``X | None``: an option with no value by default
        args = list(typing.get_args(annotation))
    if typing.get_origin(annotation) is Literal:
        return "string", tuple(args)
    if typing.get_origin(annotation) is tuple:
        return "list", None
    kinds: dict[Any, Literal["boolean", "integer", "string"]] = {
        bool: "boolean",
        int: "integer",
        str: "string",
    }
    return kinds[annotation], None


def option_fields(model: type[OptionModel]) -> dict[str, OptionField]:
    """The options of ``model``, by name, in declaration order."""
    hints = typing.get_type_hints(model)
    found: dict[str, OptionField] = {}
    for item in fields(model):
        spec = item.metadata.get(_SPEC)
        if isinstance(spec, Spec):
            kind, choices = _kind_of(hints[item.name])
            found[item.name] = OptionField(item.name, kind, choices, item.default, spec)
    return found


# --- the models' common parts -------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OptionModel:
    """The validated options of one kind and role: each option a typed attribute.

    Subclasses declare their options with :func:`option` and say, as class
    variables, the URI schemes they take and the words their schema and man
    page use.
    """

    SCHEMES: ClassVar[tuple[str, ...]]
    SCHEMA: ClassVar[str]  # file name (without .json) of its generated schema
    NAME: ClassVar[str]  # "logical backup": the schema's title and the man page's section
    TOOLS: ClassVar[str] = ""  # the tools bin_dir holds, for descriptions
    MISSING_LOCATION: ClassVar[str] = ""
    #: Boolean options that cannot both be true.
    EXCLUSIVE: ClassVar[tuple[tuple[str, str], ...]] = ()

    #: What the user gave, typed, with the URI's parts: the snapshot's manifest records it.
    given: Mapping[str, Any] = field(repr=False)
    location: str = option(description="{location}", secret=True)

    @classmethod
    def parse(cls, config: Mapping[str, str], scheme: str = "") -> Self:
        """Validate Plakar's configuration map (``scheme`` is Plakar's, maybe empty)."""
        if "location" not in config:
            raise ConfigError(cls.MISSING_LOCATION)
        known = option_fields(cls)
        typed = {
            name: raw if name not in known else known[name].convert(raw)
            for name, raw in config.items()
        }
        unknown = sorted(set(typed) - set(known))
        if unknown:
            raise cls.unknown(unknown)
        for first, second in cls.EXCLUSIVE:
            if typed.get(first) is True and typed.get(second) is True:
                raise ConfigError(f"options {first} and {second} exclude each other")
        for name in sorted(typed, reverse=True):  # as a JSON schema validator reports them
            known[name].check(typed[name], cls.SCHEMES)
        return cls._build(typed, scheme)

    @classmethod
    def unknown(cls, names: list[str]) -> ConfigError:
        """The error for options the model does not have."""
        listed = ", ".join(sorted(option_fields(cls)))
        return ConfigError(f"unknown option {', '.join(names)} (known: {listed})")

    @classmethod
    def _build(cls, typed: dict[str, Any], scheme: str) -> Self:
        return cls(given=typed, **typed)

    @classmethod
    def describe(cls, name: str, spec: Spec) -> str:
        """An option's description as this model's schema and man page give it."""
        return spec.description.format(tools=cls.TOOLS, location=cls.location_help())

    @classmethod
    def location_help(cls) -> str:
        return ""

    @classmethod
    def locations(cls) -> str:
        """Its schemes, as a location starts: ``mysql+bin://``."""
        return ", ".join(f"{s}://" for s in cls.SCHEMES)


def one_bin_dir(values: Mapping[str, Any]) -> str | None:
    """The tool directory, by whichever of its three names it was given."""
    dirs = {values[k] for k in ("bin_dir", "mysql_bin_dir", "mariadb_bin_dir") if k in values}
    if len(dirs) > 1:
        raise ConfigError("bin_dir, mysql_bin_dir and mariadb_bin_dir disagree; give one")
    return next(iter(dirs), None)


@dataclass(frozen=True, kw_only=True)
class ToolOptions(OptionModel):
    """A model whose kind runs the server's tools: where to find them."""

    bin_dir: str | None = option(
        None, "Directory holding the client tools ({tools}); default: PATH.", path="directory"
    )
    mysql_bin_dir: str | None = option(
        None,
        "Alias of bin_dir, as in the official integration (used for MySQL servers).",
        path="directory",
    )
    mariadb_bin_dir: str | None = option(
        None,
        "Alias of bin_dir, as in the official integration (used for MariaDB servers).",
        path="directory",
    )


@dataclass(frozen=True, kw_only=True)
class ServerOptions(ToolOptions):
    """The connection block every kind that talks to a server shares.

    After parsing, ``host``, ``port``, ``username`` and ``password`` are what
    the connection uses (the options, else the URI's parts), ``bin_dir`` the
    tool directory by any of its names, ``databases`` those named by the URI
    path or the database options.
    """

    MISSING_LOCATION: ClassVar[str] = (
        "missing location (mysql://[user[:password]@]host[:port][/database])"
    )

    host: str | None = option(None, "Server host name or address (overrides the URI).")
    port: int = option(DEFAULT_PORT, "TCP port (overrides the URI).", minimum=1, maximum=65535)
    username: str | None = option(None, "User name (overrides the URI).")
    password: str | None = option(
        None,
        "Password (overrides the URI). Handed to the client tools through a private option "
        "file, never on a command line or in the environment.",
        nonempty=False,
        secret=True,
    )
    defaults_file: str | None = option(
        None,
        "A my.cnf-style option file holding the credentials ([client] group), so that no "
        "password sits in Plakar's configuration.",
        path="file",
    )
    ssl_mode: SslMode | None = option(None, "TLS mode.")
    ssl_ca: str | None = option(
        None, "CA certificate (PEM) used to verify the server.", path="file"
    )
    ssl_cert: str | None = option(None, "Client certificate (PEM).", path="file")
    ssl_key: str | None = option(None, "Client private key (PEM).", path="file")
    socket: str | None = option(
        None, "Unix socket path; used instead of TCP when set.", path="socket"
    )
    connect_timeout: int = option(
        DEFAULT_CONNECT_TIMEOUT,
        "Seconds to wait for the server to answer a connection.",
        minimum=1,
        maximum=3600,
    )

    connection: Connection
    #: The databases the URI path or the database options name (none: all).
    databases: tuple[str, ...] = ()

    @classmethod
    def _build(cls, typed: dict[str, Any], scheme: str) -> Self:
        values = {**_parse_location(typed["location"], cls.SCHEMES), **typed}
        known = option_fields(cls)
        for name, item in known.items():
            if item.spec.path is not None and name in values:
                _check_path(name, values[name], item.spec.path)
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
            raise ConfigError(
                f"option databases: a database is named twice in {values['databases']!r}"
            )
        for ssl_file in ("ssl_cert", "ssl_key"):
            if ssl_file in values and values.get("ssl_mode") == "disabled":
                raise ConfigError(f"option {ssl_file} makes no sense with ssl_mode=disabled")
        bin_dir = one_bin_dir(values)

        host = values.get("host") or ("localhost" if values.get("socket") else "127.0.0.1")
        effective = {name: values[name] for name in known if name in values}
        effective.update(host=host, bin_dir=bin_dir, databases=databases)
        if "database" in known:
            effective["database"] = databases[0] if len(databases) == 1 else None
        model = cls(
            given=values, connection=_connection(scheme, values, host, bin_dir), **effective
        )
        return model


def _connection(
    scheme: str, values: Mapping[str, Any], host: str, bin_dir: str | None
) -> Connection:
    return Connection(
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
        bin_dir=bin_dir,
        connect_timeout=values.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
    )


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


def _check_path(name: str, path: str, kind: PathKind) -> None:
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


# --- the generated schema -----------------------------------------------------------


def json_schema(model: type[OptionModel]) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of ``model``'s options, as shipped in the package."""
    properties: dict[str, Any] = {}
    for name, item in option_fields(model).items():
        spec: dict[str, Any] = {"type": "string" if item.kind == "list" else item.kind}
        if name == "location":
            alternatives = "|".join(re.escape(s) for s in model.SCHEMES)
            many = len(model.SCHEMES) > 1
            spec["pattern"] = f"^({alternatives})://" if many else f"^{alternatives}://"
        elif item.kind in ("string", "list") and item.choices is None and item.spec.nonempty:
            spec["minLength"] = 1
        if item.choices is not None:
            spec["enum"] = list(item.choices)
        if item.spec.minimum is not None:
            spec["minimum"] = item.spec.minimum
        if item.spec.maximum is not None:
            spec["maximum"] = item.spec.maximum
        if item.default not in (MISSING, None, ()):
            spec["default"] = item.default
        spec["description"] = model.describe(name, item.spec)
        properties[name] = spec
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Plakar MySQL/MariaDB {model.NAME} options ({model.locations()})",
        "type": "object",
        "additionalProperties": False,
        "required": [n for n, item in option_fields(model).items() if item.required],
        "properties": properties,
    }
    clauses = [
        {
            "required": [first, second],
            "properties": {first: {"const": True}, second: {"const": True}},
        }
        for first, second in model.EXCLUSIVE
    ]
    if clauses:
        schema["not"] = clauses[0] if len(clauses) == 1 else {"anyOf": clauses}
    return schema
