"""The binary-log tool of the server's flavour: ``mariadb-binlog`` or ``mysqlbinlog``."""

from __future__ import annotations

from plakar_mysql.core.flavour import Flavour, Tool, find_tool


def binlog_tool(flavour: Flavour, bin_dir: str | None) -> Tool:
    names = ("mariadb-binlog", "mysqlbinlog") if flavour is Flavour.MARIADB else ("mysqlbinlog",)
    return find_tool(names, flavour, bin_dir)


def client_tool(flavour: Flavour, bin_dir: str | None) -> Tool:
    return find_tool(flavour.client_names, flavour, bin_dir)
