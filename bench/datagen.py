"""Deterministic benchmark data: seven tables of broadly similar size in one database.

The data is made here, from a seeded :class:`random.Random` per table, and
streamed as multi-row ``INSERT`` statements of about 1 MiB into the stock
``mariadb`` client's standard input: nothing is downloaded, nothing is held in
memory beyond one statement, and the same ``(size_mb, seed)`` always gives the
same rows (Python's ``Random`` with a ``str`` seed is stable across runs and
versions).

The tables look like a small shop's: customers, products, orders, order lines,
an event log with JSON payloads, reviews, and attachments with binary content.
They mix integers, ``VARCHAR``, ``TEXT``, ``DECIMAL``, ``DATE``/``DATETIME``,
JSON, ``ENUM``, blobs, unique and secondary indexes.  Each table gets the same
share of the SQL text, so a loader that works on several tables at once has
comparable pieces to share out; narrow tables (order lines) have many more rows
per megabyte and cost the server more per byte than wide ones (attachments).
There are no foreign keys (the dump would disable their checks anyway), one
view and one stored function.

Two tables are generated at a time, each by its own worker process feeding its
own client, so that generation keeps both cores of a small machine busy.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "DATABASE",
    "GENERATOR_VERSION",
    "TABLES",
    "GenerationStats",
    "TableStats",
    "generate",
]

DATABASE = "benchdb"
GENERATOR_VERSION = 1
"""Bumped whenever the rows for a given (size, seed) change."""

_STATEMENT_BYTES = 1 << 20
_MB = 1_000_000

# --- vocabularies ---------------------------------------------------------------

_WORDS_TEXT = (
    "able acid aged also area army away baby back ball band bank base bath bear beat been beer "
    "bell belt best bill bird blow blue boat body bomb bond bone book boom born boss both bowl "
    "bulk burn bush busy call calm came camp card care case cash cast cell chat chip city club "
    "coal coat code cold come cook cool cope copy core cost crew crop dark data date dawn days "
    "dead deal dean dear debt deep deny desk dial diet disc disk does done door dose down draw "
    "drew drop drug dual duke dust duty each earn ease east easy edge else even ever evil exit "
    "face fact fail fair fall farm fast fate fear feed feel feet fell felt file fill film find "
    "fine fire firm fish five flat flow food foot form fort four free from fuel full fund gain "
    "game gate gave gear gene gift girl give glad goal goes gold golf gone good gray grew grey "
    "grow gulf hair half hall hand hang hard harm hate have head hear heat held hell help here "
    "hero high hill hire hold hole holy home hope host hour huge hung hunt hurt idea inch into "
    "iron item jack jane jean john join jump jury just keen keep kent kept kick kill kind king "
    "knee knew know lack lady laid lake land lane last late lead left less life lift like line "
    "link list live load loan lock logo long look lord lose loss lost love luck made mail main "
    "make male many mark mass matt meal mean meat meet menu mere mike mile milk mill mind mine "
    "miss mode mood moon more most move much must name navy near neck need news next nice nick "
    "nine none nose note okay once only onto open oral over pace pack page paid pain pair palm "
    "park part pass past path peak pick pink pipe plan play plot plug plus poll pool poor port "
    "post pull pure push race rail rain rank rare rate read real rear rely rent rest rice rich "
    "ride ring rise risk road rock role roll roof room root rose rule rush safe said sake sale "
    "salt same sand save seat seed seek seem seen self sell send sent ship shop shot show shut "
    "sick side sign site size skin slip slow snow soft soil sold sole some song soon sort soul "
    "spot star stay step stop such suit sure take tale talk tall tank tape task team tech tell "
    "tend term test text than that them then they thin this thus till time tiny told tone tony "
    "took tool tour town tree trip true tune turn twin type unit upon used user vary vast very "
    "vice view vote wage wait wake walk wall want ward warm wash wave ways weak wear week well "
    "went were west what when whom wide wife wild will wind wine wing wire wise wish with wood "
    "word wore work yard yeah year your zero zone"
)
_WORDS = _WORDS_TEXT.split()
_FIRST_TEXT = (
    "Ada Alan Alice Amir Ana Anna Ben Carla Chen Chloe David Elena Emma Eva Farid Grace Hana "
    "Hugo Ines Ivan Jana Jean Joao Jose Julia Kai Karim Lea Leo Lina Liu Lucas Maria Mateo Mei "
    "Mia Nadia Noah Nora Omar Paul Priya Rosa Sam Sara Sofia Tom Yara Yuki Zoe"
)
_FIRST = _FIRST_TEXT.split()
# Already escaped for an SQL string literal (O'Brien...).
_LAST_TEXT = (
    "Abe Alves Bauer Brown Costa Dubois Duarte Eriksen Fischer Garcia Gomez Haddad Ito Jansen "
    "Kim Kowalski Lee Lopez Martin Meyer Moreau Muller Nakamura Novak O\\'Brien O\\'Neil Olsen "
    "Park Patel Petit Rossi Santos Schmidt Silva Smith Suzuki Tanaka Dupont Weber Wilson Wong "
    "Yilmaz Zhang D\\'Angelo"
)
_LAST = _LAST_TEXT.split()
_CITIES = {
    "FR": ("Paris", "Lyon", "Lille", "Nantes", "Marseille", "Bordeaux"),
    "DE": ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig"),
    "US": ("New York", "Chicago", "Austin", "Seattle", "Boston", "Denver"),
    "JP": ("Tokyo", "Osaka", "Kyoto", "Sapporo"),
    "BR": ("S\u00e3o Paulo", "Rio de Janeiro", "Recife", "Curitiba"),
    "ES": ("Madrid", "Barcelona", "Sevilla", "M\u00e1laga"),
    "IT": ("Roma", "Milano", "Torino", "Napoli"),
    "GB": ("London", "Leeds", "Bristol", "Glasgow"),
}
_COUNTRIES = tuple(_CITIES)
_DOMAINS = ("example.com", "mail.example.org", "shop.example.net", "corp.example")
_CATEGORIES = (
    "books",
    "garden",
    "kitchen",
    "toys",
    "outdoor",
    "audio",
    "office",
    "sports",
    "beauty",
    "tools",
)
_COLOURS = ("red", "green", "blue", "black", "white", "silver", "orange", "purple")
_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
_CURRENCIES = ("EUR", "USD", "GBP", "JPY", "BRL")
_EVENT_KINDS = (
    "page_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "login",
    "logout",
    "payment_failed",
)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
)
_MIMES = (
    ("image/png", "png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ("application/pdf", "pdf", b"%PDF-1.7\n"),
    ("application/zip", "zip", b"PK\x03\x04"),
)
_EPOCH = date(2015, 1, 1)
_DAY_COUNT = 3650
_DAYS = tuple((_EPOCH + timedelta(days=n)).isoformat() for n in range(_DAY_COUNT))


def _text(rng: random.Random, low: int, high: int) -> str:
    """Some words (never a quote or backslash), capitalised and ended like a sentence."""
    words = rng.choices(_WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def _datetime(rng: random.Random) -> str:
    second = rng.randrange(86_400)
    hour, rest = divmod(second, 3600)
    return f"{rng.choice(_DAYS)} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _money(rng: random.Random, high_cents: int) -> str:
    cents = rng.randrange(high_cents)
    return f"{cents // 100}.{cents % 100:02d}"


def _escape_bytes(data: bytes) -> bytes:
    """``data`` as the inside of a MariaDB string literal (what mariadb-dump writes)."""
    return (
        data.replace(b"\\", b"\\\\")
        .replace(b"\x00", b"\\0")
        .replace(b"\n", b"\\n")
        .replace(b"\r", b"\\r")
        .replace(b"'", b"\\'")
        .replace(b'"', b'\\"')
        .replace(b"\x1a", b"\\Z")
    )


# --- tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Approximate row counts, so that references between tables fall in range."""

    customers: int
    products: int
    orders: int


