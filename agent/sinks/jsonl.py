"""JSON Lines file sink with size-bounded rotation that never splits or drops a line a reader
is following.

Rotation renames (``reports.jsonl`` -> ``reports.jsonl.1`` -> ... ``.N``) and never truncates in
place: a follower that has the file open (``tail -F``, the CloudWatch agent's file collector,
which "follows the newest file" and finishes the rotated one through its open descriptor) keeps
reading the old inode to its end, then opens the new name. ``copytruncate`` would lose the lines
written between the copy and the truncate and is deliberately not used. Each line is one
``write(2)`` on an ``O_APPEND`` descriptor, followed by ``fsync``, so a reader never sees half a
line and a crash never loses an acknowledged report. The bound on disk is
``max_bytes * (backups + 1)`` (plus what ``min_rotate_interval`` lets a file grow by).

A follower switches to the newest name once it has drained the old descriptor; if two rotations
happened in between, it would skip the middle generation. Rotation therefore happens at most once
per ``min_rotate_interval`` seconds (a file may grow past ``max_bytes`` meanwhile): a follower that
polls more often than that — the CloudWatch agent polls every second or so — never misses a line.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Optional

from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink
from s3_route_agent.statefile import fsync_dir

logger = logging.getLogger(__name__)


class RotatingLineWriter:
    """Appends whole lines to ``path`` with fsync; rotates by rename before a line would overflow."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backups: int,
                 mode: int = 0o640, min_rotate_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Open (create) ``path`` for appending."""
        if backups < 1:
            raise ValueError("backups must be at least 1 (rotation without a backup drops lines)")
        self.path = Path(path)
        self.max_bytes, self.backups, self.mode = int(max_bytes), int(backups), mode
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._size = 0
        self.min_rotate_interval, self._clock = float(min_rotate_interval), clock
        self._last_rotate: float | None = None
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           self.mode)
        self._size = os.fstat(self._fd).st_size

    def write_line(self, line: str) -> None:
        """Append ``line`` (no newline inside) as one write, then fsync."""
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        if self._fd is None:
            self._open()
        # Rotate before the write so a line never straddles two files; an empty file is never
        # rotated (a single line larger than max_bytes still gets written, alone).
        if (self._size > 0 and self._size + len(data) > self.max_bytes
                and (self._last_rotate is None
                     or self._clock() - self._last_rotate >= self.min_rotate_interval)):
            self.rotate()
        assert self._fd is not None
        view = memoryview(data)
        while view:  # a short write on a regular file is rare (ENOSPC mid-way) but possible
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self._size += len(data)

    def rotate(self) -> None:
        """Shift generations by rename (the oldest beyond ``backups`` is removed), reopen."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}")
        if oldest.exists():
            oldest.unlink()  # an open reader keeps the inode's data until it closes it
        for index in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{index}")
            if src.exists():
                os.rename(src, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            os.rename(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()
        self._last_rotate = self._clock()
        fsync_dir(self.path.parent)
        logger.info("rotated %s", self.path)

    def close(self) -> None:
        """fsync and close."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


class JsonLinesSink(Sink):
    """One report per line in ``path`` (config ``outputs.file``)."""

    name = "file"

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = 10 * 1024 * 1024,
                 backups: int = 5, min_rotate_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Append reports to ``path``, rotating at ``max_bytes`` and keeping ``backups`` old files."""
        self._writer = RotatingLineWriter(path, max_bytes, backups,
                                          min_rotate_interval=min_rotate_interval, clock=clock)

    @property
    def path(self) -> Path:
        """The live file's path."""
        return self._writer.path

    def emit(self, report: Report) -> None:
        """Append the report as one fsync'd line."""
        self._writer.write_line(report.to_json())

    def close(self, timeout: Optional[float] = None) -> None:
        """Close the file (local and quick: ``timeout`` is not needed)."""
        self._writer.close()
