"""The SDK against the real plakar: a synthetic connector pair, packaged and driven by the CLI.

These tests need no database: they prove the protocol itself (Init, Import
with its results, Open, Export with content, Close), that content of any size
streams through in bounded memory, and that an error raised by an importer's
scan fails the backup and leaves no snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.interrupt import HOW, interrupted_run, settle
from support.scripts import executable
from test_faults import children, gone, start

from plakar_mysql_harness.plakar import Plakar
from sdk.synthetic import BLOCK, block

SYNTHETIC = Path(__file__).with_name("synthetic.py")
BIG = 320 * BLOCK  # twice what the plugins may hold in memory
RSS_LIMIT_KIB = 160 * 1024


@pytest.fixture(scope="module")
def synthetic_ptar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package whose executables run the synthetic connectors with this interpreter."""
    root = tmp_path_factory.mktemp("synthetic-pkg")
    for role in ("importer", "exporter"):
        executable(
            root / f"synthetic-{role}", f"#!/bin/sh\nexec {sys.executable} {SYNTHETIC} {role}\n"
        )
    (root / "manifest.yaml").write_text(
        textwrap.dedent(
            """\
            name: synthetic
            display_name: synthetic test connectors
            description: kloset_sdk test connectors
            api_version: v1.1.0
            connectors:
              - type: importer
                executable: synthetic-importer
                protocols: [synthetic]
              - type: exporter
                executable: synthetic-exporter
                protocols: [synthetic]
            """
        )
    )
    out = root / "synthetic_v0.0.1_linux_amd64.ptar"
    with Plakar(root / "builder") as plakar:
        plakar.run("pkg", "create", "-out", str(out), str(root / "manifest.yaml"), "v0.0.1")
    return out


@pytest.fixture
def plakar(tmp_path: Path, synthetic_ptar: Path) -> Plakar:
    plakar = Plakar(tmp_path)
    plakar.pkg_add(synthetic_ptar)
    plakar.create_store()
    return plakar