def _customer(rng: random.Random, i: int, s: Scale) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    country = rng.choice(_COUNTRIES)
    notes = "NULL" if rng.random() < 0.6 else f"'{_text(rng, 5, 40)}'"
    email = (
        f"{first.lower()}.{last.lower().replace(chr(92) + chr(39), '')}{i}@{rng.choice(_DOMAINS)}"
    )
    return (
        f"({i},'{email}','{first} {last}','{country}','{rng.choice(_CITIES[country])}',"
        f"'{rng.choice(_DAYS[:900])}','{_datetime(rng)}',{_money(rng, 1_000_000)},"
        f"{int(rng.random() < 0.9)},{notes})"
    )


def _product(rng: random.Random, i: int, s: Scale) -> str:
    category = rng.choice(_CATEGORIES)
    attributes = (
        f'{{"colour":"{rng.choice(_COLOURS)}","size":"{rng.choice("SMLX")}",'
        f'"tags":["{rng.choice(_WORDS)}","{rng.choice(_WORDS)}"],'
        f'"rating":{rng.randrange(10, 50) / 10},"eco":{"true" if rng.random() < 0.3 else "false"}}}'
    )
    return (
        f"({i},'P{i:011d}','{_text(rng, 2, 6)[:-1]}','{category}',{_money(rng, 50_000)},"
        f"{rng.randrange(1, 50_000) / 1000:.3f},{rng.randrange(0, 5000)},'{attributes}',"
        f"'{_text(rng, 60, 400)}','{_datetime(rng)}')"
    )


