"""``make demo``: back Sakila up into an encrypted Plakar store and restore it, end to end.

Everything lives under ``demo/`` in the project: a throwaway MariaDB server
loaded with Sakila, a private Plakar home and an encrypted local store.  The
script prints each plakar command as a user would type it, then compares the
source and the restored copy object by object.  The password reaches plakar
through a 0600 option file (``defaults_file``), never on a command line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.compare import describe_database, diff  # noqa: E402
from support.mariadb import MariaDBServer  # noqa: E402
from support.plakar import Plakar, find_ptar  # noqa: E402

DEMO = ROOT / "demo"
SAKILA = ROOT.parent / "shared" / "data"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def plakar_run(plakar: Plakar, *args: str) -> str:
    shown = " ".join(shlex.quote(a) for a in args).replace(str(ROOT) + "/", "")
    print(f"$ plakar {shown}", flush=True)
    proc = plakar.run(*args)
    out = (proc.stdout + proc.stderr).rstrip()
    if out:
        print(out, flush=True)
    return proc.stdout


def main() -> int:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    step("A throwaway MariaDB server, loaded with Sakila")
    with MariaDBServer(DEMO / "mariadb") as server:
        server.load_sql_file(SAKILA / "sakila-schema.sql")
        server.load_sql_file(SAKILA / "sakila-data.sql")
        print(f"MariaDB {server.version} on {server.host}:{server.port}")

        credentials = DEMO / "client.cnf"
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f'[client]\nuser=root\npassword="{server.root_password}"\n')
        print(f"credentials in {credentials.relative_to(ROOT)} (mode 0600)")

        plakar = Plakar(DEMO)
        print(f"encrypted store at {plakar.store.relative_to(ROOT)} (PLAKAR_PASSPHRASE is set)")
        source = f"mysql://{server.host}:{server.port}/sakila"
        copy = f"mysql://{server.host}:{server.port}/sakila_restored"
        creds = f"defaults_file={credentials}"

        step("Install the package and create the store")
        plakar_run(plakar, "pkg", "add", str(find_ptar()))
        plakar_run(plakar, "at", str(plakar.store), "create")

        step("Back up the sakila database")
        plakar_run(plakar, "at", str(plakar.store), "backup", "-o", creds, source)
        snapshot = plakar.snapshots()[0][:8]

        step("The snapshot and its files")
        plakar_run(plakar, "at", str(plakar.store), "ls")
        plakar_run(plakar, "at", str(plakar.store), "ls", f"{snapshot}:/")
        plakar_run(plakar, "at", str(plakar.store), "ls", f"{snapshot}:/databases/sakila")
        plakar_run(plakar, "at", str(plakar.store), "ls", f"{snapshot}:/databases/sakila/tables")

        step("Restore into a fresh database, sakila_restored, tables in parallel, verified")
        plakar_run(
            plakar,
            "at",
            str(plakar.store),
            "restore",
            "-to",
            copy,
            "-o",
            creds,
            "-o",
            "verify=true",
            snapshot,
        )

        step("Verification: every table, view, routine and trigger, source against copy")
        original = describe_database(server, "sakila", rename={"sakila": "sakila_restored"})
        restored = describe_database(server, "sakila_restored")
        for name, table in sorted(original.tables.items()):
            same = restored.tables.get(name) == table
            print(f"  table {name:<16} {table.row_count:>6} rows  {'match' if same else 'DIFFERS'}")
        for kind, objects in (
            ("views", original.views),
            ("routines", original.routines),
            ("triggers", original.triggers),
        ):
            print(f"  {len(objects)} {kind}")
        problems = diff(original, restored)
        plakar.close()
        if problems:
            print("\n".join(["MISMATCH:", *problems]))
            return 1
        print("source and restored copy match, object by object")
    return 0


if __name__ == "__main__":
    sys.exit(main())
