"""The demo and test database ``shop``: made here, deterministically, with what a DBA's own has.

Nothing is downloaded: :func:`write_sql` writes one SQL script, the same bytes
for the same ``(database, scale)`` on every machine (Python's ``Random`` seeded
with a ``str`` is stable across runs and versions), and :func:`load_shop` pipes
it into a server through the stock client.

What it holds, as a small shop's database would:

- twelve tables linked by foreign keys, two of which reference each other
  (``store.manager_id`` -> ``staff``, ``staff.store_id`` -> ``store``) and one
  of which references itself (``category.parent_id``);
- utf8mb4 text in several scripts (Latin, Greek, Cyrillic, Arabic, Hebrew,
  Devanagari, Chinese, Japanese, Korean, emoji), BLOBs, JSON, DECIMAL, DATE,
  DATETIME, TIMESTAMP, TIME, YEAR, ENUM and SET columns;
- a view over a view (``customer_revenue`` reads ``order_totals``);
- a function, a procedure, three triggers and an event;
- about a hundred thousand rows at ``scale=1`` (:data:`ROW_COUNTS`).

The rows are inserted before the triggers exist, as a dump does, so that the
row counts are exactly :func:`row_counts`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plakar_mysql_harness.mariadb import MariaDBServer

__all__ = [
    "DATABASE",
    "EVENTS",
    "ROUTINES",
    "TABLES",
    "TRIGGERS",
    "VIEWS",
    "load_shop",
    "row_counts",
    "write_sql",
]

DATABASE = "shop"

#: Rows per table at ``scale=1``; the small tables keep their size at every scale.
ROW_COUNTS = {
    "country": 12,
    "store": 6,
    "staff": 30,
    "store_hours": 42,
    "category": 20,
    "product": 2_000,
    "product_image": 300,
    "customer": 5_000,
    "orders": 20_000,
    "order_line": 50_000,
    "payment": 18_000,
    "review": 6_000,
    "audit_log": 1_000,
}
_SCALED = {"product", "product_image", "customer", "orders", "order_line", "payment", "review"}

TABLES = frozenset(ROW_COUNTS)
VIEWS = frozenset({"order_totals", "customer_revenue", "store_staff"})
ROUTINES = frozenset({("FUNCTION", "order_total"), ("PROCEDURE", "customer_summary")})
#: trigger -> (table, timing, event)
TRIGGERS = {
    "orders_audit_insert": ("orders", "AFTER", "INSERT"),
    "orders_audit_update": ("orders", "AFTER", "UPDATE"),
    "payment_positive": ("payment", "BEFORE", "INSERT"),
}
EVENTS = frozenset({"purge_audit_log"})

_ROWS_PER_INSERT = 500

_COUNTRIES = (
    ("FR", "France", "Europe/Paris"),
    ("DE", "Deutschland", "Europe/Berlin"),
    ("GR", "Ελλάδα", "Europe/Athens"),
    ("UA", "Україна", "Europe/Kyiv"),
    ("EG", "مصر", "Africa/Cairo"),
    ("IL", "ישראל", "Asia/Jerusalem"),
    ("IN", "भारत", "Asia/Kolkata"),
    ("CN", "中国", "Asia/Shanghai"),
    ("JP", "日本", "Asia/Tokyo"),
    ("KR", "대한민국", "Asia/Seoul"),
    ("BR", "Brasil", "America/Sao_Paulo"),
    ("IS", "Ísland", "Atlantic/Reykjavik"),
)

_GIVEN = (
    "Amélie", "Jürgen", "Νίκος", "Оксана", "فاطمة", "אורי", "प्रिया", "伟", "さくら", "지민",
    "João", "Sigríður", "Zoë", "Łukasz", "Ångström", "Ayşe", "Ōta", "Renée", "Dmitri", "Chloé",
)  # fmt: skip
_FAMILY = (
    "Dupont", "Müller", "Παπαδόπουλος", "Шевченко", "الحسيني", "כהן", "शर्मा", "王", "佐藤", "김",
    "Gonçalves", "Jónsdóttir", "O'Brien", "Wiśniewski", "Ñúñez", "Smith", "Björk", "Nguyễn",
)  # fmt: skip
_WORDS = (
    "oak", "linen", "copper", "amber", "slate", "walnut", "velvet", "cobalt", "maple", "flint",
    "cedar", "ivory", "saffron", "indigo", "birch", "pewter", "garnet", "willow", "quartz",
    "thé", "café", "Straße", "μέλι", "чай", "شاي", "תה", "चाय", "茶", "お茶", "차", "☕", "🍵",
)  # fmt: skip
_CATEGORIES = (
    "Home", "Kitchen", "Garden", "Office", "Toys", "Books", "Music", "Sport", "Outdoor",
    "Tea & coffee", "Lighting", "Textiles", "Tools", "Bath", "Storage", "Décor", "Crafts",
    "Stationery", "Pets", "Gifts 🎁",
)  # fmt: skip

_START = datetime(2025, 1, 1, 8, 0, 0)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row_counts(scale: int = 1) -> dict[str, int]:
    """Rows each table holds once :func:`load_shop` has run with this ``scale``."""
    return {name: n * scale if name in _SCALED else n for name, n in ROW_COUNTS.items()}


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _s(text: str) -> str:
    """A string literal (backslashes and quotes escaped, as the server reads them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json(value: object) -> str:
    return _s(json.dumps(value, ensure_ascii=False))


def _blob(data: bytes) -> str:
    return "0x" + data.hex() if data else "''"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"


def _phrase(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _when(rng: random.Random, days: int = 365) -> datetime:
    return _START + timedelta(seconds=rng.randrange(days * 86_400))


def _schema() -> Iterator[str]:
    yield """CREATE TABLE country (
  country_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  code CHAR(2) CHARACTER SET ascii NOT NULL UNIQUE,
  name VARCHAR(60) NOT NULL,
  time_zone VARCHAR(40) NOT NULL
) ENGINE=InnoDB"""
    # store and staff reference each other: the store's FK is added once staff exists.
    yield """CREATE TABLE store (
  store_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(80) NOT NULL,
  country_id SMALLINT UNSIGNED NOT NULL,
  manager_id INT UNSIGNED NULL,
  opened YEAR NOT NULL,
  KEY idx_store_manager (manager_id),
  CONSTRAINT fk_store_country FOREIGN KEY (country_id) REFERENCES country (country_id)
) ENGINE=InnoDB COMMENT='one row per shop front'"""
    yield """CREATE TABLE staff (
  staff_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  store_id SMALLINT UNSIGNED NOT NULL,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(120) CHARACTER SET ascii NOT NULL UNIQUE,
  hired DATE NOT NULL,
  photo BLOB NULL,
  CONSTRAINT fk_staff_store FOREIGN KEY (store_id) REFERENCES store (store_id)
) ENGINE=InnoDB"""
    yield """ALTER TABLE store ADD CONSTRAINT fk_store_manager
  FOREIGN KEY (manager_id) REFERENCES staff (staff_id) ON DELETE SET NULL"""
    yield """CREATE TABLE store_hours (
  store_id SMALLINT UNSIGNED NOT NULL,
  weekday ENUM('mon','tue','wed','thu','fri','sat','sun') NOT NULL,
  opens TIME NOT NULL,
  closes TIME NOT NULL,
  PRIMARY KEY (store_id, weekday),
  CONSTRAINT fk_hours_store FOREIGN KEY (store_id) REFERENCES store (store_id) ON DELETE CASCADE
) ENGINE=InnoDB"""
    yield """CREATE TABLE category (
  category_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  parent_id SMALLINT UNSIGNED NULL,
  name VARCHAR(60) NOT NULL,
  CONSTRAINT fk_category_parent FOREIGN KEY (parent_id) REFERENCES category (category_id)
) ENGINE=InnoDB"""
    yield """CREATE TABLE product (
  product_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sku CHAR(10) CHARACTER SET ascii NOT NULL UNIQUE,
  category_id SMALLINT UNSIGNED NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_kg DECIMAL(8,3) NULL,
  tags SET('new','sale','eco','fragile','gift') NOT NULL DEFAULT '',
  CONSTRAINT fk_product_category FOREIGN KEY (category_id) REFERENCES category (category_id),
  FULLTEXT KEY ft_product_name (name)
) ENGINE=InnoDB"""
    yield """CREATE TABLE product_image (
  product_id INT UNSIGNED NOT NULL PRIMARY KEY,
  mime_type VARCHAR(40) NOT NULL,
  image MEDIUMBLOB NOT NULL,
  CONSTRAINT fk_image_product FOREIGN KEY (product_id) REFERENCES product (product_id)
    ON DELETE CASCADE
) ENGINE=InnoDB"""
    yield """CREATE TABLE customer (
  customer_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(120) NOT NULL,
  email VARCHAR(120) CHARACTER SET ascii NOT NULL UNIQUE,
  country_id SMALLINT UNSIGNED NOT NULL,
  preferences JSON NULL,
  created DATETIME NOT NULL,
  KEY idx_customer_name (name),
  CONSTRAINT fk_customer_country FOREIGN KEY (country_id) REFERENCES country (country_id)
) ENGINE=InnoDB"""
    yield """CREATE TABLE orders (
  order_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  store_id SMALLINT UNSIGNED NOT NULL,
  staff_id INT UNSIGNED NULL,
  ordered_at DATETIME(3) NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  note VARCHAR(255) NULL,
  KEY idx_orders_date (ordered_at),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
  CONSTRAINT fk_orders_store FOREIGN KEY (store_id) REFERENCES store (store_id),
  CONSTRAINT fk_orders_staff FOREIGN KEY (staff_id) REFERENCES staff (staff_id)
    ON DELETE SET NULL
) ENGINE=InnoDB"""
    yield """CREATE TABLE order_line (
  order_id INT UNSIGNED NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  quantity SMALLINT UNSIGNED NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT fk_line_order FOREIGN KEY (order_id) REFERENCES orders (order_id)
    ON DELETE CASCADE,
  CONSTRAINT fk_line_product FOREIGN KEY (product_id) REFERENCES product (product_id)
) ENGINE=InnoDB"""
    yield """CREATE TABLE payment (
  payment_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id INT UNSIGNED NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  method ENUM('card','transfer','cash','voucher') NOT NULL,
  paid_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT fk_payment_order FOREIGN KEY (order_id) REFERENCES orders (order_id)
) ENGINE=InnoDB"""
    yield """CREATE TABLE review (
  review_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  product_id INT UNSIGNED NOT NULL,
  customer_id INT UNSIGNED NOT NULL,
  rating TINYINT UNSIGNED NOT NULL CHECK (rating BETWEEN 1 AND 5),
  body TEXT NOT NULL,
  created DATETIME NOT NULL,
  CONSTRAINT fk_review_product FOREIGN KEY (product_id) REFERENCES product (product_id),
  CONSTRAINT fk_review_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
) ENGINE=InnoDB"""
    yield """CREATE TABLE audit_log (
  audit_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  action ENUM('insert','update','delete') NOT NULL,
  row_id BIGINT UNSIGNED NOT NULL,
  at DATETIME(6) NOT NULL,
  details JSON NULL
) ENGINE=InnoDB"""


def _inserts(table: str, rows: Iterator[str]) -> Iterator[str]:
    """Multi-row INSERT statements of :data:`_ROWS_PER_INSERT` rows each."""
    batch: list[str] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _ROWS_PER_INSERT:
            yield f"INSERT INTO {table} VALUES\n" + ",\n".join(batch)
            batch = []
    if batch:
        yield f"INSERT INTO {table} VALUES\n" + ",\n".join(batch)


def _data(counts: dict[str, int]) -> Iterator[str]:
    rng = random.Random(f"{DATABASE}-v1")
    n_store, n_staff, n_product = counts["store"], counts["staff"], counts["product"]
    n_customer, n_orders = counts["customer"], counts["orders"]

    yield from _inserts(
        "country",
        (
            f"({i},{_s(code)},{_s(name)},{_s(tz)})"
            for i, (code, name, tz) in enumerate(_COUNTRIES, 1)
        ),
    )
    yield from _inserts(
        "store",
        (
            f"({i},{_s(f'{rng.choice(_WORDS)} {_COUNTRIES[i % 12][1]} #{i}')},{i % 12 + 1},"
            f"{i * 5},{2000 + i})"
            for i in range(1, n_store + 1)
        ),
    )
    yield from _inserts(
        "staff",
        (
            f"({i},{(i - 1) % n_store + 1},{_s(_name(rng))},{_s(f'staff{i}@shop.example')},"
            f"'{(date(2015, 1, 1) + timedelta(days=rng.randrange(3650))).isoformat()}',"
            f"{_blob(rng.randbytes(rng.randint(0, 600))) if i % 3 else 'NULL'})"
            for i in range(1, n_staff + 1)
        ),
    )
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    yield from _inserts(
        "store_hours",
        (
            f"({s},'{day}','{8 + s % 3:02d}:{15 * (s % 4):02d}:00','{17 + d % 4:02d}:30:00')"
            for s in range(1, n_store + 1)
            for d, day in enumerate(days)
        ),
    )
    yield from _inserts(
        "category",
        (
            f"({i},{'NULL' if i <= 5 else (i - 1) % 5 + 1},{_s(name)})"
            for i, name in enumerate(_CATEGORIES, 1)
        ),
    )
    tags = ("new", "sale", "eco", "fragile", "gift")
    yield from _inserts(
        "product",
        (
            f"({i},'SKU{i:07d}',{rng.randint(1, 20)},{_s(_phrase(rng, 2, 5).title())},"
            f"{_s(_phrase(rng, 8, 40))},{rng.randint(99, 99_999) / 100:.2f},"
            f"{f'{rng.randint(1, 50_000) / 1000:.3f}' if i % 7 else 'NULL'},"
            f"{_s(','.join(t for t in tags if rng.random() < 0.2))})"
            for i in range(1, n_product + 1)
        ),
    )
    yield from _inserts(
        "product_image",
        (
            f"({i * 7 % n_product + 1},'image/png',"
            f"{_blob(_PNG_MAGIC + rng.randbytes(rng.randint(500, 6000)))})"
            for i in range(counts["product_image"])
        ),
    )
    yield from _inserts(
        "customer",
        (
            f"({i},{_s(_name(rng))},{_s(f'customer{i}@mail.example')},{rng.randint(1, 12)},"
            + (
                _json(
                    {
                        "newsletter": rng.random() < 0.5,
                        "language": rng.choice(("fr", "de", "el", "uk", "ar", "ja")),
                        "favourites": [rng.randint(1, n_product) for _ in range(3)],
                    }
                )
                if i % 4
                else "NULL"
            )
            + f",'{_when(rng):%Y-%m-%d %H:%M:%S}')"
            for i in range(1, n_customer + 1)
        ),
    )
    statuses = ("new", "paid", "shipped", "cancelled")
    yield from _inserts(
        "orders",
        (
            f"({i},{rng.randint(1, n_customer)},{rng.randint(1, n_store)},"
            f"{rng.randint(1, n_staff) if i % 11 else 'NULL'},"
            f"'{_when(rng):%Y-%m-%d %H:%M:%S}.{rng.randrange(1000):03d}',"
            f"'{rng.choice(statuses)}',"
            f"{_s(_phrase(rng, 2, 6)) if i % 5 == 0 else 'NULL'})"
            for i in range(1, n_orders + 1)
        ),
    )
    lines_per_order, extra = divmod(counts["order_line"], n_orders)
    yield from _inserts(
        "order_line",
        (
            f"({o},{line},{rng.randint(1, n_product)},{rng.randint(1, 9)},"
            f"{rng.randint(99, 20_000) / 100:.2f})"
            for o in range(1, n_orders + 1)
            for line in range(1, lines_per_order + (o <= extra) + 1)
        ),
    )
    methods = ("card", "transfer", "cash", "voucher")
    yield from _inserts(
        "payment",
        (
            f"({i},{i},{rng.randint(100, 200_000) / 100:.2f},'{rng.choice(methods)}',"
            f"'{_when(rng):%Y-%m-%d %H:%M:%S}')"
            for i in range(1, counts["payment"] + 1)
        ),
    )
    yield from _inserts(
        "review",
        (
            f"({i},{rng.randint(1, n_product)},{rng.randint(1, n_customer)},{rng.randint(1, 5)},"
            f"{_s(_phrase(rng, 3, 30))},'{_when(rng):%Y-%m-%d %H:%M:%S}')"
            for i in range(1, counts["review"] + 1)
        ),
    )
    yield from _inserts(
        "audit_log",
        (
            f"({i},'orders','{rng.choice(('insert', 'update'))}',{rng.randint(1, n_orders)},"
            f"'{_when(rng):%Y-%m-%d %H:%M:%S}.{rng.randrange(1_000_000):06d}',"
            f"{_json({'by': _name(rng), 'reason': _phrase(rng, 1, 4)})})"
            for i in range(1, counts["audit_log"] + 1)
        ),
    )


def _objects() -> Iterator[str]:
    yield """CREATE VIEW order_totals AS
SELECT o.order_id, o.customer_id, o.store_id, o.ordered_at,
       SUM(l.quantity * l.unit_price) AS total, COUNT(*) AS line_count
FROM orders o JOIN order_line l ON l.order_id = o.order_id
GROUP BY o.order_id, o.customer_id, o.store_id, o.ordered_at"""
    yield """CREATE VIEW customer_revenue AS
SELECT c.customer_id, c.name, COUNT(t.order_id) AS orders, COALESCE(SUM(t.total), 0) AS revenue
FROM customer c LEFT JOIN order_totals t ON t.customer_id = c.customer_id
GROUP BY c.customer_id, c.name"""
    yield """CREATE VIEW store_staff AS
SELECT s.store_id, s.name AS store, m.name AS manager, COUNT(st.staff_id) AS staff_count
FROM store s LEFT JOIN staff m ON m.staff_id = s.manager_id
LEFT JOIN staff st ON st.store_id = s.store_id
GROUP BY s.store_id, s.name, m.name"""
    yield """CREATE FUNCTION order_total(p_order INT UNSIGNED) RETURNS DECIMAL(12,2)
READS SQL DATA
COMMENT 'sum of an order''s lines'
RETURN (SELECT COALESCE(SUM(quantity * unit_price), 0) FROM order_line WHERE order_id = p_order)"""
    yield """CREATE PROCEDURE customer_summary(IN p_customer INT UNSIGNED, OUT p_orders INT)
READS SQL DATA
BEGIN
  -- one customer's orders and what they spent; a ';' inside a comment
  SELECT COUNT(*) INTO p_orders FROM orders WHERE customer_id = p_customer;
  SELECT order_id, order_total(order_id) AS total FROM orders
  WHERE customer_id = p_customer ORDER BY ordered_at;
END"""
    yield """CREATE TRIGGER orders_audit_insert AFTER INSERT ON orders FOR EACH ROW
INSERT INTO audit_log (table_name, action, row_id, at, details)
VALUES ('orders', 'insert', NEW.order_id, NOW(6), JSON_OBJECT('status', NEW.status))"""
    yield """CREATE TRIGGER orders_audit_update AFTER UPDATE ON orders FOR EACH ROW
INSERT INTO audit_log (table_name, action, row_id, at, details)
VALUES ('orders', 'update', NEW.order_id, NOW(6),
        JSON_OBJECT('from', OLD.status, 'to', NEW.status))"""
    yield """CREATE TRIGGER payment_positive BEFORE INSERT ON payment FOR EACH ROW
BEGIN
  IF NEW.amount <= 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a payment must be positive';
  END IF;
END"""
    yield """CREATE EVENT purge_audit_log
ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 03:00:00'
ON COMPLETION PRESERVE DISABLE
COMMENT 'keeps 90 days of audit'
DO DELETE FROM audit_log WHERE at < NOW() - INTERVAL 90 DAY"""


def write_sql(path: Path, *, database: str = DATABASE, scale: int = 1) -> Path:
    """Write the script that creates ``database`` and fills it; same bytes every time.

    ``scale`` multiplies the big tables' rows (:func:`row_counts`).  Statements
    end with ``;;`` under ``DELIMITER ;;`` so that routine bodies keep theirs.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    counts = row_counts(scale)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(
            "SET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSET foreign_key_checks = 0;\n"
            "SET unique_checks = 0;\nDELIMITER ;;\n"
            f"CREATE DATABASE {_q(database)} DEFAULT CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_unicode_ci;;\n"
            f"USE {_q(database)};;\n"
        )
        for statement in (*_schema(), *_data(counts), *_objects()):
            out.write(statement)
            out.write(";;\n")
        out.write("DELIMITER ;\nSET foreign_key_checks = 1;\nSET unique_checks = 1;\n")
    return path


def load_shop(server: MariaDBServer, *, database: str = DATABASE, scale: int = 1) -> None:
    """Create ``database`` on ``server`` and load it (a few seconds at ``scale=1``)."""
    script = write_sql(server.base_dir / f"{database}-{scale}.sql", database=database, scale=scale)
    try:
        server.load_sql_file(script)
    finally:
        script.unlink()