def _order(rng: random.Random, i: int, s: Scale) -> str:
    status = rng.choice(_STATUSES)
    shipped = f"'{rng.choice(_DAYS)}'" if status in ("shipped", "delivered", "refunded") else "NULL"
    coupon = (
        f"'{rng.choice(_WORDS).upper()}{rng.randrange(100)}'" if rng.random() < 0.15 else "NULL"
    )
    country = rng.choice(_COUNTRIES)
    address = (
        f"{rng.randrange(1, 300)} {rng.choice(_WORDS).capitalize()} "
        f"{rng.choice(('Street', 'Road', 'Avenue', 'Lane'))}, {rng.choice(_CITIES[country])}, "
        f"{country} {rng.randrange(10000, 99999)}"
    )
    return (
        f"({i},{rng.randrange(1, s.customers + 1)},'{status}','{rng.choice(_CURRENCIES)}',"
        f"{_money(rng, 200_000)},'{_datetime(rng)}',{shipped},'{address}',{coupon})"
    )


def _order_item(rng: random.Random, i: int, s: Scale) -> str:
    # Row i is line (i % 4) + 1 of order i // 4 + 1: a composite primary key.
    gift = f"'{_text(rng, 3, 12)}'" if rng.random() < 0.1 else "NULL"
    return (
        f"({i // 4 + 1},{i % 4 + 1},{rng.randrange(1, s.products + 1)},{rng.randrange(1, 10)},"
        f"{_money(rng, 50_000)},{rng.choice(('0.00', '0.00', '5.00', '10.00', '12.50'))},{gift})"
    )


def _event(rng: random.Random, i: int, s: Scale) -> str:
    kind = rng.choice(_EVENT_KINDS)
    customer = "NULL" if rng.random() < 0.2 else str(rng.randrange(1, s.customers + 1))
    payload = (
        f'{{"session":"{rng.getrandbits(64):016x}","path":"/{rng.choice(_WORDS)}/'
        f'{rng.choice(_WORDS)}","query":"{" ".join(rng.choices(_WORDS, k=rng.randint(0, 4)))}",'
        f'"product":{rng.randrange(1, s.products + 1)},"duration_ms":{rng.randrange(5, 9000)},'
        f'"screen":{{"w":{rng.choice((390, 1280, 1440, 1920))},"h":{rng.choice((844, 800, 900))}}},'
        f'"ab":["{rng.choice(_WORDS)}",{rng.randrange(3)}]}}'
    )
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return (
        f"({i},'{_datetime(rng)}.{rng.randrange(1_000_000):06d}',{customer},'{kind}','{ip}',"
        f"'{rng.choice(_AGENTS)}','{payload}')"
    )


def _review(rng: random.Random, i: int, s: Scale) -> str:
    return (
        f"({i},{rng.randrange(1, s.products + 1)},{rng.randrange(1, s.customers + 1)},"
        f"{rng.choice((1, 2, 3, 4, 4, 5, 5, 5))},'{_text(rng, 2, 8)[:-1]}',"
        f"'{_text(rng, 20, 220)}',{rng.randrange(0, 300)},'{_datetime(rng)}')"
    )


