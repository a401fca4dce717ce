"""Backup filters: glob patterns on exact database.table names."""

from __future__ import annotations

import pytest

from plakar_mysql.core.option_models import LogicalBackupOptions
from plakar_mysql.core.options import ConfigError
from plakar_mysql.core.server import DatabaseInfo, TableInfo
from plakar_mysql.logical.filters import Selection, select


def db(name: str, *tables: str) -> DatabaseInfo:
    return DatabaseInfo(
        name,
        "utf8mb4",
        "utf8mb4_bin",
        tuple(TableInfo(t, "BASE TABLE", "InnoDB", 0, 0) for t in tables),
    )


CATALOGUE = [
    db("shop", "orders", "Orders", "order.items", "users"),
    db("log", "events"),
    db("Shop", "x"),
]


def selection(location: str = "mysql://h", **options: str) -> Selection:
    return select(LogicalBackupOptions.parse({"location": location, **options}), CATALOGUE)


def test_no_filter_keeps_everything() -> None:
    chosen = selection()
    assert [d.name for d in chosen.databases] == ["shop", "log", "Shop"]
    assert chosen.ignored == ()


def test_include_and_exclude_are_case_sensitive_and_exact() -> None:
    chosen = selection(tables="shop.order*", exclude_tables="shop.order.items")
    shop = chosen.databases[0]
    assert [t.name for t in shop.tables] == ["orders"]
    assert ("shop", "Orders") in chosen.ignored and ("shop", "order.items") in chosen.ignored
    assert ("log", "events") in chosen.ignored and ("Shop", "x") in chosen.ignored


def test_exclude_databases() -> None:
    chosen = selection(exclude_databases="Sh*,log")
    assert [d.name for d in chosen.databases] == ["shop"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tables": "shop.nothing*"}, "tables pattern 'shop.nothing*' matches no table"),
        ({"exclude_tables": "none.x"}, "exclude_tables pattern 'none.x' matches no table"),
        ({"exclude_databases": "nope"}, "matches no database"),
        ({"exclude_databases": "*"}, "leaves no database"),
        ({"tables": "shop.a,,b"}, "empty pattern"),
    ],
)
def test_filters_that_cannot_be_right_are_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace(".", r"\.")):
        selection(**options)


def test_requested_and_excluded_database_contradict() -> None:
    with pytest.raises(ConfigError, match="both requested and excluded"):
        select(
            LogicalBackupOptions.parse(
                {"location": "mysql://h", "databases": "shop,log", "exclude_databases": "log"},
            ),
            CATALOGUE[:2],
        )
