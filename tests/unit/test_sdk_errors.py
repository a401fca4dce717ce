"""kloset_sdk.errors: a user's error is one line; anything else is told as a bug.

A connector's :class:`ConnectorError` and the environment's ``OSError`` reach
the user as their message alone.  Any other exception writes the last frames of
its traceback on stderr and gives a line that says it is a bug to report, so
that a ``KeyError`` never reads like the user's mistake.
"""

from __future__ import annotations

import io
from typing import NoReturn

import grpc
import pytest

from kloset_sdk import ConnectorError
from kloset_sdk._pb import importer_pb2
from kloset_sdk._session import Session
from kloset_sdk.errors import FRAMES, error_line, is_bug


class BadOption(ConnectorError):
    pass


def _lookup(config: dict[str, str]) -> str:
    return config["out"]


def _deep(depth: int) -> str:
    return _lookup({}) if depth == 0 else _deep(depth - 1)


def caught(call: object) -> BaseException:
    assert callable(call)
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    "exc",
    [
        BadOption("option  jobs:\n must be a number"),
        FileNotFoundError(2, "No such file or directory", "/x"),
        ConnectionRefusedError("connection refused"),
        SystemExit("usage: mysql-importer"),
        KeyboardInterrupt(),
    ],
)
def test_a_users_error_is_its_message_on_one_line_and_nothing_else(exc: BaseException) -> None:
    stderr = io.StringIO()
    line = error_line(exc, stderr)
    assert not is_bug(exc)
    assert line == " ".join(str(exc).split()) or (not str(exc) and line == type(exc).__name__)
    assert "\n" not in line and "bug" not in line
    assert stderr.getvalue() == ""


def test_a_bug_writes_a_short_traceback_and_says_to_report_it() -> None:
    exc = caught(lambda: _deep(30))
    stderr = io.StringIO()
    line = error_line(exc, stderr)
    assert is_bug(exc)
    assert "\n" not in line
    assert line.startswith("internal error in ")
    assert "KeyError: 'out'" in line
    assert "this is a bug" in line and "please report it" in line
    assert "traceback above" in line

    written = stderr.getvalue()
    assert "internal error, the last frames of its traceback:" in written
    assert "Traceback (most recent call last):" in written
    assert written.rstrip().endswith("KeyError: 'out'")
    assert "in _lookup" in written  # the innermost frame, where the bug is
    # The last frames only (Python folds the repeated ones), not the 30 recursive calls
    # nor the caller's.
    assert 2 <= written.count('  File "') <= FRAMES, written
    assert "in caught" not in written


def test_a_bug_without_a_message_still_names_its_type_once() -> None:
    exc = caught(_fail_assertion)
    line = error_line(exc, io.StringIO())
    assert "AssertionError - this is a bug" in line
    assert "AssertionError: AssertionError" not in line


def _fail_assertion() -> NoReturn:
    raise AssertionError


class _Aborted(Exception):
    pass


class _Context:
    """The part of a gRPC servicer context that ``abort`` uses."""

    def __init__(self) -> None:
        self.details = ""
        self.code: grpc.StatusCode | None = None

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        self.code, self.details = code, details
        raise _Aborted(details)


def _init(factory: object, capsys: pytest.CaptureFixture[str]) -> tuple[_Context, str]:
    context = _Context()
    session: Session[object] = Session(factory)  # type: ignore[arg-type,type-var]
    with pytest.raises(_Aborted):
        session.init(importer_pb2.InitRequest(proto="x"), context, importer_pb2.InitResponse)  # type: ignore[arg-type]
    return context, capsys.readouterr().err


def test_a_session_tells_a_connectors_error_as_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    def factory(*_args: object) -> NoReturn:
        raise BadOption("option jobs: must be a number")

    context, err = _init(factory, capsys)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == "option jobs: must be a number"
    assert err == ""


def test_a_session_tells_a_bug_as_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    def factory(_options: object, _proto: str, config: dict[str, str]) -> str:
        return _lookup(config)

    context, err = _init(factory, capsys)
    assert context.details.startswith("internal error in ")
    assert "KeyError: 'out'" in context.details and "this is a bug" in context.details
    assert "Traceback (most recent call last):" in err and "in _lookup" in err
