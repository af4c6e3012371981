"""Crash-safe file replacement for the agent's state (caches, spool state, textfiles).

A reader sees the old file or the new one, never a torn one: the data goes to a temporary file in
the same directory, is fsync'd, then renamed over the target (rename(2) is atomic within a file
system), and the directory is fsync'd so the rename itself survives a crash.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename or a new file in it survives a crash (rename(2) is atomic
    but only durable once the directory entry is on disk)."""
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


def replace_file(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably; raises OSError (no temp file left)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    fsync_dir(target.parent)


def replace_json(path: str | os.PathLike[str], document: Any, mode: int = 0o600) -> None:
    """:func:`replace_file` with ``document`` as JSON (sorted keys, one space indent)."""
    replace_file(path, json.dumps(document, indent=1, sort_keys=True) + "\n", mode)
