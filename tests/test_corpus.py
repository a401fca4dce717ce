"""Every kind of object and value a MariaDB server holds, through a full-server round trip.

The corpus (:mod:`support.corpus`) is loaded into a private server, taken out
and loaded into a fresh one, and the two servers are compared object by
object (:mod:`support.compare`): every table's definition, rows and history,
views, routines, triggers, events, sequences, and - where the tool carries
them - accounts, roles and grants.

Two proofs, kept apart:

* the stock tools (``mariadb-dump`` and the ``mariadb`` client) carry the
  corpus exactly, apart from the few things they are known to lose or choke
  on (:data:`support.corpus.STOCK_TOOL_HAZARDS`, each shown to fail here), so
  the corpus and the comparison are sound whatever this project's code does;
* a whole-server backup through the real ``plakar`` CLI, restored into a fresh
  server, gives back every database exactly: with the hazard-free corpus, and
  with the complete one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import MariaDBFactory
from support.compare import (
    describe_accounts,
    describe_server,
    diff,
    diff_accounts,
)
from support.corpus import (
    ACCOUNTS,
    AWKWARD_DB,
    DATABASES,
    SERVER_DB,
    SERVER_TWIN_DB,
    STOCK_TOOL_HAZARDS,
    TYPES_DB,
    load_corpus,
)

from plakar_mysql_harness.mariadb import MariaDBServer, quote_identifier
from plakar_mysql_harness.plakar import Plakar

#: Longest a backup or restore of the corpus may take; it takes seconds.
PLAKAR_TIMEOUT = 120.0

#: Whether the plakar round trip restores accounts, roles and grants too
#: (``users=true``) and compares them.
PLAKAR_RESTORES_ACCOUNTS = True

#: Stock-tool hazards the integration inherits, because the rows and definitions
#: come from ``mariadb-dump`` and go back through ``mariadb`` (README: "Limits").
#: It works around the others: events and accounts are read with SQL, a grant on
#: a package is loaded in Oracle mode.
INHERITED_HAZARDS = ("float-precision", "sequence-cycled", "versioned-comment-in-comment")

#: Longest a stock dump of the corpus may take before it is deemed to hang.
DUMP_TIMEOUT = 10.0


def option_value(value: str) -> str:
    """``value`` quoted for a MariaDB option file."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_options(server: MariaDBServer, path: Path) -> Path:
    """A 0600 option file with root's credentials and the server's address: the
    password never goes on a command line."""
    path.write_text(
        f"[client]\nuser=root\npassword={option_value(server.root_password)}\n"
        f"host={server.host}\nport={server.port}\nprotocol=TCP\n"
    )
    path.chmod(0o600)
    return path


def assert_same_server(source: MariaDBServer, target: MariaDBServer, *, accounts: bool) -> None:
    """Every database of ``source`` is on ``target`` and identical, and there is no
    other; with ``accounts``, so are every account, role and grant (root's and
    mariadb.sys's aside, see :func:`support.compare.describe_accounts`)."""
    before, after = describe_server(source), describe_server(target)
    assert sorted(before) == sorted(DATABASES)
    differences = [f"only on the target: database {name!r}" for name in after.keys() - before]
    for name, description in before.items():
        if name not in after:
            differences.append(f"database {name!r}: missing on the target")
        else:
            differences += [f"{name}: {line}" for line in diff(description, after[name])]
    if accounts:
        differences += diff_accounts(describe_accounts(source), describe_accounts(target))
    assert differences == [], "\n".join(differences)


# -- the stock tools ---------------------------------------------------------------------


class DumpResult(NamedTuple):
    returncode: int | None
    """The tool's exit status; None when it was killed for taking too long."""
    stdout: bytes
    stderr: bytes


