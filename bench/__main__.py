"""``python -m bench``: the one runner, :func:`bench.runner.main` (its docstring says how)."""

from __future__ import annotations

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
