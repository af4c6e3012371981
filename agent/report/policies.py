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
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.iam_policy import (EndpointPolicyCheck, PolicyError, endpoint_allows,
                                              source_enforcement)
from s3_route_agent.engine.model import BucketFacts, Facts, TargetVerdict, VpcEndpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketPolicyEntry:
    """One bucket: its region and whether its policy ties access to endpoints."""

    bucket: str
    region: str | None
    other_region: bool | None        # in another region than this host (None: unknown)
    policy: str                      # "present", "none" or "unreadable"
    source: str                      # "api" or "cache"
    enforced: bool | None = None     # the policy denies requests from outside its endpoints
    vpce_ids: tuple[str, ...] = ()
    vpc_ids: tuple[str, ...] = ()
    decisions: Mapping[str, str] | None = None   # scenario -> effect
    evidence: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"bucket": self.bucket, "region": self.region, "other_region": self.other_region,
                "policy": self.policy, "enforced": self.enforced,
                "vpce_ids": list(self.vpce_ids), "vpc_ids": list(self.vpc_ids),
                "decisions": dict(self.decisions or {}), "evidence": list(self.evidence),
                "problems": list(self.problems), "source": self.source}


@dataclass(frozen=True)
class EndpointPolicyEntry:
    """Whether one S3 endpoint's policy lets one purpose's requests (canary, oracle) through."""

    endpoint_id: str
    type: str                        # "gateway" or "interface"
    purpose: str                     # "canary" or "oracle"
    bucket: str
    prefix: str
    check: EndpointPolicyCheck | None   # None: the policy could not be evaluated (problems)
    problems: tuple[str, ...] = ()

    @property
    def denied(self) -> Mapping[str, str]:
        """Action -> why it is denied."""
        return self.check.denied if self.check else {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        check = self.check
        return {"endpoint_id": self.endpoint_id, "type": self.type, "purpose": self.purpose,
                "bucket": self.bucket, "prefix": self.prefix,
                "allowed": list(check.allowed) if check else [],
                "denied": dict(check.denied) if check else {},
                "default_policy": check.default_policy if check else False,
                "allows_all": check.allows_all if check else False,
                "problems": list(self.problems)}


@dataclass(frozen=True)
class PoliciesSection:
    """The report's ``policies`` section."""

    buckets: tuple[BucketPolicyEntry, ...]
    endpoints: tuple[EndpointPolicyEntry, ...]
    findings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"buckets": [b.to_dict() for b in self.buckets],
                "endpoints": [e.to_dict() for e in self.endpoints],
                "findings": list(self.findings)}


def canary_buckets(config: AgentConfig) -> tuple[str, ...]:
    """The buckets the canary transfer writes to: ``transfer.bucket``, else each bucket."""
    return (config.transfer.bucket,) if config.transfer.bucket else tuple(config.buckets)


def _s3_endpoints(facts: Facts) -> tuple[VpcEndpoint, ...]:
    return facts.inventory.s3_endpoints() if facts.inventory else ()


def _bucket_entry(info: BucketFacts, facts: Facts, source: str) -> BucketPolicyEntry:
    region = facts.region
    vpc_id = facts.inventory.vpc_id if facts.inventory else None
    other = (info.region != region) if info.region and region else None
    policy = ("unreadable" if not info.policy_readable
              else "present" if info.policy is not None else "none")
    evidence: list[str] = []
    if other:
        evidence.append(
            f"{info.bucket} is in {info.region} (GetBucketLocation), not this VPC's {region}: "
            "this VPC's gateway endpoint does not carry it.")
    base = dict(bucket=info.bucket, region=info.region, other_region=other, policy=policy,
                source=source, decisions={})
    if not info.policy_readable:
        # An unreadable policy is not an absent one (AccessDenied is a fact about this role).
        evidence.append(f"The bucket policy of {info.bucket} could not be read "
                        f"({info.policy_error}); whether it ties access to an endpoint "
                        "is unknown.")
        return BucketPolicyEntry(**base, evidence=tuple(evidence), problems=info.problems)
    endpoints = [(e.id, vpc_id) for e in _s3_endpoints(facts)]
    owners = {e.id: e.owner_id for e in _s3_endpoints(facts) if e.owner_id}
    try:
        enforcement = source_enforcement(info.policy, info.bucket, endpoints=endpoints,
                                         owners=owners, region=facts.region)
    except PolicyError as exc:
        return BucketPolicyEntry(**base, evidence=tuple(evidence), problems=(
            *info.problems, f"bucket policy of {info.bucket}: {exc}"))
    base["decisions"] = dict(enforcement.decisions)
    return BucketPolicyEntry(**base, enforced=enforcement.enforced,
                             vpce_ids=enforcement.vpce_ids, vpc_ids=enforcement.vpc_ids,
                             evidence=(*evidence, *enforcement.evidence), problems=info.problems)


