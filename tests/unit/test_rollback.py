"""The guardian's undo action of a logical restore, without a server: it crosses a
pipe (picklable), always exists while there is something to undo (the new one is
registered before the old one is discarded), and says what it does in one line."""

from __future__ import annotations

import pickle
from typing import Any

from plakar_mysql.core.options import Connection
from plakar_mysql.logical.rollback import Rollback, Undo, routine_objects
from plakar_mysql.logical.shadow import Trigger
from plakar_mysql.logical.tables import is_or_uses_sequence


class RecordingGuard:
    """Records registrations and discards, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.live: dict[int, Undo] = {}
        self._next = 0

    def on_exit(self, action: Any, what: str) -> int:
        self._next += 1
        self.live[self._next] = action
        self.events.append(("on_exit", self._next))
        return self._next

    def discard(self, token: Any) -> None:
        del self.live[token]
        self.events.append(("discard", token))


def base() -> Undo:
    return Undo(Connection("mysql", password="s3cret"), session=42, bound=30)


def test_the_undo_action_survives_a_pipe_with_its_state() -> None:
    trigger = Trigger("shop", "orders", "t", "", "utf8mb4", "utf8mb4_general_ci", "CREATE ...")
    undo = Undo(
        Connection("mysql"),
        7,
        30,
        shadows=(("shop", "plakar_restore_7_1_abcdef01"),),
        created=("shop",),
        new_tables=(("shop", "orders"),),
        objects=(("shop", "VIEW", "v"),),
        old_triggers=(trigger,),
    )
    assert pickle.loads(pickle.dumps(undo)) == undo


def test_an_update_registers_the_new_state_before_discarding_the_old() -> None:
    guard = RecordingGuard()
    rollback = Rollback(guard, base())
    rollback.update(shadows=(("shop", "plakar_restore_42_1_x"),))
    rollback.update(created=("shop",))
    assert guard.events == [("on_exit", 1), ("on_exit", 2), ("discard", 1)]
    assert list(guard.live.values()) == [rollback.state]
    assert rollback.state.shadows and rollback.state.created
    rollback.release()
    assert guard.live == {}
    assert rollback.state.empty


def test_nothing_to_undo_registers_nothing() -> None:
    guard = RecordingGuard()
    rollback = Rollback(guard, base())
    rollback.update(shadows=(("shop", "s"),))
    rollback.update(shadows=())
    assert guard.live == {}
    assert guard.events == [("on_exit", 1), ("discard", 1)]


def test_the_line_names_what_is_undone_and_no_password() -> None:
    undo = Undo(
        Connection("mysql", password="s3cret"),
        42,
        30,
        shadows=(("shop", "plakar_restore_42_1_x"),),
        new_tables=(("shop_copy", "orders"),),
        created=("shop_copy",),
    )
    line = undo.describe()
    assert "`plakar_restore_42_1_x`" in line
    assert "`shop_copy`" in line
    assert "s3cret" not in line and "s3cret" not in repr(undo)
    assert "\n" not in line


def test_routine_entries_become_objects_to_drop() -> None:
    found = list(routine_objects("db", ["PROCEDURE p", "FUNCTION f x", "bogus"]))
    assert found == [("db", "PROCEDURE", "p"), ("db", "FUNCTION", "f x")]


def test_a_sequence_or_a_table_using_one_is_told_by_its_definition_not_its_rows() -> None:
    assert is_or_uses_sequence(b"-- plakar-mysql {}\n--\n-- Sequence structure for `s`\n")
    table = b"CREATE TABLE `t` (\n  `id` int DEFAULT nextval(`db`.`s`)\n);\n"
    assert is_or_uses_sequence(table + b"INSERT INTO `t` VALUES (1);\n")
    rows = b"CREATE TABLE `t` (`v` text);\nINSERT INTO `t` VALUES ('nextval(x)');\n"
    assert not is_or_uses_sequence(rows)
