"""Fault injection for the tests and the fault benchmark (``bench/bench_faults.py``): what an
operator breaks under a running daemon, done to a file system the caller made for it."""

from __future__ import annotations

import os
from pathlib import Path


def fill_filesystem(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte (a tmpfs the caller mounted: never
    the machine's own disks); returns the filler file, whose removal gives the space back."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Large writes first, then smaller, down to single bytes: a file system refuses a write
        # it cannot take whole only at the end, where the short write happens.
        for chunk in (1 << 20, 4096, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * chunk) < chunk:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler
