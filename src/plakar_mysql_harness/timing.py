"""Run a command and measure it: wall time, CPU time and memory of its whole process tree.

``wait4`` gives the command's own resource usage plus that of every
descendant it waited for.  That is not all of it: ``plakar`` may exit without
waiting for its plugin, which then finishes as an orphan (reparented to init)
with the clients it started.  So while the command runs, a sampler reads
``/proc`` a few times a second and keeps every process descended from it; at
the end the CPU time of the descendants ``wait4`` could not see (those still
running, and those reaped by init) is added from their last sample.  The
sampler also gives the peak of the tree's summed resident memory, and can hand
the tree's live processes to an observer at every sample (``on_sample``), which
is how the memory benchmark follows the memory of each kind of process.

Output goes to a log file, never to a pipe that could fill up.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ProcessWatch",
    "SampleObserver",
    "Timed",
    "busy_cpu_seconds",
    "load_average",
    "read_proc",
    "run_timed",
    "tail",
    "wait_for_quiet",
]

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_SAMPLE_SECONDS = 0.2

SampleObserver = Callable[[Collection[int]], None]
"""Called with the pids of the tree's live processes at every sample (from the
sampler's thread, or from the caller's at the first and the last sample; never
two calls at once)."""


@dataclass(frozen=True)
class Timed:
    seconds: float
    returncode: int
    cpu_seconds: float
    """User + system time of the command and of every process descended from it."""
    max_rss_kib: int
    """Largest resident set of any one process of the tree, in KiB."""
    tree_rss_kib: int
    """Largest sum of the resident sets of the tree's processes at one sample, in KiB."""
    timed_out: bool
    log: Path
    left_running: tuple[str, ...] = field(default=())
    """Processes of the tree still running when the command itself had exited."""


@dataclass
class _Proc:
    name: str
    ppid: int
    own: float  # utime + stime, seconds
    reaped: float  # cutime + cstime: children it waited for
    rss: int  # bytes


def read_proc(pid: int) -> tuple[int, _Proc] | None:
    """(start time, state) of process ``pid`` from ``/proc/PID/stat``, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    name_end = raw.rfind(b")")
    name = raw[raw.find(b"(") + 1 : name_end].decode(errors="replace")
    fields = raw[name_end + 2 :].split()
    # After the name: state [0], ppid [1], utime [11], stime [12], cutime [13],
    # cstime [14], starttime [19], rss in pages [21].
    return int(fields[19]), _Proc(
        name=name,
        ppid=int(fields[1]),
        own=(int(fields[11]) + int(fields[12])) / _TICK,
        reaped=(int(fields[13]) + int(fields[14])) / _TICK,
        rss=int(fields[21]) * _PAGE,
    )


class ProcessWatch:
    """An ``on_sample`` for :func:`run_timed`: every process of the tree as last
    sampled (its CPU time), and the peak resident memory seen under each name."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, int], _Proc] = {}
        self.peak_rss: dict[str, int] = {}

    def __call__(self, pids: Collection[int]) -> None:
        for pid in pids:
            found = read_proc(pid)
            if found is None:
                continue
            start, proc = found
            self.last[(pid, start)] = proc
            self.peak_rss[proc.name] = max(self.peak_rss.get(proc.name, 0), proc.rss)

    def cpu_by_name(self) -> dict[str, float]:
        """CPU seconds of the processes seen, summed by name."""
        totals: dict[str, float] = {}
        for proc in self.last.values():
            totals[proc.name] = totals.get(proc.name, 0.0) + proc.own
        return totals