def expected_digest(size: int) -> str:
    digest = hashlib.sha256()
    for index in range(size // BLOCK):
        digest.update(block(index))
    return digest.hexdigest()


def test_large_content_streams_through_both_directions(plakar: Plakar, tmp_path: Path) -> None:
    rss = tmp_path / "importer.rss"
    snapshot = plakar.backup("synthetic://x", f"size={BIG}", f"rss={rss}", timeout=600)
    entries = {e.name: e for e in plakar.ls(snapshot, "/", recursive=True)}
    assert {"/big.bin", "/small/0.txt", "/small/2.txt"} <= set(entries)
    assert plakar.cat(snapshot, "/small/1.txt") == b"file 1\n"

    out = tmp_path / "exported.jsonl"
    plakar.restore(snapshot, "synthetic://y", f"out={out}", timeout=600)
    files = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert files["/big.bin"]["size"] == BIG
    assert files["/big.bin"]["sha256"] == expected_digest(BIG)
    assert files["/small/2.txt"]["sha256"] == hashlib.sha256(b"file 2\n").hexdigest()

    importer_peak = int(rss.read_text())
    print(
        f"peak RSS: importer {importer_peak} KiB, exporter", Path(f"{out}.rss").read_text(), "KiB"
    )
    exporter_peak = int(Path(f"{out}.rss").read_text())
    assert importer_peak < RSS_LIMIT_KIB, f"importer peak RSS {importer_peak} KiB"
    assert exporter_peak < RSS_LIMIT_KIB, f"exporter peak RSS {exporter_peak} KiB"
    plakar.check()


def test_error_raised_by_scan_fails_the_backup_and_leaves_no_snapshot(plakar: Plakar) -> None:
    proc = plakar.at("backup", "-o", "fail=true", "synthetic://x", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "synthetic failure after the last record" in output
    assert "Traceback" not in output and "bug" not in output  # the user's error: one line
    assert plakar.snapshots() == []
    assert plakar.backup("synthetic://x")  # the store is still usable


def test_a_bug_in_a_connector_is_told_as_a_bug_with_its_last_frames(plakar: Plakar) -> None:
    proc = plakar.at("backup", "-o", "bug=true", "synthetic://x", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback (most recent call last):" in proc.stderr, output
    assert "in scan\n" in output and "KeyError: 'no such option'" in output
    assert "internal error in synthetic.py: KeyError: 'no such option' - this is a bug" in output
    assert "please report it" in output
    assert plakar.snapshots() == []


def test_bad_configuration_fails_at_init(plakar: Plakar) -> None:
    proc = plakar.at("restore", "-to", "synthetic://y", "latest", check=False)
    assert proc.returncode != 0


def test_plakar_killed_mid_restore_lets_the_export_clean_up(plakar: Plakar, tmp_path: Path) -> None:
    """Plakar killed while the exporter reads: the exporter's ``export`` unwinds and
    its clean-up runs to its end before the process exits (the MySQL exporter
    drops its shadow databases there)."""
    snapshot = plakar.backup("synthetic://x", f"size={64 * BLOCK}", timeout=600)
    hold = tmp_path / "hold"
    out = tmp_path / "exported.jsonl"
    args = ["restore", "-to", "synthetic://y", "-o", f"out={out}", "-o", f"hold={hold}"]
    restore = start(plakar, *args, snapshot)
    deadline = time.monotonic() + 120
    while not Path(f"{hold}.started").exists():
        assert restore.poll() is None, restore.communicate()[0]
        assert time.monotonic() < deadline, "the exporter never started reading"
        time.sleep(0.1)
    exporters = [pid for pid, argv in children(restore.pid) if b"exporter" in argv]
    assert exporters, children(restore.pid)
    os.kill(restore.pid, signal.SIGKILL)
    restore.communicate()
    for pid in exporters:
        assert gone(pid, timeout=60), f"the exporter {pid} still runs"
    assert Path(f"{hold}.cleaned").exists(), "the exporter exited in the middle of its clean-up"


def held_restore(tmp_path: Path, snapshot: str) -> list[str]:
    """A restore whose exporter reads slowly and registers ``tmp_path/hold.guarded``."""
    out, hold = tmp_path / "out", tmp_path / "hold"
    return ["restore", "-to", "synthetic://y", "-o", f"out={out}", "-o", f"hold={hold}", snapshot]


@pytest.mark.parametrize("how", HOW)
def test_an_interrupted_export_is_cleaned_up_by_the_guardian(
    plakar: Plakar, tmp_path: Path, how: str
) -> None:
    """However the run is stopped, what the exporter registered with its guard is
    done once the plugin is gone (plakar SIGKILLs it on SIGINT and SIGTERM), or
    the exporter's own clean-up ran (plakar itself killed: the plugin unwinds and
    discards it).  No traceback, no process, no temporary file is left."""
    snapshot = plakar.backup("synthetic://x", f"size={64 * BLOCK}", timeout=600)
    hold = tmp_path / "hold"
    run = interrupted_run(
        plakar, held_restore(tmp_path, snapshot), how=how, when=Path(f"{hold}.started").exists
    )
    settle(plakar)
    assert run.returncode != 0, run.output
    assert "Traceback" not in run.output, run.output
    assert run.tmp_entries() == []
    if how == "kill-plakar":
        assert Path(f"{hold}.cleaned").exists(), run.output
        assert not Path(f"{hold}.guarded").exists(), run.output
    else:
        assert Path(f"{hold}.guarded").exists(), run.output
        assert f"clean-up after the run: touch {hold}.guarded: done" in run.output, run.output


def test_a_finished_export_leaves_the_guardian_nothing_to_do(
    plakar: Plakar, tmp_path: Path
) -> None:
    snapshot = plakar.backup("synthetic://x", f"size={4 * BLOCK}")
    hold = tmp_path / "hold"
    out = plakar.at(*held_restore(tmp_path, snapshot))
    assert Path(f"{hold}.cleaned").exists()
    assert not Path(f"{hold}.guarded").exists()
    assert "clean-up after the run" not in out.stdout + out.stderr


def test_plakar_killed_while_the_scan_is_stuck_ends_the_importer(
    plakar: Plakar, tmp_path: Path
) -> None:
    """``kill -9`` of plakar while the importer's scan waits on something that will
    never come (here, for ever; in the MySQL importer, a record nobody will read):
    the importer ends all the same, at once, and its guardian kills the child the
    scan started and runs what it registered.  Before, the process joined its
    gRPC worker threads on the way out, so a stuck scan kept it (and its
    guardian and child) alive for ever."""
    stall = tmp_path / "stall"
    run = interrupted_run(
        plakar,
        ["backup", "-o", f"stall={stall}", "synthetic://x"],
        how="kill-plakar",
        when=Path(f"{stall}.started").exists,
        timeout=60,
    )
    settle(plakar, timeout=30)  # plugin, guardian and the scan's child all ended
    assert run.returncode != 0, run.output
    assert "Traceback" not in run.output, run.output
    assert f"clean-up after the run: touch {stall}.guarded: done" in run.output, run.output
    assert Path(f"{stall}.guarded").exists(), run.output
    # plakar's own packfile directory stays (a Go defer a SIGKILL skips): plakar's, not ours
    assert [n for n in run.tmp_entries() if not n.startswith("plakar-backup-")] == []
    assert plakar.snapshots() == []
