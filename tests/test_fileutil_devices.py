"""Outputs that are not regular files are written in place, never renamed over: a character
device made with mknod (skipped where mknod is not allowed) and a FIFO keep their kind. The tests
make their own device nodes: run on a broken build, a test writing to the real /dev/null would
replace the machine's /dev/null (as happened once while this test was written)."""

import os
import stat
import subprocess
import threading

import pytest

from nnetavg.fileutil import atomic_output


def own_null(tmp_path):
    """A character device like /dev/null (major 1, minor 3) inside the test's own directory."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("mknod is not allowed here")
    return dev


def test_char_device_is_written_not_replaced(tmp_path):
    dev = own_null(tmp_path)
    with atomic_output(str(dev)) as f:
        f.write(b"x" * 100000)
    assert stat.S_ISCHR(os.stat(dev).st_mode) and not [p for p in os.listdir(tmp_path) if p != "null"]


def test_fifo_receives_the_bytes(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    with atomic_output(str(fifo)) as f:
        f.write(b"counts")
    reader.join(10)
    if reader.is_alive():           # the bytes went elsewhere: unblock the reader, then fail
        open(fifo, "wb").close()
        reader.join(10)
    assert got == [b"counts"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_command_writing_to_a_device_leaves_it_a_device(tmp_path):
    dev = own_null(tmp_path)
    ali = tmp_path / "ali.txt"
    ali.write_text("u 1 2 2\n")
    subprocess.run(["analyze-counts", "--counts-dim=3", f"ark,t:{ali}", str(dev)], check=True, capture_output=True,
                   timeout=60)
    assert stat.S_ISCHR(os.stat(dev).st_mode)


def test_regular_files_stay_atomic(tmp_path):
    target = tmp_path / "m"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as f:
            f.write(b"new, half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
