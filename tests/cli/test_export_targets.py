"""Exports go only to files (issue 9, item 8). As root, ``export --out /dev/full`` replaced the device node with
the export and said it succeeded. A device, a FIFO, a folder, a socket or a symbolic link (to any of those, or
to anything) is refused with one sentence and left exactly as it was; a regular file or a new name is fine.
The window's File > Export shares the service: tests/ui/test_file_actions.py.

The device is first a private node of /dev/full's own kind (``mknod``, as root) in the test's folder, so that
a regression cannot destroy the machine's /dev/full; only once that is refused is the real /dev/full tried.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tests.support.cli import SECRET, Result, assert_clean_failure, run_cli

root_only = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (mknod)")


@pytest.fixture
def profile(pso_home: Path) -> Path:
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    examples = Path(__file__).resolve().parents[2] / "resources" / "examples" / "fall-incident.json"
    added = run_cli(pso_home, "report", "add", str(examples), "--password-stdin", stdin=SECRET + "\n")
    assert added.code == 0, added.err
    return pso_home


def _export(home: Path, out: Path, fmt: str = "json") -> Result:
    return run_cli(home, "export", "--format", fmt, "--out", str(out), "--password-stdin", stdin=SECRET + "\n")


def _identity(path: Path) -> tuple[int, int, int, int]:
    info = os.lstat(path)
    return info.st_mode, info.st_ino, info.st_rdev, info.st_size


def _refused(home: Path, out: Path, words: str, fmt: str = "json") -> None:
    before = _identity(out)
    result = _export(home, out, fmt)
    assert_clean_failure(result)
    reason = result.err.strip().splitlines()[-1]
    assert words in reason and "Exported" not in result.out, result.err
    assert _identity(out) == before  # not replaced, not written to
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


@root_only
def test_a_device_is_refused_and_left_in_place(profile: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    for fmt in ("json", "csv", "fhir"):
        _refused(profile, full, "device", fmt)
    assert stat.S_ISCHR(os.lstat(full).st_mode)
    real = Path("/dev/full")
    if stat.S_ISCHR(os.lstat(real).st_mode):  # safe now: the same kind of node was refused just above
        _refused(profile, real, "device")
        assert stat.S_ISCHR(os.lstat(real).st_mode) and os.lstat(real).st_rdev == os.makedev(1, 7)


def test_a_fifo_a_socket_and_links_are_refused(profile: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(profile, fifo, "pipe")
    with socket.socket(socket.AF_UNIX) as listening:
        sock = tmp_path / "sock"
        listening.bind(str(sock))
        _refused(profile, sock, "socket")
    to_null = tmp_path / "to-null"
    to_null.symlink_to("/dev/null")
    _refused(profile, to_null, "link")
    assert os.readlink(to_null) == "/dev/null"
    folder = tmp_path / "folder"
    folder.mkdir()
    to_folder = tmp_path / "to-folder"
    to_folder.symlink_to(folder)
    _refused(profile, to_folder, "link")
    to_fifo = tmp_path / "to-pipe"
    to_fifo.symlink_to(fifo)
    _refused(profile, to_fifo, "link")
    regular = tmp_path / "regular.json"
    regular.write_text("old")
    to_regular = tmp_path / "to-regular"
    to_regular.symlink_to(regular)
    _refused(profile, to_regular, "link")
    assert regular.read_text() == "old"


def test_a_regular_file_or_a_new_name_is_written(profile: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    assert _export(profile, new).code == 0
    assert stat.S_ISREG(os.lstat(new).st_mode)
    assert _export(profile, new).code == 0  # replacing a regular file is fine
