"""The man page is the schemas' options, rendered: the committed page must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_manpage.py"


def test_committed_man_page_matches_the_schemas() -> None:
    spec = importlib.util.spec_from_file_location("gen_manpage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render()
    for option in ("defaults_file", "lock_wait_timeout", "stop_datetime", "parallel"):
        assert f"\\fB{option}\\fR" in page
    assert module.PAGE.read_text(encoding="utf-8") == page, (
        "docs/plakar-mysql.1 is out of date: run python scripts/gen_manpage.py"
    )
