"""Benchmarks of the MySQL/MariaDB integration, run with ``make bench`` (``python -m bench``).

Never part of ``make test``: they take minutes and their figures depend on the
machine.  Modules:

- :mod:`bench.datagen`: deterministic data (seeded, generated here) streamed into a server;
- :mod:`bench.servers`: private MariaDB servers (the tests' harness) and the stock tools;
- :mod:`bench.timing`: wall time, CPU time and peak memory of a command;
- :mod:`bench.restore`: restore speed, the integration against the stock client and myloader;
- :mod:`bench.memory`: peak memory of the plugin, plakar and the tools, by database size;
- :mod:`bench.workload`: what the benchmarks share (data set, package, checks of a run);
- :mod:`bench.report`: Markdown (and JSON) results under ``bench/results/``;
- :mod:`bench.environment`: machine, versions, date.

The servers and the plakar driver are imported from ``tests/support`` (as
``tests.support.*``), so the benchmarks run the integration exactly as the
end-to-end tests do.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout."""
RESULTS = ROOT / "bench" / "results"

# ``tests`` (no __init__.py) is then importable as a namespace package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