class _TreeSampler:
    """Every process descended from ``root``, as last seen."""

    def __init__(
        self,
        root: int,
        interval: float = _SAMPLE_SECONDS,
        on_sample: SampleObserver | None = None,
    ) -> None:
        self.root = root
        self.interval = interval
        self.on_sample = on_sample
        self.seen: dict[tuple[int, int], _Proc] = {}
        self.alive: set[tuple[int, int]] = set()
        self.max_rss = 0
        self.tree_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        table: dict[int, tuple[int, _Proc]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                found = read_proc(int(entry.name))
                if found is not None:
                    table[int(entry.name)] = found
        children: dict[int, list[int]] = {}
        for pid, (_, proc) in table.items():
            children.setdefault(proc.ppid, []).append(pid)
        # The tree: the root, every process seen in it before (still the same
        # process: same start time), and their descendants now.
        known = {pid for pid, _ in self.seen} | {self.root}
        frontier = [pid for pid in known if pid in table]
        frontier = [
            pid for pid in frontier if pid == self.root or (pid, table[pid][0]) in self.seen
        ]
        members: set[int] = set()
        while frontier:
            pid = frontier.pop()
            if pid in members:
                continue
            members.add(pid)
            frontier.extend(children.get(pid, ()))
        self.alive = set()
        total = 0
        for pid in members:
            start, proc = table[pid]
            self.seen[(pid, start)] = proc
            self.alive.add((pid, start))
            total += proc.rss
            self.max_rss = max(self.max_rss, proc.rss)
        self.tree_rss = max(self.tree_rss, total)
        if self.on_sample is not None:
            self.on_sample(members)

    def unwaited_cpu(self) -> float:
        """CPU time of descendants the root did not wait for (call after the root exited)."""
        tracked = {pid for pid, _ in self.seen}
        extra = 0.0
        for key, proc in self.seen.items():
            if key[0] == self.root:
                continue
            if key in self.alive or proc.ppid not in tracked:
                # Still running (an orphan, or a child of one), or gone but last seen
                # with a parent outside the tree (reaped by init).
                extra += proc.own + proc.reaped
        return extra

    def left_running(self) -> tuple[str, ...]:
        return tuple(
            sorted(f"{self.seen[k].name} ({k[0]})" for k in self.alive if k[0] != self.root)
        )


def tail(path: Path, lines: int = 15) -> str:
    """Last lines of a log file."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_timed(
    cmd: Sequence[str],
    log: Path,
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600.0,
    interval: float = _SAMPLE_SECONDS,
    on_sample: SampleObserver | None = None,
) -> Timed:
    """Run ``cmd`` (standard input from ``stdin``, output to ``stdout`` or the log)
    and measure it; a command still running after ``timeout`` seconds is killed.

    The process tree is sampled every ``interval`` seconds; ``on_sample``, if
    given, sees the tree's live processes at each sample."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        log.open("wb") as err,
        stdin.open("rb") if stdin is not None else open(os.devnull, "rb") as inp,
        stdout.open("wb") if stdout is not None else open(os.devnull, "wb") as out,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            list(cmd),
            stdin=inp,
            stdout=out if stdout is not None else err,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        sampler = _TreeSampler(process.pid, interval, on_sample)
        sampler.start()
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            sampler.stop()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    return Timed(
        seconds=seconds,
        returncode=process.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime + sampler.unwaited_cpu(),
        max_rss_kib=max(usage.ru_maxrss, sampler.max_rss // 1024),
        tree_rss_kib=sampler.tree_rss // 1024,
        timed_out=expired.is_set(),
        log=log,
        left_running=sampler.left_running(),
    )


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy so far, all CPUs together (``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return 0.0
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    ticks = [int(v) for v in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / _TICK


def load_average() -> float:
    """The one-minute load average."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def wait_for_quiet(
    timeout: float, threshold: float = 0.2, window: float = 1.0
) -> tuple[float, bool]:
    """Wait until the machine is nearly idle: less than ``threshold`` CPUs busy over
    ``window`` seconds, for at most ``timeout`` seconds (0: do not wait).

    On a machine shared with other work this keeps a run from starting in the
    middle of someone else's burst; it cannot keep that work from starting during
    the run.  Returns the time waited and whether the machine was quiet.
    """
    started = time.monotonic()
    while True:
        before = busy_cpu_seconds()
        time.sleep(window)
        if (busy_cpu_seconds() - before) / window < threshold:
            return time.monotonic() - started, True
        if time.monotonic() - started >= timeout:
            return time.monotonic() - started, False