def _endpoint_entries(endpoint: VpcEndpoint, facts: Facts, config: AgentConfig,
                      ) -> list[EndpointPolicyEntry]:
    vpc_id = facts.inventory.vpc_id if facts.inventory else None
    checks: list[tuple[str, str, str, tuple[str, ...] | None]] = [
        ("canary", bucket, config.transfer.prefix, None) for bucket in canary_buckets(config)]
    if config.oracle.bucket:
        checks.append(("oracle", config.oracle.bucket, config.oracle.prefix, ("s3:GetObject",)))
    out = []
    for purpose, bucket, prefix, actions in checks:
        common = dict(endpoint_id=endpoint.id, type=endpoint.kind, purpose=purpose,
                      bucket=bucket, prefix=prefix)
        try:
            owner = dict(vpce_account=endpoint.owner_id, region=facts.region)
            check = (endpoint_allows(endpoint.policy_document, endpoint.id, bucket, prefix,
                                     vpc_id=vpc_id, **owner) if actions is None else
                     endpoint_allows(endpoint.policy_document, endpoint.id, bucket, prefix,
                                     vpc_id=vpc_id, actions=actions, **owner))
        except PolicyError as exc:
            out.append(EndpointPolicyEntry(**common, check=None, problems=(
                f"endpoint policy of {endpoint.id}: {exc}",)))
            continue
        out.append(EndpointPolicyEntry(**common, check=check))
    return out


def unexplained_denials(section: PoliciesSection, verdicts: Iterable[TargetVerdict],
                        ) -> tuple[str, ...]:
    """A finding for each test transfer S3 refused (policy_denied) that neither the bucket's
    policy nor the endpoint policy on its path explains.

    Other policies can deny an S3 request: resource control policies and service control
    policies of AWS Organizations, the role's identity policy or permissions boundary, a session
    policy (IAM user guide, "Policy evaluation logic",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html;
    Organizations user guide, "Resource control policies (RCPs)",
    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html).
    """
    buckets = {b.bucket: b for b in section.buckets}
    endpoints = {(e.endpoint_id, e.bucket): e for e in section.endpoints if e.purpose == "canary"}
    out: list[str] = []
    for verdict in verdicts:
        transfer = verdict.transfer
        if transfer is None or transfer.outcome != "policy_denied" or transfer.plan is None:
            continue
        bucket = transfer.plan.bucket
        entry = buckets.get(bucket)
        via = {a.endpoint_id for a in verdict.addresses if a.endpoint_id}
        # The bucket policy's decision for a request arriving this way ("public", or through
        # one of the endpoints the verdict names); an explicit Deny explains the refusal, and
        # so does a policy the agent could not read or judge for this way.
        relevant = [effect for name, effect in ((entry.decisions or {}) if entry else {}).items()
                    if (any(v in name for v in via) if via else name == "public")]
        bucket_explains = (entry is None or entry.policy == "unreadable" or "deny" in relevant
                           or (entry.policy == "present" and not relevant))
        endpoint_explains = any(endpoints[(v, bucket)].denied or endpoints[(v, bucket)].problems
                                for v in via if (v, bucket) in endpoints)
        if bucket_explains or endpoint_explains:
            continue
        out.append(f"{verdict.target.name}: S3 refused the test transfer to {bucket} "
                   f"({transfer.message}), yet neither the bucket policy nor the endpoint "
                   "policy on its path denies it: look at the organization's resource control "
                   "policies (RCPs) and service control policies (SCPs), and at this role's "
                   "identity policy and permissions boundary.")
    return tuple(out)


def policies_section(config: AgentConfig, facts: Facts, bucket_facts: Iterable[BucketFacts],
                     sources: Mapping[str, str] | None = None) -> PoliciesSection:
    """The ``policies`` section of the report, with one finding sentence per policy denial."""
    sources = sources or {}
    buckets = tuple(_bucket_entry(b, facts, sources.get(b.bucket, "api")) for b in bucket_facts)
    endpoints = tuple(entry for e in _s3_endpoints(facts)
                      for entry in _endpoint_entries(e, facts, config))
    findings: list[str] = []
    this_vpc = {e.id for e in _s3_endpoints(facts)}
    for entry in buckets:
        if entry.enforced:
            ids = entry.vpce_ids + entry.vpc_ids
            through_here = [name for name, effect in (entry.decisions or {}).items()
                            if name != "public" and effect != "deny"
                            and any(i in name for i in this_vpc)]
            findings.append(f"bucket {entry.bucket} enforces aws:SourceVpce/aws:SourceVpc "
                            f"({', '.join(ids) or 'no ids named'}): requests from outside "
                            "those endpoints get 403 from S3 (a policy fact, not a network "
                            "failure)" + ("" if through_here or not this_vpc else
                                          "; none of this VPC's endpoints is allowed") + ".")
    for entry in endpoints:
        for action, why in entry.denied.items():
            findings.append(f"endpoint {entry.endpoint_id} policy does not allow {action} on "
                            f"{entry.bucket}/{entry.prefix} ({why}): the {entry.purpose} "
                            "request through it gets 403 (a policy fact, not a network failure).")
    return PoliciesSection(buckets, endpoints, tuple(findings))
