"""Crash-safe state files: atomic replacement, and reading back what may have been damaged.

A reader sees the old file or the new one, never a torn one: the data goes to a temporary file in
the same directory, is fsync'd, then renamed over the target (rename(2) is atomic within a file
system), and the directory is fsync'd so the rename itself survives a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

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


def replace_file(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o600,
                 durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably; raises OSError (no temp file left).

    ``durable=False`` keeps the atomic rename but skips both fsyncs (each can take milliseconds
    on a busy disk): for caches, where a write lost to a crash only means the facts are fetched
    again (a reader treats a missing or torn file as no cache)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(target.parent)


def replace_json(path: str | os.PathLike[str], document: Any, mode: int = 0o600,
                 durable: bool = True) -> None:
    """:func:`replace_file` with ``document`` as JSON (sorted keys, one space indent)."""
    replace_file(path, json.dumps(document, indent=1, sort_keys=True) + "\n", mode, durable)


# ---- reading state back --------------------------------------------------------------------------
#
# Every state file the agent keeps (caches, the spool's cursor, the observed state, pending
# queries) is only ever an optimisation or a cursor that can be rebuilt. A file that cannot be
# read back (binary garbage, a bit flip, a hand edit, another version) must therefore never stop a
# run: it is renamed out of the way with a ``.corrupt-UNIXTIME`` suffix (kept for a person to
# look at, and so that the warning is logged once, not on every run), and rebuilt.

CHECKSUM_KEY = "sha256"
_ASIDE_FAILED: set[str] = set()     # files that could not be renamed: warned about once


class StateFileError(ValueError):
    """A state file's content is not what the agent wrote (not JSON, wrong shape, bad checksum)."""


def set_aside(path: str | os.PathLike[str], why: str,
              clock: Callable[[], float] = time.time) -> Path | None:
    """Rename the unreadable state file ``path`` to ``PATH.corrupt-UNIXTIME`` (logged once).

    Returns the new name, or None when there was nothing to move or it could not be moved (then
    the caller ignores the file; the warning is still given only once per process).
    """
    source = Path(path)
    aside = source.with_name(f"{source.name}.corrupt-{int(clock())}")
    try:
        os.replace(source, aside)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if str(source) not in _ASIDE_FAILED:
            _ASIDE_FAILED.add(str(source))
            logger.warning("state file %s is unreadable (%s) and cannot be set aside (%s); "
                           "ignoring it", source, why, exc.strerror or exc)
        return None
    logger.warning("state file %s is unreadable (%s); set aside as %s and rebuilt", source,
                   " ".join(why.split())[:200], aside.name)
    return aside


def content_checksum(document: dict[str, Any]) -> str:
    """SHA-256 over ``document`` without its checksum key, in a canonical JSON form (sorted keys,
    no spaces, ASCII), so a value changed on disk is detected even when it is still valid JSON."""
    body = {k: v for k, v in document.items() if k != CHECKSUM_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def with_checksum(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its :func:`content_checksum` under ``sha256``."""
    return {**document, CHECKSUM_KEY: content_checksum(document)}


def read_state_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in the state file ``path``; None when it does not exist.

    Raises :class:`StateFileError` when the bytes are not UTF-8 JSON. OSError other than a missing
    file (permissions, I/O) is raised as it is: such a file is not corrupt and must not be moved.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateFileError(f"not JSON: {type(exc).__name__}: {exc}") from None


def check_checksum(document: Any) -> dict[str, Any]:
    """``document`` when it is an object carrying the checksum :func:`with_checksum` wrote over
    its content; StateFileError otherwise (a changed value, a missing checksum)."""
    if not isinstance(document, dict):
        raise StateFileError("not a JSON object")
    stated = document.get(CHECKSUM_KEY)
    if not isinstance(stated, str):
        raise StateFileError("no checksum")
    if stated != content_checksum(document):
        raise StateFileError("checksum mismatch: the content changed after it was written")
    return document
