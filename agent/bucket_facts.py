"""S3 bucket facts the path depends on: the bucket's region (GetBucketLocation) and its bucket
policy (GetBucketPolicy). Each call's failure is a one-line fact, never an exception.

IAM: ``s3:GetBucketLocation`` and ``s3:GetBucketPolicy`` on the bucket ARN.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent.errors import _scrub

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketFacts:
    """What S3 said about one bucket."""

    bucket: str
    region: str | None
    policy: str | None
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the policy text is left out: it can be long)."""
        return {"bucket": self.bucket, "region": self.region,
                "has_policy": self.policy is not None, "problems": list(self.problems)}


def region_from_location(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region: empty means us-east-1 and the legacy
    ``EU`` means eu-west-1 (S3 API reference, GetBucketLocation,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html)."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def collect_bucket_facts(s3: Any, bucket: str) -> BucketFacts:
    """Ask S3 for ``bucket``'s region and policy. A bucket without a policy has ``policy=None``."""
    problems: list[str] = []
    region = None
    policy = None
    try:
        region = region_from_location(
            s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"))
    except (ClientError, BotoCoreError) as exc:
        problems.append(f"S3 GetBucketLocation {bucket}: {_scrub(str(exc))}")
    try:
        policy = s3.get_bucket_policy(Bucket=bucket).get("Policy")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            problems.append(f"S3 GetBucketPolicy {bucket}: {_scrub(str(exc))}")
    except BotoCoreError as exc:
        problems.append(f"S3 GetBucketPolicy {bucket}: {_scrub(str(exc))}")
    for problem in problems:
        logger.warning("%s", problem)
    return BucketFacts(bucket, region, policy, tuple(problems))
