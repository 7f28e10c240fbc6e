"""What crashes and faults leave beside a database: a hot ``-wal``, a checkpoint cut short, a torn last page.

The child processes commit through the app's own code and then die with ``os._exit`` (no close, no
checkpoint), which leaves the ``-wal`` exactly as a kill -9 does. ``checkpoint`` is switched off in the child
to stand for a kill between COMMIT and the checkpoint that follows it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_WAL_HEADER = 32
_FRAME_HEADER = 24

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from pso_desktop.storage import database
    from pso_desktop.storage.reports import ReportStore

    key = bytes.fromhex(sys.stdin.readline().strip())
    reports = json.loads(sys.stdin.readline())
    if sys.argv[2] == "no-checkpoint":
        database.checkpoint = lambda conn: None  # killed after COMMIT, before the checkpoint
    conn = database.open_database(Path(sys.argv[1]), key, create=True, key_proven=True)
    store = ReportStore(conn)
    if sys.argv[3] == "reader":
        # Another connection in the middle of a long read (a backup, an export): the -wal cannot be emptied.
        reader = database.open_database(Path(sys.argv[1]), key, key_proven=True)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM reports").fetchone()
    for report in reports:
        store.save_draft(report)  # one transaction each, as autosave does
    print("saved", flush=True)  # the acknowledgement
    os._exit(0)
    """
)


def save_then_die(
    db_path: Path, key: bytes, reports: list[dict[str, Any]], *, checkpoint: bool = True, reader: bool = False
) -> None:
    """Autosave ``reports`` in a child process that acknowledges, then dies without closing anything;
    ``reader``: while another connection holds a read snapshot."""
    import json

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(db_path),
            "checkpoint" if checkpoint else "no-checkpoint",
            "reader" if reader else "alone",
        ],
        input=key.hex() + "\n" + json.dumps(reports) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout == "saved\n", proc.stderr[-2000:]


def wal_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + "-wal")


def committed_pages(db_path: Path) -> tuple[int, dict[int, bytes]]:
    """The page size and the newest committed image of each page in the ``-wal`` (what a checkpoint copies)."""
    data = wal_path(db_path).read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages: dict[int, bytes] = {}
    pending: dict[int, bytes] = {}
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(data):
        page_no, commit_size = struct.unpack(">II", data[offset : offset + 8])
        pending[page_no] = data[offset + _FRAME_HEADER : offset + _FRAME_HEADER + page_size]
        if commit_size:
            pages.update(pending)
            pending = {}
        offset += _FRAME_HEADER + page_size
    return page_size, pages


def cut_checkpoint_short(db_path: Path, fraction: float) -> int:
    """Copy the first ``fraction`` of the committed ``-wal`` pages into the main file, in page order, as a
    checkpoint does before a kill stops it; the ``-wal`` stays. Returns how many pages were copied."""
    page_size, pages = committed_pages(db_path)
    chosen = sorted(pages)[: int(len(pages) * fraction)]
    with db_path.open("r+b") as handle:
        for page_no in chosen:
            handle.seek((page_no - 1) * page_size)
            handle.write(pages[page_no])
    return len(chosen)


def tear_checkpoint_at_end_of_file(db_path: Path, written: int = 1000) -> None:
    """A checkpoint that ran out of disk space: every page up to the first one beyond the end of the main
    file is copied, and that one only in part (a short write), leaving a torn last page."""
    page_size, pages = committed_pages(db_path)
    size = db_path.stat().st_size
    with db_path.open("r+b") as handle:
        for page_no in sorted(pages):
            handle.seek((page_no - 1) * page_size)
            if (page_no - 1) * page_size >= size:
                handle.write(pages[page_no][:written])
                return
            handle.write(pages[page_no])
    raise AssertionError("no committed page lies beyond the end of the main file")
