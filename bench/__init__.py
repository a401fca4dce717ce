"""Benchmarks of the MySQL/MariaDB integration, run with ``make bench`` (``python -m bench``).

Never part of ``make test``: they take minutes and their figures depend on the
machine.  Modules:

- :mod:`bench.runner`: the one runner: the table of scenarios (backup, restore,
  memory, binlog, physical) and the command line;
- :mod:`bench.datagen`: deterministic data (seeded, generated here) streamed into a server;
- :mod:`bench.servers`: private MariaDB servers (the harness's) and the stock tools;
- :mod:`bench.workspace`: a benchmark's work directory and what it starts there;
- :mod:`bench.rounds`: contenders, rounds, how a run is judged, medians and ratios;
- :mod:`bench.backup`, :mod:`bench.dedup`, :mod:`bench.restore`, :mod:`bench.memory`,
  :mod:`bench.binlog_replay`, :mod:`bench.physical`: the scenarios;
- :mod:`bench.workload`: what the benchmarks share (data set, package, checks of a run);
- :mod:`bench.report`: Markdown (and JSON) results under ``bench/results/``;
- :mod:`bench.environment`: machine, versions, date.

The servers, the plakar driver and the process timing come from
:mod:`plakar_mysql_harness`, the package the end-to-end tests use too, so the
benchmarks run the integration exactly as the tests do.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout."""
RESULTS = ROOT / "bench" / "results"
