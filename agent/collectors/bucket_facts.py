"""S3 bucket facts the path depends on: the bucket's region (GetBucketLocation) and its bucket
policy (GetBucketPolicy). Each call's failure is a one-line fact, never an exception.

IAM: ``s3:GetBucketLocation`` and ``s3:GetBucketPolicy`` on the bucket ARN.

The facts are cached in ``state_dir`` for the inventory TTL (:class:`BucketFactsCache`), so a warm
run makes no S3 control call: bucket regions and policies change as rarely as route tables.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from s3_route_agent.engine.model import BucketFacts
from s3_route_agent.errors import one_line_detail
from s3_route_agent.statefile import (StateFileError, check_checksum, read_state_json, replace_json, set_aside,
                                      with_checksum)

logger = logging.getLogger(__name__)

CACHE_FILE = "bucket-facts.json"
# 2: a SHA-256 over the content (``sha256``); format 1 files are refetched once.
CACHE_FORMAT = 2


def region_from_location(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region: empty means us-east-1 and the legacy
    ``EU`` means eu-west-1 (S3 API reference, GetBucketLocation,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html)."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def _code(exc: Exception) -> str:
    from botocore.exceptions import BotoCoreError, ClientError  # raised, so already imported
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    if isinstance(exc, BotoCoreError):
        return "network"
    # botocore parses GetBucketLocation's body itself and raises the XML parser's error when
    # something else (a proxy's HTML page, a non-S3 endpoint) answered.
    return "invalid_response"


def collect_bucket_facts(s3: Any, bucket: str) -> BucketFacts:
    """Ask S3 for ``bucket``'s region and policy. A bucket without a policy has ``policy=None``.

    AccessDenied (no s3:GetBucketPolicy for this role, or a bucket policy denying it) and the
    other failures are recorded as problems with their error code; they are facts about the
    bucket, not about the network path.
    """
    calls = {"n": 0}

    def _count(**_: Any) -> None:
        calls["n"] += 1
    s3.meta.events.register("before-call.s3.*", _count)
    problems: list[str] = []
    region = policy = location_error = policy_error = None
    try:
        region = region_from_location(
            s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"))
    except Exception as exc:  # noqa: BLE001 - any failure is a fact (see _code), never a crash
        location_error = _code(exc)
        problems.append(f"S3 GetBucketLocation {bucket}: {one_line_detail(str(exc))}")
    try:
        policy = s3.get_bucket_policy(Bucket=bucket).get("Policy")
    except Exception as exc:  # noqa: BLE001 - as above
        # NoSuchBucketPolicy is an answer: the bucket has no policy (S3 API reference,
        # GetBucketPolicy errors).
        if _code(exc) != "NoSuchBucketPolicy":
            policy_error = _code(exc)
            problems.append(f"S3 GetBucketPolicy {bucket}: {one_line_detail(str(exc))}")
    s3.meta.events.unregister("before-call.s3.*", _count)
    for problem in problems:
        logger.warning("%s", problem)
    return BucketFacts(bucket, region, policy, tuple(problems), location_error, policy_error,
                       calls["n"])


class BucketFactsCache:
    """Bucket facts under ``state_dir`` (one JSON file), fresh for ``ttl_seconds``.

    Written atomically (temporary file + ``os.replace``, mode 0600) with a SHA-256 over its
    content; a corrupt file is set aside (``.corrupt-UNIXTIME``) and rebuilt, never raised and
    never trusted: the cache only saves API calls.
    """

    def __init__(self, state_dir: Path, ttl_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        """A cache in ``state_dir`` whose entries live ``ttl_seconds``."""
        self.state_dir = Path(state_dir)
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @property
    def path(self) -> Path:
        """The cache file."""
        return self.state_dir / CACHE_FILE

    def _read(self) -> dict[str, Any]:
        try:
            document = read_state_json(self.path)
            if document is None:
                return {}
            if not isinstance(document, dict):
                raise StateFileError("not a JSON object")
            if document.get("format") != CACHE_FORMAT:
                return {}        # another version's file: replaced by the next store
            check_checksum(document)
            buckets = document.get("buckets")
            if not isinstance(buckets, dict):
                raise StateFileError("no buckets mapping")
            for bucket, entry in buckets.items():
                if not isinstance(entry, dict):
                    raise StateFileError(f"entry of {bucket!r} is not an object")
                float(entry.get("fetched_at", 0))
        except OSError as exc:
            logger.warning("ignoring unreadable bucket-facts cache %s: %s", self.path, exc)
            return {}
        except (ValueError, TypeError) as exc:
            set_aside(self.path, f"{type(exc).__name__}: {exc}", self.clock)
            return {}
        return buckets

    def load_fresh(self) -> dict[str, BucketFacts]:
        """Every bucket's cached facts that are still fresh, from one read of the file."""
        now = self.clock()
        fresh: dict[str, BucketFacts] = {}
        for bucket, entry in self._read().items():
            if not isinstance(entry, dict):
                continue
            age = now - float(entry.get("fetched_at", 0))
            if 0 <= age < self.ttl_seconds:
                fresh[bucket] = BucketFacts(
                    bucket, entry.get("region"), entry.get("policy"),
                    tuple(entry.get("problems") or ()), entry.get("location_error"),
                    entry.get("policy_error"), 0)
        return fresh

    def store(self, facts: Iterable[BucketFacts]) -> bool:
        """Add the cacheable ``facts`` to the file; False when it cannot be written."""
        buckets = self._read()
        now = self.clock()
        for item in facts:
            if item.cacheable:
                buckets[item.bucket] = {
                    "region": item.region, "policy": item.policy,
                    "problems": list(item.problems), "location_error": item.location_error,
                    "policy_error": item.policy_error, "fetched_at": now}
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # A cache: a write lost to a crash is fetched again (no fsync).
            replace_json(self.path, with_checksum({"format": CACHE_FORMAT, "buckets": buckets}),
                         durable=False)
        except OSError as exc:
            logger.warning("cannot write bucket-facts cache %s: %s", self.path,
                           exc.strerror or exc)
            return False
        return True
