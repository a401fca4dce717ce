"""Self-check of a PyInstaller bundle: ``mysql-importer --bundle-selftest``.

Plakar always starts the connectors without arguments, so this never runs
in production. It imports everything the connectors need at run time and
checks that the bundled package data (the connectors' JSON Schemas) is
readable, then prints one JSON line describing the interpreter. The
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
    versions: dict[str, str] = {}
    for name in RUNTIME_MODULES:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", ""))
    modules = _import_package_tree("kloset_sdk") + _import_package_tree("plakar_mysql")

    schemas: dict[str, str] = {}
    for path in resources.files("plakar_mysql").joinpath("schemas").iterdir():
        schema: Any = json.loads(path.read_text())
        schemas[path.name.removesuffix(".json")] = (
            str(schema.get("$schema", "")) if isinstance(schema, dict) else ""
        )

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
