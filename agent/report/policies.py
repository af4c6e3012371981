"""The report's ``policies`` section: what the bucket policies and the VPC's S3 endpoint policies
say about this host's S3 traffic. Pure: facts in, section out; decided by :mod:`s3_route_agent.engine.iam_policy`.

* Per bucket: its region (GetBucketLocation; another region bypasses this VPC's gateway endpoint,
  VPC user guide, "Gateway endpoints for Amazon S3",
  https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html) and whether its
  policy enforces ``aws:SourceVpce`` / ``aws:SourceVpc``, and for which ids.
* Per S3 endpoint of the VPC: whether its endpoint policy allows the agent's canary actions on
  the canary prefix of ``transfer.bucket`` (or of each configured bucket), and the oracle read
  when the path oracle is configured.

A denial found here is a policy fact (S3 would answer 403), never a network failure: the section
never changes a target's path or status.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from s3_route_agent.collectors.bucket_facts import BucketFacts
from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.model import Facts, VpcEndpoint
from s3_route_agent.engine.iam_policy import PolicyError, endpoint_allows, source_enforcement

logger = logging.getLogger(__name__)


def s3_endpoints(facts: Facts) -> list[VpcEndpoint]:
    """The VPC's S3 endpoints (gateway and interface, any region's ``com.amazonaws.R.s3``)."""
    if facts.inventory is None:
        return []
    return [e for e in facts.inventory.endpoints if e.service_name.endswith(".s3")]


def canary_buckets(config: AgentConfig) -> tuple[str, ...]:
    """The buckets the canary transfer writes to: ``transfer.bucket``, else each bucket."""
    return (config.transfer.bucket,) if config.transfer.bucket else tuple(config.buckets)


def _bucket_entry(info: BucketFacts, facts: Facts, source: str) -> dict[str, Any]:
    region = facts.identity.region if facts.identity else None
    vpc_id = facts.inventory.vpc_id if facts.inventory else None
    entry: dict[str, Any] = {
        "bucket": info.bucket, "region": info.region,
        "other_region": (info.region != region) if info.region and region else None,
        "policy": ("unreadable" if not info.policy_readable
                   else "present" if info.policy is not None else "none"),
        "enforced": None, "vpce_ids": [], "vpc_ids": [], "decisions": {}, "evidence": [],
        "problems": list(info.problems), "source": source}
    if entry["other_region"]:
        entry["evidence"].append(
            f"{info.bucket} is in {info.region} (GetBucketLocation), not this VPC's {region}: "
            "this VPC's gateway endpoint does not carry it.")
    if not info.policy_readable:
        # An unreadable policy is not an absent one (AccessDenied is a fact about this role).
        entry["evidence"].append(f"The bucket policy of {info.bucket} could not be read "
                                 f"({info.policy_error}); whether it ties access to an endpoint "
                                 "is unknown.")
        return entry
    endpoints = [(e.id, vpc_id) for e in s3_endpoints(facts)]
    try:
        enforcement = source_enforcement(info.policy, info.bucket, endpoints=endpoints)
    except PolicyError as exc:
        entry["problems"].append(f"bucket policy of {info.bucket}: {exc}")
        return entry
    entry.update(enforced=enforcement.enforced, vpce_ids=list(enforcement.vpce_ids),
                 vpc_ids=list(enforcement.vpc_ids), decisions=dict(enforcement.decisions))
    entry["evidence"].extend(enforcement.evidence)
    return entry


def _endpoint_entries(endpoint: VpcEndpoint, facts: Facts, config: AgentConfig,
                      ) -> list[dict[str, Any]]:
    vpc_id = facts.inventory.vpc_id if facts.inventory else None
    checks: list[tuple[str, str, str, tuple[str, ...] | None]] = [
        ("canary", bucket, config.transfer.prefix, None) for bucket in canary_buckets(config)]
    if config.oracle.bucket:
        checks.append(("oracle", config.oracle.bucket, config.oracle.prefix, ("s3:GetObject",)))
    out = []
    for purpose, bucket, prefix, actions in checks:
        try:
            check = (endpoint_allows(endpoint.policy_document, endpoint.id, bucket, prefix,
                                     vpc_id=vpc_id) if actions is None else
                     endpoint_allows(endpoint.policy_document, endpoint.id, bucket, prefix,
                                     vpc_id=vpc_id, actions=actions))
        except PolicyError as exc:
            out.append({"endpoint_id": endpoint.id, "type": endpoint.type.lower(),
                        "purpose": purpose, "bucket": bucket, "prefix": prefix, "allowed": [],
                        "denied": {}, "default_policy": False, "allows_all": False,
                        "problems": [f"endpoint policy of {endpoint.id}: {exc}"]})
            continue
        out.append({"endpoint_id": endpoint.id, "type": endpoint.type.lower(),
                    "purpose": purpose, "bucket": bucket, "prefix": prefix,
                    **{k: v for k, v in check.to_dict().items() if k != "endpoint_id"},
                    "problems": []})
    return out


def policies_section(config: AgentConfig, facts: Facts, bucket_facts: Iterable[BucketFacts],
                     sources: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``policies`` section of the report, with one finding sentence per policy denial."""
    sources = sources or {}
    buckets = [_bucket_entry(b, facts, sources.get(b.bucket, "api")) for b in bucket_facts]
    endpoints = [entry for e in s3_endpoints(facts) for entry in _endpoint_entries(e, facts, config)]
    findings: list[str] = []
    this_vpc = {e.id for e in s3_endpoints(facts)}
    for entry in buckets:
        if entry["enforced"]:
            ids = entry["vpce_ids"] + entry["vpc_ids"]
            through_here = [name for name, effect in entry["decisions"].items()
                            if name != "public" and effect != "deny"
                            and any(i in name for i in this_vpc)]
            findings.append(f"bucket {entry['bucket']} enforces aws:SourceVpce/aws:SourceVpc "
                            f"({', '.join(ids) or 'no ids named'}): requests from outside "
                            "those endpoints get 403 from S3 (a policy fact, not a network "
                            "failure)" + ("" if through_here or not this_vpc else
                                          "; none of this VPC's endpoints is allowed") + ".")
    for entry in endpoints:
        for action, why in entry["denied"].items():
            findings.append(f"endpoint {entry['endpoint_id']} policy does not allow {action} on "
                            f"{entry['bucket']}/{entry['prefix']} ({why}): the {entry['purpose']} "
                            "request through it gets 403 (a policy fact, not a network failure).")
    return {"buckets": buckets, "endpoints": endpoints, "findings": findings}