def stock_dump(
    source: MariaDBServer, tmp_path: Path, *args: str, timeout: float = DUMP_TIMEOUT
) -> DumpResult:
    """Run ``mariadb-dump ARGS`` against ``source``; the dump is the result's stdout.

    A dump that outlives ``timeout`` is killed (by its own pid).
    """
    options = client_options(source, tmp_path / "source.cnf")
    cmd = ["mariadb-dump", f"--defaults-file={options}", "--default-character-set=utf8mb4", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return DumpResult(None, out, err)
    return DumpResult(proc.returncode, out, err)


def dump_with_stock_tools(source: MariaDBServer, tmp_path: Path) -> bytes:
    """Every corpus database, then every account, as the stock tool writes them.

    ``--skip-add-locks``: with ``LOCK TABLES`` around the rows, a table whose
    DEFAULT takes ``NEXT VALUE FOR`` a sequence cannot be loaded (ERROR 1100,
    the sequence "was not locked").  ``--insert-ignore`` makes the accounts
    dump say ``CREATE USER IF NOT EXISTS`` and ``CREATE ROLE IF NOT EXISTS``:
    a fresh server has its own root and mariadb.sys, and the tool writes a
    role once per holder WITH ADMIN OPTION.
    """
    databases = stock_dump(
        source,
        tmp_path,
        "--routines",
        "--events",
        "--triggers",
        "--dump-history",
        "--skip-add-locks",
        "--databases",
        *DATABASES,
    )
    assert databases.returncode == 0, databases.stderr.decode(errors="replace")
    accounts = stock_dump(source, tmp_path, "--system=users", "--insert-ignore")
    assert accounts.returncode == 0, accounts.stderr.decode(errors="replace")
    return databases.stdout + accounts.stdout


def load_with_stock_client(
    target: MariaDBServer, tmp_path: Path, dump: bytes, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    """Feed ``dump`` to the ``mariadb`` client.

    ``--comments``: without it the client strips the comments inside routine,
    trigger and event bodies before sending them, and the restored bodies differ.
    """
    options = client_options(target, tmp_path / "target.cnf")
    return subprocess.run(
        [
            "mariadb",
            f"--defaults-file={options}",
            "--default-character-set=utf8mb4",
            "--batch",
            "--comments",
            *extra,
        ],
        input=dump,
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_corpus_survives_the_stock_tools(mariadb_factory: MariaDBFactory, tmp_path: Path) -> None:
    """mariadb-dump and the mariadb client carry the corpus exactly, accounts included.

    The target has the source's root password: the accounts dump holds root's
    password hash and GRANT ... IDENTIFIED BY PASSWORD sets it again.
    """
    source = mariadb_factory()
    load_corpus(source, without=STOCK_TOOL_HAZARDS)
    target = mariadb_factory(root_password=source.root_password)

    loaded = load_with_stock_client(target, tmp_path, dump_with_stock_tools(source, tmp_path))
    assert loaded.returncode == 0, loaded.stderr.decode(errors="replace")

    assert_same_server(source, target, accounts=True)
    assert set(ACCOUNTS) <= set(describe_accounts(target))


def test_the_stock_tools_fail_on_each_hazard(
    mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """What the stock tools cannot carry, each part shown failing as STOCK_TOOL_HAZARDS says.

    Should a MariaDB release fix one, this test fails for that part: it then
    belongs in the corpus the stock tools carry.
    """
    seen: set[str] = set()

    # Dump-side: the dump never ends, or stops.
    for hazard, args, expected in [
        ("event-double-semicolon", ("--events", "--databases", SERVER_DB), None),
        ("event-in-quoted-database", ("--events", "--databases", AWKWARD_DB), 2),
    ]:
        source = mariadb_factory()
        others = set(STOCK_TOOL_HAZARDS) - {hazard}
        load_corpus(source, without=others)
        started = time.monotonic()
        result = stock_dump(source, tmp_path, *args, timeout=DUMP_TIMEOUT)
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == expected, (hazard, result.returncode, stderr)
        if expected is None:
            assert time.monotonic() - started >= DUMP_TIMEOUT
        else:
            assert "Unknown database" in stderr and "when selecting the database" in stderr
        seen.add(hazard)
        source.cleanup()

    # Load-side: the dump completes, and what comes back differs or fails to load.
    load_side = {
        "float-precision",
        "sequence-cycled",
        "package-grant",
        "public-grant",
        "versioned-comment-in-comment",
    }
    source = mariadb_factory()
    load_corpus(source, without=set(STOCK_TOOL_HAZARDS) - load_side)
    target = mariadb_factory(root_password=source.root_password)
    # The routine with '/*!' in a comment garbles whatever follows it in the
    # dump: its database's routines are dumped alone and loaded last.
    routines = stock_dump(
        source,
        tmp_path,
        "--routines",
        "--no-data",
        "--no-create-info",
        "--skip-triggers",
        "--no-create-db",
        "--databases",
        SERVER_DB,
    )
    assert routines.returncode == 0, routines.stderr
    source.execute(f"DROP PROCEDURE {quote_identifier(SERVER_DB)}.versioned_comment_in_comment")

    loaded = load_with_stock_client(
        target, tmp_path, dump_with_stock_tools(source, tmp_path), "--force"
    )
    errors = [
        line
        for line in loaded.stderr.decode(errors="replace").splitlines()
        if line.startswith("ERROR")
    ]
    assert len(errors) == 1 and "ERROR 1064" in errors[0], errors
    assert "near 'BODY `server`.`corpus_pkg` TO `corpus_exec`@`10.0.%`'" in errors[0]
    seen.add("package-grant")
    before, after = describe_server(source), describe_server(target)
    types = diff(before[TYPES_DB], after[TYPES_DB])
    assert [line.split(":")[0] for line in types] == ["table `float_extremes`"], types
    seen.add("float-precision")
    server = diff(before[SERVER_DB], after[SERVER_DB])
    assert [line.split(":")[0] for line in server] == ["table `seq cycling ü`"] * 2, server
    assert "sequence_state differs" in server[1]
    seen.add("sequence-cycled")
    accounts = diff_accounts(describe_accounts(source), describe_accounts(target))
    assert accounts == [
        "account 'corpus_exec'@'10.0.%': grant only in the first: GRANT EXECUTE ON "
        "PACKAGE BODY `server`.`corpus_pkg` TO `corpus_exec`@`10.0.%`",
        "account PUBLIC: only in the first server",
    ], accounts
    seen.add("public-grant")

    loaded = load_with_stock_client(target, tmp_path, routines.stdout)
    stderr = loaded.stderr.decode(errors="replace")
    assert loaded.returncode == 1 and "ERROR 1064" in stderr, stderr
    assert "near ';\nDELIMITER ;" in stderr, stderr
    seen.add("versioned-comment-in-comment")
    assert seen == set(STOCK_TOOL_HAZARDS)


# -- the comparison sees what a restore could lose ------------------------------------


def test_the_comparison_sees_each_kind_of_change(mariadb: MariaDBServer) -> None:
    """Each change below, small and in a corner that SELECT * or a row count would
    miss, is reported for its object - and for nothing else."""
    load_corpus(mariadb)
    server, types, twin = (quote_identifier(name) for name in (SERVER_DB, TYPES_DB, SERVER_TWIN_DB))
    invisible = f"UPDATE {types}.computed SET secret = 'seen?' WHERE id = 1"
    history = f"DELETE HISTORY FROM {server}.versioned_explicit BEFORE SYSTEM_TIME '2022-01-01'"
    partition = (
        f"ALTER TABLE {server}.part_list REORGANIZE PARTITION p_other INTO "
        "(PARTITION p_other VALUES IN ('', 'ü', 'z', 'y'))"
    )
    trigger = (
        f"CREATE DEFINER=`root`@`localhost` TRIGGER {server}.trg_zero BEFORE INSERT "
        "ON no_pk FOR EACH ROW PRECEDES `trg;;first` "
        "SET @corpus_zero = 'it''s # first' -- now with a comment"
    )
    changes: list[tuple[str, str, tuple[str, ...]]] = [
        # (database, start of the expected difference, statements)
        (TYPES_DB, "table `computed`: rows differ", (invisible,)),
        (TYPES_DB, "table `null_like`: rows differ", (
            f"UPDATE {types}.null_like SET b = '' WHERE id = 1",  # NULL -> empty
        )),
        (TYPES_DB, "table `each_byte`: rows differ", (
            f"UPDATE {types}.each_byte SET bl = X'fffe' WHERE n = 255",
        )),
        (TYPES_DB, "table `computed`: create_statement differs", (
            f"ALTER TABLE {types}.computed DROP CONSTRAINT `positive qty`",
        )),
        (SERVER_DB, "table `versioned_explicit`: rows differ", (history,)),
        (SERVER_DB, "table `seq`: sequence_state differs", (f"SELECT SETVAL({server}.seq, 5000)",)),
        (SERVER_DB, "table `part_list`: create_statement differs", (partition,)),
        (SERVER_DB, "trigger `trg_zero`: create_statement differs", (
            f"DROP TRIGGER {server}.trg_zero", trigger,
        )),
        (SERVER_DB, "event `ev_replica`: status differs", (
            f"ALTER EVENT {server}.ev_replica ENABLE",
        )),
        (SERVER_TWIN_DB, "table `mixed`: rows differ", (
            f"UPDATE {twin}.`mixed` SET `co``l 'ü' \"c\"` = 'twin' WHERE id = 3",
        )),
    ]  # fmt: skip
    before = describe_server(mariadb)
    accounts_before = describe_accounts(mariadb)
    for database, expected, statements in changes:
        with mariadb.connect() as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                cur.fetchall()
        now = describe_server(mariadb)
        for name in before:
            differences = diff(before[name], now[name])
            if name == database:
                assert any(line.startswith(expected) for line in differences), (
                    expected,
                    differences,
                )
            else:
                assert differences == [], (expected, name, differences)
        before = now  # the next change must be seen on its own

    mariadb.execute("REVOKE UPDATE (v) ON `server`.`mixed` FROM 'corpus_col'@'localhost'")
    mariadb.execute("SET DEFAULT ROLE NONE FOR 'corpus_app'@'%'")
    mariadb.execute("GRANT SELECT (`id`) ON `server`.`mixed` TO 'Corpus_app'@'%'")
    changed = diff_accounts(accounts_before, describe_accounts(mariadb))
    assert [line.split(":")[0] for line in changed] == [
        "account 'Corpus_app'@'%'",
        "account 'corpus_app'@'%'",
        "account 'corpus_app'@'%'",
        "account 'corpus_col'@'localhost'",
        "account 'corpus_col'@'localhost'",
    ], changed


# -- through plakar ------------------------------------------------------------------------


def backup_within(plakar: Plakar, uri: str, *opts: str, timeout: float) -> str:
    """``plakar backup`` bounded in time; returns the new snapshot's id.

    plakar runs in a session of its own, so that a backup that never ends is
    stopped with everything it started (the plugin, the dump tool) by killing
    that one process group.
    """
    args = [str(plakar.binary), "at", str(plakar.store), "backup"]
    for opt in opts:
        args += ["-o", opt]
    args.append(uri)
    with subprocess.Popen(
        args,
        env=plakar.env,
        cwd=plakar.base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            pytest.fail(
                f"plakar backup did not finish in {timeout:g} s (a whole-server backup of "
                f"the corpus takes seconds); its output:\n{output.decode(errors='replace')}"
            )
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "completed without errors" in text, text
    snapshots = plakar.snapshots()
    assert len(snapshots) == 1, (snapshots, text)
    return snapshots[0]


def test_corpus_full_server_round_trip_through_plakar(
    plakar: Plakar, mariadb_factory: MariaDBFactory, tmp_path: Path
) -> None:
    """A whole-server backup of the corpus restored into a fresh server is exact,
    including what the stock tools alone cannot carry, but for what it inherits."""
    assert set(INHERITED_HAZARDS) < set(STOCK_TOOL_HAZARDS)
    source = mariadb_factory()
    load_corpus(source, without=INHERITED_HAZARDS)
    target = mariadb_factory()
    credentials = f"defaults_file={client_options(source, tmp_path / 'backup.cnf')}"
    snapshot = backup_within(
        plakar, f"mysql://{source.host}:{source.port}", credentials, timeout=PLAKAR_TIMEOUT
    )
    plakar.restore(
        snapshot,
        f"mysql://{target.host}:{target.port}",
        f"defaults_file={client_options(target, tmp_path / 'restore.cnf')}",
        *(["users=true"] if PLAKAR_RESTORES_ACCOUNTS else []),
        timeout=PLAKAR_TIMEOUT,
    )
    assert_same_server(source, target, accounts=PLAKAR_RESTORES_ACCOUNTS)
