"""S3's address ranges from a file in the ip-ranges.json format, or a cached download when allowed.

General Reference, "AWS IP address ranges": top-level ``prefixes`` (``ip_prefix``) and
``ipv6_prefixes`` (``ipv6_prefix``), each with ``region`` and ``service``. S3 ranges appear with
service ``S3`` and again under ``AMAZON``; only the ``S3`` rows say the range is S3.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from s3_route_agent.errors import AgentError
from s3_route_agent.engine.model import S3Range
from s3_route_agent.statefile import replace_file

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
    try:
        age = clock() - cached.stat().st_mtime
    except OSError:
        age = None
    if age is None or age > max_age_hours * 3600:
        try:
            with urllib.request.urlopen(url, timeout=timeout_seconds) as response:  # noqa: S310
                body = response.read()
            json.loads(body)
            replace_file(cached, body, mode=0o644)
        except (OSError, ValueError) as exc:
            if age is None:
                raise RangesError("ranges_download_failed",
                                  f"cannot download S3 ranges from {url}: {exc}") from None
            logger.warning("keeping cached S3 ranges (%.0f h old): download failed: %s",
                           age / 3600, exc)
    return load_s3_ranges_file(cached)
