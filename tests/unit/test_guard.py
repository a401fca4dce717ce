"""The guardian's kill of a child: only the very process that was registered."""

from __future__ import annotations

import subprocess

import pytest

from kloset_sdk.guard import _kill, _start_time


def test_a_registered_child_is_killed() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        started = _start_time(child.pid)
        assert started is not None
        _kill(child.pid, started)
        assert child.wait(timeout=10) == -9
    finally:
        child.kill()


def test_a_pid_that_changed_hands_is_left_alone() -> None:
    """Its start time differs: another process now has the pid (pids are reused)."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        started = _start_time(child.pid)
        assert started is not None
        _kill(child.pid, str(int(started) - 1))
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    finally:
        child.kill()
        child.wait()


def test_a_process_gone_is_nothing_to_kill() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert _start_time(child.pid) is None
    _kill(child.pid, "1")  # no error
