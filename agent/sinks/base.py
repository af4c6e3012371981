"""The sink interface: every enabled sink receives every report document."""

from __future__ import annotations

import abc
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


class Sink(abc.ABC):
    """Where reports go. ``emit`` must not lose a report it accepted; errors are logged, not raised
    to the daemon loop (the daemon still guards every call)."""

    name: str = "sink"

    @abc.abstractmethod
    def emit(self, report: dict[str, Any]) -> None:
        """Deliver (or durably queue) one report."""

    def flush(self) -> None:
        """Push out anything buffered (called after each cycle and at shutdown)."""

    def close(self) -> None:
        """Flush and release files and clients."""
        self.flush()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename or a new file in it survives a crash (rename(2) is atomic but
    only durable once the directory entry is on disk — POSIX fsync, ext4 data=ordered caveat)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:  # some filesystems refuse O_DIRECTORY opens; durability then is theirs
        logger.debug("cannot open directory %s for fsync: %s", path, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.debug("fsync of directory %s failed: %s", path, exc)
    finally:
        os.close(fd)
