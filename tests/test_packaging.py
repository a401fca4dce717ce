"""The Plakar package that ``make build`` produces.

Run after ``make build`` (``make test`` does it): these tests look at
``dist/*.ptar``, ``build/pkg/`` and ``bin/plakar``, they do not build.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from plakar_mysql_harness.plakar import DIST, ROOT, Plakar, find_ptar

MANIFEST = ROOT / "packaging" / "manifest.yaml"
STAGE = ROOT / "build" / "pkg"
EXECUTABLES = ["mysql-importer", "mysql-exporter"]
PROTOCOLS = ["mysql", "mariadb", "mysql+mariadb", "mysql+bin", "mysql+binlog"]
# One validator (a JSON schema) per kind and role.
SCHEMAS = [
    f"{kind}_{role}" for kind in ("logical", "physical", "binlog") for role in ("backup", "restore")
] + ["drill_restore"]  # the restore drill: an exporter only (docs/drill.md)
# Nothing listens there: whatever a connector does with it, it can't succeed.
NOWHERE = "127.0.0.1:1"

# Signs that the bundle is incomplete, or that a host Python was used.
BROKEN_BUNDLE = ("ModuleNotFoundError", "No module named", "ImportError")


def manifest_name() -> str:
    m = re.search(r"^name:\s*(\S+)\s*$", MANIFEST.read_text(), re.M)
    assert m, f"no name in {MANIFEST}"
    return m[1]


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert isinstance(version, str)
    return version


def go_os_arch() -> tuple[str, str]:
    out = subprocess.run(
        ["go", "env", "GOOS", "GOARCH"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert len(out) == 2, out
    return out[0], out[1]


def expected_ptar_name() -> str:
    goos, goarch = go_os_arch()
    return f"{manifest_name()}_v{project_version()}_{goos}_{goarch}.ptar"


def test_one_ptar_named_after_manifest_version_and_platform() -> None:
    ptars = sorted(p.name for p in DIST.glob("*.ptar"))
    assert ptars == [expected_ptar_name()]
    assert find_ptar().stat().st_size > 1_000_000


def staged_extra_files() -> list[str]:
    """The bundle files the staged manifest lists, after the one placeholder it fills."""
    text = (STAGE / "manifest.yaml").read_text()
    return re.findall(r"^      - (_internal/\S+)$", text, re.M)


def test_staging_directory_matches_manifest() -> None:
    listed = staged_extra_files()
    assert "_internal/base_library.zip" in listed
    bundle = sorted(
        str(p.relative_to(STAGE)) for p in (STAGE / "_internal").rglob("*") if p.is_file()
    )
    assert listed == bundle
    expected = MANIFEST.read_text().replace(
        "    extra_files: []  # filled in by packaging/build_ptar.py\n",
        "    extra_files:\n" + "".join(f"      - {path}\n" for path in listed),
    )
    assert (STAGE / "manifest.yaml").read_text() == expected
    for exe in EXECUTABLES:
        assert (STAGE / exe).is_file()
        assert (STAGE / exe).stat().st_mode & 0o111, f"{exe} is not executable"
    validators = re.findall(r"^    validator: \./(\S+)$", MANIFEST.read_text(), re.M)
    assert sorted(validators) == sorted(f"{name}.json" for name in SCHEMAS)
    for name in validators:
        staged = json.loads((STAGE / name).read_text())
        source = json.loads((ROOT / "src/plakar_mysql/schemas" / name).read_text())
        assert staged == source


def test_pkg_add_installs_importer_and_exporter(tmp_path: Path) -> None:
    ptar = find_ptar()
    plakar = Plakar(tmp_path)
    assert plakar.pkg_list() == []
    plakar.pkg_add(ptar)
    assert plakar.pkg_list() == [f"{manifest_name()}@v{project_version()}"]

    installed = plakar.plugin_dir(ptar.name)
    assert sorted(p.name for p in installed.iterdir()) == sorted(
        ["manifest.yaml", *(f"{name}.json" for name in SCHEMAS), "_internal", *EXECUTABLES]
    )
    assert (installed / "manifest.yaml").read_text() == (STAGE / "manifest.yaml").read_text()
    for path in staged_extra_files():
        assert (installed / path).read_bytes() == (STAGE / path).read_bytes(), path
    for exe in EXECUTABLES:
        assert (installed / exe).stat().st_mode & 0o111, f"{exe} lost its exec bit"
        assert (installed / exe).read_bytes() == (STAGE / exe).read_bytes()


def test_installed_connectors_handle_their_protocols(tmp_path: Path) -> None:
    """plakar hands mysql://, mariadb://, mysql+mariadb:// and mysql+binlog://
    locations to the package's importer and exporter (and knows none of them
    without it)."""
    bare = Plakar(tmp_path / "bare")
    bare.create_store()
    out = bare.at("backup", f"mysql://{NOWHERE}", check=False, timeout=120)
    assert out.returncode != 0
    assert "unsupported importer protocol" in out.stdout + out.stderr

    plakar = Plakar(tmp_path / "installed")
    plakar.pkg_add(find_ptar())
    plakar.create_store()
    for proto in PROTOCOLS:
        out = plakar.at("backup", f"{proto}://{NOWHERE}", check=False, timeout=120)
        assert "unsupported importer protocol" not in out.stdout + out.stderr, out

    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    snapshot = plakar.backup(str(data))
    for proto in PROTOCOLS:
        out = plakar.restore(snapshot, f"{proto}://{NOWHERE}", check=False, timeout=120)
        assert "unsupported exporter protocol" not in out.stdout + out.stderr, out
    out = plakar.restore(snapshot, "mysql+drill://", check=False, timeout=120)
    assert out.returncode != 0  # the drill is installed, and this is no MySQL snapshot
    assert "this is not a MySQL snapshot" in out.stdout + out.stderr, out


@pytest.mark.parametrize("exe", EXECUTABLES)
def test_executable_carries_its_own_python(exe: str, tmp_path: Path) -> None:
    """Runs with an empty environment and a PYTHONPATH leading nowhere: no
    Python from the host is involved."""
    env = {"PYTHONPATH": str(tmp_path / "nowhere")}
    proc = subprocess.run(
        [str(STAGE / exe), "--bundle-selftest"],
        env=env,
        check=False,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frozen"] is True
    assert report["executable"] == str(STAGE / exe)
    assert report["python"].startswith("3.11.")
    for module in ("kloset_sdk._pb.importer_pb2_grpc", "kloset_sdk._pb.exporter_pb2_grpc"):
        assert module in report["modules"]
    assert set(report["schemas"]) == set(SCHEMAS)


@pytest.mark.parametrize("exe", EXECUTABLES)
def test_executable_exits_when_stdin_is_closed(exe: str, tmp_path: Path) -> None:
    """As plakar starts it (no arguments): with stdin at EOF the session is over, and
    the connector exits 0 at once (stdout carries binary HTTP/2 frames)."""
    proc = subprocess.run(
        [str(STAGE / exe)],
        env={"PYTHONPATH": str(tmp_path / "nowhere")},
        check=False,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, (proc.returncode, stderr)
    for sign in BROKEN_BUNDLE:
        assert sign not in stderr, stderr
