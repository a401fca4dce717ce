"""Self-check of a PyInstaller bundle: ``mysql-importer --bundle-selftest``.

Plakar always starts the connectors without arguments, so this never runs
in production. It imports everything the connectors need at run time and
checks that the bundled package data (the connectors' JSON Schemas, and the
JSON Schema meta-schemas jsonschema reads through jsonschema_specifications)
is readable, then prints one JSON line describing the interpreter. The
packaging tests run it with an empty environment to prove that the
executable carries its own Python and every package it needs.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from importlib import resources
from typing import Any

SELFTEST_FLAG = "--bundle-selftest"

RUNTIME_MODULES = [
    "grpc",
    "google.protobuf",
    "pymysql",
    "jsonschema",
    "jsonschema_specifications",
    "kloset_sdk",
    "plakar_mysql",
    "plakar_mysql.entry",
]


def _import_package_tree(name: str) -> list[str]:
    """Import a package and every module below it; return their names."""
    package = importlib.import_module(name)
    names = [name]
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=name + "."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def run() -> int:
    # Imported here, not at the top: the launchers import this module on
    # every start, and a connector should not pay for what it doesn't use.
    import jsonschema  # noqa: PLC0415

    versions: dict[str, str] = {}
    for name in RUNTIME_MODULES:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", ""))
    modules = _import_package_tree("kloset_sdk") + _import_package_tree("plakar_mysql")

    schemas: dict[str, str] = {}
    for kind in ("importer", "exporter", "binlog_importer", "binlog_exporter"):
        text = resources.files("plakar_mysql").joinpath("schemas", f"{kind}.json").read_text()
        schema: Any = json.loads(text)
        jsonschema.validators.validator_for(schema).check_schema(schema)
        schemas[kind] = str(schema.get("$schema", "")) if isinstance(schema, dict) else ""

    report = {
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "python": sys.version.split()[0],
        "versions": versions,
        "modules": modules,
        "schemas": schemas,
    }
    print(json.dumps(report, sort_keys=True))
    return 0


def maybe_run() -> None:
    """Run the self-check and exit if asked to on the command line."""
    if sys.argv[1:] == [SELFTEST_FLAG]:
        sys.exit(run())
