"""The splitter on real mariadb-dump output: lossless, one section per object."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import shop

from plakar_mysql.logical.split import DumpSplitter
from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier


def dump(server: MariaDBServer, tmp_path: Path, *databases: str) -> Path:
    defaults = tmp_path / "client.cnf"
    defaults.write_text(f'[client]\nuser=root\npassword="{server.root_password}"\n')
    out = tmp_path / "dump.sql"
    with out.open("wb") as handle:
        subprocess.run(
            [
                "mariadb-dump",
                f"--defaults-file={defaults}",
                "-h",
                server.host,
                "-P",
                str(server.port),
                "--single-transaction",
                "--routines",
                "--events",
                "--skip-dump-date",
                "--dump-history",
                "--databases",
                *databases,
            ],
            stdout=handle,
            check=True,
        )
    return out


def sections(path: Path) -> list[tuple[tuple[str, str | None, str | None], bytes]]:
    with path.open("rb") as stream:
        return [
            ((s.kind, s.database, s.name), b"".join(chunks))
            for s, chunks in DumpSplitter(stream, block=64 << 10)
        ]


def test_shop_and_awkward_objects(shop_server: MariaDBServer, tmp_path: Path) -> None:
    odd_db, odd_table = 'ödd `db\' "x"', "t;`1' -- x"
    db, table = quote_identifier(odd_db), quote_identifier(odd_table)
    shop_server.execute(f"CREATE DATABASE {db}")
    try:
        shop_server.execute(f"CREATE TABLE {db}.{table} (v TEXT)")
        shop_server.execute(
            f"INSERT INTO {db}.{table} VALUES ('a;\\n-- Table structure for table `no`\\n;')"
        )
        shop_server.execute(
            f"CREATE PROCEDURE {db}.`p;;` () BEGIN\n"
            "  -- Table structure for table `inside`\n"
            "  SELECT ';;\n-- Dump completed\n';\nEND"
        )
        path = dump(shop_server, tmp_path, "shop", odd_db)
        parts = sections(path)
        assert b"".join(data for _, data in parts) == path.read_bytes()
        keys = [key for key, _ in parts]
        tables = {name for kind, d, name in keys if kind == "table" and d == "shop"}
        views = {name for kind, d, name in keys if kind == "final_view" and d == "shop"}
        assert tables == shop.TABLES
        assert views == shop.VIEWS
        assert ("table", odd_db, odd_table) in keys
        assert ("routines", odd_db, None) in keys and ("routines", "shop", None) in keys
        assert keys[-1] == ("trailer", None, None)
        routines = dict(parts)[("routines", odd_db, None)]
        assert b"-- Table structure for table `inside`" in routines
    finally:
        shop_server.execute(f"DROP DATABASE {db}")
