"""Rounds of contenders: who runs, how a run is judged, and the times and ratios of the
runs that succeeded.

A benchmark runs each of its contenders once per round, in turn (A, B, C, A,
B, C, ...: :func:`play`); a ratio is taken within a round, against that
round's base run, so that a slow spell of a shared machine weighs on both
sides.  Every timed command is judged the same way (:func:`failure`): killed,
a non-zero exit status, or plakar's own error lines.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bench import workload
from plakar_mysql_harness.plakar import Plakar, strip_ansi
from plakar_mysql_harness.timing import Timed, tail

__all__ = [
    "Contender",
    "Round",
    "RoundRun",
    "failure",
    "median",
    "play",
    "round_ratios",
    "run_times",
]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class Contender:
    """One way of doing the job a benchmark measures."""

    key: str
    label: str
    command: str
    """How it is run, for the report (no secret)."""


class RoundRun(Protocol):
    """A timed run of one contender in one round (round 0 is a warm-up)."""

    round: int
    contender: str
    seconds: float | None
    """Wall time; None when the run failed."""


R = TypeVar("R", bound=RoundRun)


@dataclass
class Round:
    """What every benchmark's run records first: its round, its contender, its time
    or why it does not count (each benchmark adds its own figures)."""

    round: int
    contender: str
    seconds: float | None = None
    """Wall time; None when the run failed."""
    error: str | None = None


def play(
    rounds: int,
    contenders: Sequence[Contender],
    run_one: Callable[[int, Contender], R],
    failed: Callable[[int, Contender, Exception], R] | None = None,
) -> list[R]:
    """Rounds 1 to ``rounds``, each contender once per round, in turn.  A run that
    raises is recorded by ``failed`` and the rounds go on; without ``failed`` the
    exception ends them."""
    runs: list[R] = []
    for number in range(1, rounds + 1):
        for contender in contenders:
            try:
                runs.append(run_one(number, contender))
            except Exception as exc:
                if failed is None:
                    raise
                runs.append(failed(number, contender, exc))
                print(f"bench: round {number} {contender.key}: FAILED: {exc}", flush=True)
    return runs


def failure(timed: Timed, timeout: float, plakar: Plakar | None = None) -> str | None:
    """Why a timed command does not count, or None: it was killed after ``timeout``
    seconds, it exited non-zero, or (a plakar command: ``plakar`` given) plakar's
    output says it failed."""
    log = strip_ansi(tail(timed.log, 200))
    if timed.timed_out:
        return f"killed after {timeout:g} s"
    if timed.returncode != 0:
        return f"exit status {timed.returncode}: {workload.last_lines(log)}"
    return workload.plakar_failure(plakar, log) if plakar is not None else None


def run_times(runs: Iterable[RoundRun], key: str) -> list[float]:
    """The times of ``key``'s runs that succeeded."""
    return [r.seconds for r in runs if r.contender == key and r.seconds is not None]


def round_ratios(
    runs: Sequence[R], key: str, base: str, keep: Callable[[R, R], bool] | None = None
) -> list[float]:
    """``key``'s time over ``base``'s, round by round (warm-up left out), for the rounds
    where both succeeded and, with ``keep``, where ``keep(key's run, base's run)``."""
    out = []
    for number in sorted({r.round for r in runs if r.round > 0}):
        by = {r.contender: r for r in runs if r.round == number}
        mine, theirs = by.get(key), by.get(base)
        if mine is None or theirs is None or mine.seconds is None or not theirs.seconds:
            continue
        if keep is None or keep(mine, theirs):
            out.append(mine.seconds / theirs.seconds)
    return out
