"""S3's address ranges from a file in the ip-ranges.json format, or a cached download when allowed.

General Reference, "AWS IP address ranges": top-level ``prefixes`` (``ip_prefix``) and
``ipv6_prefixes`` (``ipv6_prefix``), each with ``region`` and ``service``. S3 ranges appear with
service ``S3`` and again under ``AMAZON``; only the ``S3`` rows say the range is S3.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from s3_route_agent.errors import AgentError
from s3_route_agent.engine.model import S3Range
from s3_route_agent.statefile import replace_file, set_aside

logger = logging.getLogger(__name__)


class RangesError(AgentError):
    """The ranges file is missing, unreadable or not in the ip-ranges.json format."""


def s3_ranges_from_document(document: dict[str, Any]) -> tuple[S3Range, ...]:
    """The S3 rows of a parsed ip-ranges.json document, IPv4 then IPv6."""
    try:
        rows = [S3Range(p["ip_prefix"], p["region"]) for p in document.get("prefixes", [])
                if p.get("service") == "S3"]
        rows += [S3Range(p["ipv6_prefix"], p["region"]) for p in document.get("ipv6_prefixes", [])
                 if p.get("service") == "S3"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise RangesError("invalid_ranges", f"ip-ranges document lacks field {exc}") from None
    for row in rows:
        # Parsed here, once, so that a damaged range is an error about the file and never a
        # silent non-match in the engine.
        try:
            ipaddress.ip_network(str(row.network), strict=False)
        except ValueError:
            raise RangesError("invalid_ranges", f"ip-ranges document has an S3 range "
                              f"{row.network!r} that does not parse") from None
    return tuple(rows)


def load_s3_ranges_file(path: str | os.PathLike[str]) -> tuple[S3Range, ...]:
    """S3 ranges from a local file; RangesError with a one-line reason otherwise.

    The real file is a few MB and the daemon asks every cycle: it is parsed once per version
    (path, modification time, size), not once per cycle.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise RangesError("ranges_unreadable", f"cannot read S3 ranges file {path}: "
                          f"{exc.strerror}") from None
    return _parse_ranges_file(os.fspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parse_ranges_file(path: str, mtime_ns: int, size: int) -> tuple[S3Range, ...]:
    """Parse one version of a ranges file (the key's mtime and size tell versions apart)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RangesError("ranges_unreadable", f"cannot read S3 ranges file {path}: "
                          f"{exc.strerror}") from None
    except ValueError as exc:
        raise RangesError("invalid_ranges", f"S3 ranges file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RangesError("invalid_ranges", f"S3 ranges file {path} is not an ip-ranges document")
    return s3_ranges_from_document(document)


def load_s3_ranges(file: str | None, download: bool, url: str, cache_dir: str | os.PathLike[str],
                   max_age_hours: float, clock: Callable[[], float] = time.time,
                   timeout_seconds: float = 10.0) -> tuple[S3Range, ...]:
    """S3 ranges from ``file``; else from a cached download refreshed after ``max_age_hours``.

    With neither a file nor downloads allowed, there are no ranges: verdicts still work, the
    evidence just cannot name the S3 region of a public address.
    """
    if file:
        return load_s3_ranges_file(file)
    if not download:
        return ()
    cached = Path(cache_dir) / "ip-ranges.json"
    checksum = cached.with_name(cached.name + ".sha256")
    for attempt in (1, 2):
        try:
            age: float | None = clock() - cached.stat().st_mtime
        except OSError:
            age = None
        if age is None or age > max_age_hours * 3600:
            try:
                with urllib.request.urlopen(url, timeout=timeout_seconds) as response:  # noqa: S310
                    body = response.read()
                json.loads(body)
                replace_file(cached, body, mode=0o644)
                replace_file(checksum, hashlib.sha256(body).hexdigest() + "\n", mode=0o644)
            except (OSError, ValueError) as exc:
                if age is None:
                    raise RangesError("ranges_download_failed",
                                      f"cannot download S3 ranges from {url}: {exc}") from None
                logger.warning("keeping cached S3 ranges (%.0f h old): download failed: %s",
                               age / 3600, exc)
        try:
            _check_download(cached, checksum)
            return load_s3_ranges_file(cached)
        except RangesError as exc:
            # The cached download is the agent's own state: set it aside and download it again
            # (once), rather than fail every cycle until it ages out.
            if exc.kind != "invalid_ranges" or attempt == 2:
                raise
            set_aside(cached, exc.message, clock)
            set_aside(checksum, "belongs to a set-aside download", clock)
    raise AssertionError("unreachable")


def _check_download(cached: Path, checksum: Path) -> None:
    """RangesError(invalid_ranges) when the cached download's SHA-256 (written beside it at
    download time) does not match; a cache without the checksum file (older agent) passes.
    Hashed once per version of the two files, not every cycle."""
    try:
        one, two = os.stat(cached), os.stat(checksum)
    except OSError:
        return
    _check_download_version(os.fspath(cached), os.fspath(checksum),
                            (one.st_ino, one.st_mtime_ns, one.st_size),
                            (two.st_ino, two.st_mtime_ns, two.st_size))


@functools.lru_cache(maxsize=4)
def _check_download_version(cached: str, checksum: str, cached_version: tuple[int, int, int],
                            checksum_version: tuple[int, int, int]) -> None:
    try:
        stated = Path(checksum).read_text("ascii").strip()
        actual = hashlib.sha256(Path(cached).read_bytes()).hexdigest()
    except (OSError, UnicodeDecodeError):
        return
    if stated != actual:
        raise RangesError("invalid_ranges", f"cached S3 ranges {cached} do not match their "
                          "checksum: the file changed after it was downloaded")