def _attachment(rng: random.Random, i: int, s: Scale) -> bytes:
    mime, extension, magic = rng.choice(_MIMES)
    # Half noise (compressed media does not compress again), half repetitive.
    size = rng.randrange(1024, 12 * 1024)
    noise = rng.randbytes(size // 2)
    content = magic + noise + (b"%08d " % i) * ((size - len(noise)) // 9)
    digest = hashlib.sha256(content).hexdigest()
    head = (
        f"({i},{rng.randrange(1, s.customers + 1)},'{rng.choice(_WORDS)}_{i}.{extension}',"
        f"'{mime}',{len(content)},'{digest}','{rng.choice(_DAYS)}',_binary '"
    )
    return head.encode() + _escape_bytes(content) + b"')"


@dataclass(frozen=True)
class Table:
    name: str
    ddl: str
    row: Callable[[random.Random, int, Scale], str | bytes]
    average_row_bytes: int
    """Rough SQL bytes per row, only used to size references between tables."""


TABLES: tuple[Table, ...] = (
    Table(
        "customers",
        """CREATE TABLE customers (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  email VARCHAR(191) NOT NULL,
  full_name VARCHAR(100) NOT NULL,
  country CHAR(2) NOT NULL,
  city VARCHAR(64) NOT NULL,
  birth_date DATE NOT NULL,
  created_at DATETIME NOT NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  notes TEXT NULL,
  UNIQUE KEY uq_email (email),
  KEY ix_country_city (country, city),
  KEY ix_created (created_at)
)""",
        _customer,
        165,
    ),
    Table(
        "products",
        """CREATE TABLE products (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  sku CHAR(12) NOT NULL,
  name VARCHAR(200) NOT NULL,
  category VARCHAR(40) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_kg DECIMAL(7,3) NOT NULL,
  stock INT NOT NULL,
  attributes JSON NOT NULL,
  description TEXT NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  UNIQUE KEY uq_sku (sku),
  KEY ix_category_price (category, price)
)""",
        _product,
        1325,
    ),
    Table(
        "orders",
        """CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('pending','paid','shipped','delivered','cancelled','refunded') NOT NULL,
  currency CHAR(3) NOT NULL,
  total DECIMAL(12,2) NOT NULL,
  ordered_at DATETIME NOT NULL,
  shipped_on DATE NULL,
  shipping_address VARCHAR(255) NOT NULL,
  coupon VARCHAR(16) NULL,
  KEY ix_customer (customer_id),
  KEY ix_status_ordered (status, ordered_at)
)""",
        _order,
        110,
    ),
    Table(
        "order_items",
        """CREATE TABLE order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  quantity SMALLINT UNSIGNED NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  discount_pct DECIMAL(5,2) NOT NULL DEFAULT 0,
  gift_message VARCHAR(200) NULL,
  PRIMARY KEY (order_id, line_no),
  KEY ix_product (product_id)
)""",
        _order_item,
        37,
    ),
    Table(
        "events",
        """CREATE TABLE events (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  occurred_at DATETIME(6) NOT NULL,
  customer_id INT UNSIGNED NULL,
  kind VARCHAR(32) NOT NULL,
  ip VARCHAR(45) NOT NULL,
  user_agent VARCHAR(255) NOT NULL,
  payload JSON NOT NULL,
  KEY ix_kind_time (kind, occurred_at),
  KEY ix_customer (customer_id)
)""",
        _event,
        305,
    ),
    Table(
        "reviews",
        """CREATE TABLE reviews (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  product_id INT UNSIGNED NOT NULL,
  customer_id INT UNSIGNED NOT NULL,
  rating TINYINT UNSIGNED NOT NULL,
  title VARCHAR(150) NOT NULL,
  body TEXT NOT NULL,
  helpful_votes INT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL,
  KEY ix_product_rating (product_id, rating),
  KEY ix_customer (customer_id)
)""",
        _review,
        675,
    ),
    Table(
        "attachments",
        """CREATE TABLE attachments (
  id INT UNSIGNED NOT NULL PRIMARY KEY,
  owner_id INT UNSIGNED NOT NULL,
  filename VARCHAR(255) NOT NULL,
  mime VARCHAR(64) NOT NULL,
  byte_size INT UNSIGNED NOT NULL,
  sha256 CHAR(64) NOT NULL,
  created_on DATE NOT NULL,
  content MEDIUMBLOB NOT NULL,
  KEY ix_owner (owner_id),
  KEY ix_sha256 (sha256)
)""",
        _attachment,
        6660,
    ),
)

_OBJECTS = (
    """CREATE VIEW order_totals AS
  SELECT o.id AS order_id, o.customer_id, SUM(i.quantity * i.unit_price) AS lines_total
  FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id, o.customer_id""",
    """CREATE FUNCTION with_vat(amount DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC
  RETURN ROUND(amount * 1.2, 2)""",
)


def scale_for(size_mb: float) -> Scale:
    share = size_mb * _MB / len(TABLES)
    by_name = {t.name: max(1, int(share / t.average_row_bytes)) for t in TABLES}
    return Scale(by_name["customers"], by_name["products"], by_name["orders"])


# --- streaming into the server ----------------------------------------------------


@dataclass(frozen=True)
class TableStats:
    name: str
    rows: int
    sql_bytes: int
    seconds: float


@dataclass(frozen=True)
class GenerationStats:
    size_mb: float
    seed: str
    tables: tuple[TableStats, ...]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def sql_bytes(self) -> int:
        return sum(t.sql_bytes for t in self.tables)


def batches(table: Table, budget: int, seed: str, scale: Scale) -> Iterator[tuple[bytes, int]]:
    """``INSERT`` statements of about 1 MiB for ``table``, about ``budget`` bytes in all,
    each with its row count; the same arguments always give the same bytes."""
    rng = random.Random(f"{seed}/{GENERATOR_VERSION}/{table.name}")  # noqa: S311 (data, not keys)
    prefix = f"INSERT INTO `{table.name}` VALUES ".encode()
    written, next_id = 0, 1
    while written < budget:
        limit = min(_STATEMENT_BYTES, budget - written)
        pieces: list[bytes] = []
        texts: list[str] = []
        size, count = len(prefix) + 2, 0
        while size < limit:
            row = table.row(rng, next_id, scale)
            next_id += 1
            if isinstance(row, bytes):
                pieces.append(row)
            else:
                texts.append(row)
            size += len(row) + 1
            count += 1
        if texts:
            pieces.append(",".join(texts).encode())
        statement = prefix + b",".join(pieces) + b";\n"
        written += len(statement)
        yield statement, count


def schema_sql() -> bytes:
    """The ``CREATE TABLE`` statements (the database itself is created by :func:`generate`)."""
    return "".join(f"{table.ddl};\n" for table in TABLES).encode()


def objects_sql() -> bytes:
    """The view and the function, made once the tables are there."""
    return "".join(f"DELIMITER ;;\n{sql};;\nDELIMITER ;\n" for sql in _OBJECTS).encode()


def _fill_table(job: tuple[Sequence[str], str, int, str, Scale]) -> TableStats:
    """In a worker process: stream one table's statements into its own client."""
    client, name, budget, seed, scale = job
    table = next(t for t in TABLES if t.name == name)
    started = time.perf_counter()
    process = subprocess.Popen(
        list(client),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stderr is not None
    rows = written = 0
    try:
        for statement, count in batches(table, budget, seed, scale):
            process.stdin.write(statement)
            rows += count
            written += len(statement)
        process.stdin.close()
    except BrokenPipeError:
        pass
    error = process.stderr.read().decode(errors="replace").strip()
    code = process.wait()
    if code != 0:
        raise RuntimeError(f"loading {name} failed (exit status {code}): {error[-2000:]}")
    return TableStats(name, rows, written, time.perf_counter() - started)


def generate(
    client: Sequence[str],
    size_mb: float,
    seed: str = "plakar-mysql-bench",
    *,
    workers: int = 2,
    run_sql: Callable[[bytes], None],
) -> GenerationStats:
    """Create :data:`DATABASE`'s tables and fill them with about ``size_mb`` MB of SQL.

    ``client`` is the ``mariadb`` command line (credentials, server, character
    set, ``--database``) that reads SQL on its standard input; ``run_sql`` runs
    a short script (schema, objects) the same way.  ``workers`` tables are
    filled at a time, each by its own process and client.
    """
    started = time.perf_counter()
    run_sql(schema_sql())
    budget = int(size_mb * _MB / len(TABLES))
    scale = scale_for(size_mb)
    jobs = [(tuple(client), table.name, budget, seed, scale) for table in TABLES]
    # Narrow rows (the most server work per byte) first, so the slowest tables do not
    # run last, alone.
    jobs.sort(key=lambda job: next(t.average_row_bytes for t in TABLES if t.name == job[1]))
    context = multiprocessing.get_context("fork")
    with context.Pool(max(1, workers)) as pool:
        done = {stats.name: stats for stats in pool.imap_unordered(_fill_table, jobs)}
    run_sql(objects_sql())
    return GenerationStats(
        size_mb=size_mb,
        seed=seed,
        tables=tuple(done[table.name] for table in TABLES),
        seconds=time.perf_counter() - started,
    )
