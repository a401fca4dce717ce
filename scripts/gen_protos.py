"""Generate the Python gRPC modules of Plakar's plugin protocol.

The ``.proto`` files are taken from the Go module
``github.com/PlakarKorp/integration-grpc`` at the version pinned in
``tools/plakar/go.sum`` (the one the pinned Plakar was built with), so the
Python side always speaks exactly the protocol of the Plakar we ship with.
Nothing generated is committed: ``make`` runs this before anything imports
``kloset_sdk``.

The protos import each other as top-level files (``import
"connectors.proto"``), which protoc turns into absolute Python imports; they
are rewritten into relative ones so the modules live inside ``kloset_sdk._pb``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
GO_TOOLS = ROOT / "tools" / "plakar"
OUT = ROOT / "src" / "kloset_sdk" / "_pb"
PROTOS = ["connectors.proto", "importer/importer.proto", "exporter/exporter.proto"]
MODULE = "github.com/PlakarKorp/integration-grpc"


def module_dir() -> Path:
    """Download the pinned protocol module and return where Go keeps it."""
    subprocess.run(["go", "mod", "download", MODULE], cwd=GO_TOOLS, check=True)
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", MODULE],
        cwd=GO_TOOLS,
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def main() -> int:
    src = module_dir()
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp)
        # Flatten: every proto imports the others by bare file name.
        for proto in PROTOS:
            shutil.copyfile(src / proto, flat / Path(proto).name)
        gen = flat / "gen"
        gen.mkdir()
        args = [
            "protoc",
            f"-I{flat}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={gen}",
            f"--pyi_out={gen}",
            f"--grpc_python_out={gen}",
            *(str(flat / Path(p).name) for p in PROTOS),
        ]
        if protoc.main(args) != 0:
            print("protoc failed", file=sys.stderr)
            return 1
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        for path in sorted(gen.iterdir()):
            text = path.read_text()
            text = re.sub(r"^import (\w+_pb2)", r"from . import \1", text, flags=re.M)
            (OUT / path.name).write_text(text)
        (OUT / "__init__.py").write_text(
            f'"""Generated from {MODULE} by scripts/gen_protos.py; do not edit."""\n'
        )
        (OUT / "py.typed").write_text("")
    print(f"generated {len(list(OUT.iterdir()))} files into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
