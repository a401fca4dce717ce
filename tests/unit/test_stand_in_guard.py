"""The temporary ``plakar_check_*`` accounts a users=true restore makes are dropped by
the guardian if the plugin dies while one exists: a stand-in holds a locked copy of
an account's grants (or its password hash), which must not stay on the target.

A fake connection records each statement with the guard's pending actions at that
moment: from the stand-in's ``CREATE`` to its ``DROP``, a ``DROP USER IF EXISTS``
of it is registered, and it is discarded only once the stand-in is gone.
"""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from kloset_sdk.guard import Action, Guard
from plakar_mysql.core.options import Connection
from plakar_mysql.core.server import ServerError
from plakar_mysql.logical import users
from plakar_mysql.logical.users import Account, StandIns, _Block, _regrant_check, _try_creates


class _Guard(Guard):
    """Records the actions registered (``ever``) and those not yet discarded."""

    def __init__(self) -> None:
        super().__init__(None)
        self.actions: dict[int, tuple[Action, str]] = {}
        self.ever: list[Action] = []

    def on_exit(self, action: Action, what: str = "") -> int:
        self.ever.append(action)
        token = len(self.ever)
        self.actions[token] = (action, what)
        return token

    def discard(self, token: int) -> None:
        del self.actions[token]


class _Db:
    """Runs nothing: records each statement and what the guard held then."""

    def __init__(self, guard: _Guard, grants: list[str], failing: str = "") -> None:
        self.guard = guard
        self.grants = grants
        self.failing = failing
        self.seen: list[tuple[str, list[str]]] = []
        self._rows: list[tuple[str]] = []

    def cursor(self) -> _Db:
        return self

    def __enter__(self) -> _Db:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        self.seen.append((sql, [what for _, what in self.guard.actions.values()]))
        self._rows = [(g,) for g in self.grants] if sql.startswith("SHOW GRANTS") else []
        if self.failing and sql.startswith(self.failing):
            raise pymysql.err.OperationalError(1396, "Operation failed")

    def fetchall(self) -> list[tuple[str]]:
        return self._rows

    def close(self) -> None:
        pass


def _stand_in_of(db: _Db) -> str:
    create = next(sql for sql, _ in db.seen if sql.startswith("CREATE USER `plakar_check_"))
    return create.split()[2]


@pytest.fixture
def guard() -> _Guard:
    return _Guard()


def _guardian_drops(action: Action, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the guardian's action runs (on a fake connection)."""
    db = _Db(_Guard(), [])
    monkeypatch.setattr(users, "connect", lambda conn: db)
    action()
    return [sql for sql, _ in db.seen]


def test_a_tried_create_is_dropped_by_the_guard_if_killed(
    guard: _Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account("app", "%")
    block = _Block(account, ["CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF'"])
    db = _Db(guard, [])
    _try_creates(db, [block], StandIns(Connection("mysql"), guard))  # type: ignore[arg-type]
    stand_in = _stand_in_of(db)
    assert [sql.split()[:2] for sql, _ in db.seen] == [["CREATE", "USER"], ["DROP", "USER"]]
    for sql, held in db.seen:  # while it exists, the guard would drop it
        assert held == [f"drop the check account {stand_in}"], (sql, held)
    assert guard.actions == {}  # dropped: nothing left to the guard
    assert _guardian_drops(guard.ever[0], monkeypatch) == [f"DROP USER IF EXISTS {stand_in}"]


def test_a_regrant_check_is_covered_until_its_stand_in_is_dropped(
    guard: _Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account("app", "localhost")
    db = _Db(guard, ["GRANT SELECT ON *.* TO `app`@`localhost`"])
    assert _regrant_check(db, account, StandIns(Connection("mysql"), guard)) is None  # type: ignore[arg-type]
    stand_in = _stand_in_of(db)
    grant = next(held for sql, held in db.seen if sql.startswith("GRANT SELECT"))
    assert grant == [f"drop the check account {stand_in}"]
    assert guard.actions == {}


def test_a_stand_in_that_cannot_be_dropped_is_left_to_the_guard(
    guard: _Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account("app", "localhost")
    db = _Db(guard, ["GRANT SELECT ON *.* TO `app`@`localhost`"], failing="DROP USER")
    with pytest.raises(ServerError, match="cannot be checked"):
        _regrant_check(db, account, StandIns(Connection("mysql"), guard))  # type: ignore[arg-type]
    stand_in = _stand_in_of(db)
    [(action, what)] = guard.actions.values()
    assert what == f"drop the check account {stand_in}"
    assert _guardian_drops(action, monkeypatch) == [f"DROP USER IF EXISTS {stand_in}"]


def test_a_create_that_fails_leaves_nothing_to_the_guard(guard: _Guard) -> None:
    block = _Block(Account("app", "%"), ["CREATE USER `app`@`%` IDENTIFIED VIA nothing"])
    db = _Db(guard, [], failing="CREATE USER")
    with pytest.raises(ServerError, match="cannot be created"):
        _try_creates(db, [block], StandIns(Connection("mysql"), guard))  # type: ignore[arg-type]
    assert guard.actions == {}
