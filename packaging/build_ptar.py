"""Build the Plakar package (``.ptar``) of the MySQL/MariaDB integration.

Run by ``make build`` with the project's venv interpreter::

    .venv/bin/python packaging/build_ptar.py --plakar bin/plakar \\
        --version v0.1.0 --out dist/mysql-mariadb_v0.1.0_linux_amd64.ptar

Steps:

1. PyInstaller turns ``packaging/launch_importer.py`` and
   ``packaging/launch_exporter.py`` into two ``--onedir`` bundles,
   ``mysql-importer`` and ``mysql-exporter``: an executable plus an
   ``_internal/`` directory holding the Python interpreter and every package
   it needs, so they run on a host where no Python package (nor Python
   itself) is installed.  The two ``_internal/`` directories hold the same
   files, so the package ships one, beside both executables.  (A
   ``--onefile`` executable would unpack itself into /tmp at every start and
   leave that copy behind whenever Plakar kills it on cancellation.)
2. They are staged in ``build/pkg/`` with ``packaging/manifest.yaml`` (its
   ``extra_files`` filled with the bundle's files) and the connectors' JSON
   Schema validators the manifest names (one per kind and role, copied from
   ``src/plakar_mysql/schemas/``, where ``scripts/gen_options.py`` writes
   them from the option models).
3. ``plakar pkg create`` packs the staging directory into the ``.ptar``.
   plakar runs with a throw-away HOME (and XDG directories) under ``build/``
   so the user's own plakar configuration, cache and plugins are never
   touched, and with the update ("security") check disabled so it never
   tries to reach the network.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SCHEMAS = ROOT / "src" / "plakar_mysql" / "schemas"
BUILD = ROOT / "build"
STAGE = BUILD / "pkg"
PYI = BUILD / "pyinstaller"

# executable name -> launcher script
EXECUTABLES = {
    "mysql-importer": PACKAGING / "launch_importer.py",
    "mysql-exporter": PACKAGING / "launch_exporter.py",
}

# Packages bundled whole (code, data files, shared libraries), whether or
# not PyInstaller's import analysis can see every module being used.
COLLECT_ALL = [
    "kloset_sdk",
    "plakar_mysql",
    "grpc",
    "google.protobuf",
    "pymysql",
]

# Development tools that the analysis would otherwise drag in through
# optional imports (grpc -> grpc_tools -> setuptools, test helpers ->
# pytest -> pygments, ...). None of them is used at run time.
EXCLUDE = [
    "grpc_tools",
    "pytest",
    "_pytest",
    "pluggy",
    "iniconfig",
    "pygments",
    "setuptools",
    "pkg_resources",
    "_distutils_hack",
    "distutils",
    "mypy",
    "PyInstaller",
    "jsonschema",  # the tests' only: the connectors validate with their own code
    "tkinter",
    # protobuf imports numpy if it can (containers, its benchmarks); the bench's
    # plots put numpy in the venv, and it would bring 40 MB of OpenBLAS along.
    "numpy",
    "matplotlib",
    "PIL",
]


def pyinstaller(name: str, launcher: Path) -> Path:
    """Build one ``--onedir`` bundle and return its directory."""
    args = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(launcher),
        "--name",
        name,
        "--onedir",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(PYI / "dist"),
        "--workpath",
        str(PYI / "work"),
        "--specpath",
        str(PYI / "spec"),
        "--paths",
        str(ROOT / "src"),
    ]
    for package in COLLECT_ALL:
        args += ["--collect-all", package]
    for module in EXCLUDE:
        args += ["--exclude-module", module]
    print(f"pyinstaller: building {name}", flush=True)
    subprocess.run(args, cwd=ROOT, check=True)
    bundle = PYI / "dist" / name
    if not (bundle / name).is_file():
        raise SystemExit(f"pyinstaller did not produce {bundle / name}")
    return bundle


def bundle_files(bundle: Path) -> list[str]:
    """The files of a bundle's ``_internal/``, relative to the bundle."""
    return sorted(
        str(p.relative_to(bundle)) for p in (bundle / "_internal").rglob("*") if p.is_file()
    )


def stage(bundles: dict[str, Path]) -> Path:
    """Lay out ``build/pkg/`` as ``plakar pkg create`` expects it."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    first, *others = bundles.values()
    shared = bundle_files(first)
    for bundle in others:
        if bundle_files(bundle) != shared:
            raise SystemExit(
                f"{bundle} and {first} bundle different files: cannot share _internal/"
            )
    shutil.copytree(first / "_internal", STAGE / "_internal")
    for name, bundle in bundles.items():
        shutil.copy2(bundle / name, STAGE / name)
        (STAGE / name).chmod(0o755)
    text = (PACKAGING / "manifest.yaml").read_text()
    for name in re.findall(r"^    validator: \./(\S+\.json)$", text, re.M):
        schema = SCHEMAS / name
        if not schema.is_file():
            raise SystemExit(f"missing connector schema {schema}")
        shutil.copyfile(schema, STAGE / name)
    manifest = STAGE / "manifest.yaml"
    placeholder = "    extra_files: []  # filled in by packaging/build_ptar.py\n"
    if text.count(placeholder) != 1:
        raise SystemExit("packaging/manifest.yaml: missing the extra_files placeholder")
    listed = "".join(f"      - {path}\n" for path in shared)
    manifest.write_text(text.replace(placeholder, "    extra_files:\n" + listed))
    return manifest


def plakar_env(home: Path) -> dict[str, str]:
    """Environment running plakar in a private, throw-away home."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
    )
    env.pop("PLAKAR_REPOSITORY", None)
    return env


def pkg_create(plakar: Path, manifest: Path, version: str, out: Path) -> None:
    """Pack the staged files into ``out``, replacing any older build."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # plakar refuses to overwrite, and a stale package of another version or
    # platform left in dist/ would be ambiguous: keep only the new one.
    name = out.name.split("_", 1)[0]
    for old in out.parent.glob(f"{name}_*.ptar"):
        old.unlink()
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plakar-home-", dir=BUILD) as tmp:
        home = Path(tmp)
        env = plakar_env(home)
        tmp_out = home / out.name
        # This only records the choice in the private home and exits; the
        # next run then neither checks for updates nor prints the
        # first-run banner.
        subprocess.run(
            [str(plakar), "-disable-security-check"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Go's flag parsing stops at the first operand: -out must come first.
        subprocess.run(
            [str(plakar), "-quiet", "pkg", "create", "-out", str(tmp_out), str(manifest), version],
            env=env,
            cwd=ROOT,
            check=True,
        )
        shutil.move(tmp_out, out)
    out.chmod(0o644)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--plakar", type=Path, required=True, help="plakar executable")
    parser.add_argument("--version", required=True, help="package version, e.g. v0.1.0")
    parser.add_argument("--out", type=Path, required=True, help="the .ptar file to write")
    args = parser.parse_args(argv)

    version: str = args.version
    if not version.startswith("v"):
        version = "v" + version
    plakar: Path = args.plakar.resolve()
    out: Path = args.out.resolve()

    bundles = {name: pyinstaller(name, launcher) for name, launcher in EXECUTABLES.items()}
    manifest = stage(bundles)
    pkg_create(plakar, manifest, version, out)
    size = out.stat().st_size
    print(f"built {out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
