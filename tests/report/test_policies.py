"""The policies section's finding for a denial no bucket or endpoint policy explains (issue 10
section 4: resource control policies and SCPs as possible sources). Pure."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.evidence import TransferPlan, TransferResult
from s3_route_agent.engine.iam_policy import EndpointPolicyCheck
from s3_route_agent.engine.model import (AddressVerdict, Expect, PathKind, Status, Target,
                                         TargetVerdict)
from s3_route_agent.report.policies import (BucketPolicyEntry, EndpointPolicyEntry,
                                            PoliciesSection, unexplained_denials)

BUCKET = "canary-bucket"


def verdict(outcome: str, endpoint: str | None = "vpce-gw") -> TargetVerdict:
    plan = TransferPlan("h", BUCKET, "https://h", "virtual", "eu-west-1")
    return TargetVerdict(
        target=Target("t", "h", Expect.GATEWAY, BUCKET), path=PathKind.GATEWAY,
        status=Status.WARNING, reason="r",
        addresses=(AddressVerdict("198.51.100.10", "ipv4", PathKind.GATEWAY,
                                  endpoint_id=endpoint),),
        transfer=TransferResult(host="h", outcome=outcome, message="S3 refused the PUT "
                                "(AccessDenied, HTTP 403)", plan=plan))


def section(decisions: dict[str, str] | None, policy: str = "present",
            endpoint_denied: dict[str, str] | None = None) -> PoliciesSection:
    bucket = BucketPolicyEntry(BUCKET, "eu-west-1", False, policy, "api", decisions=decisions)
    check = EndpointPolicyCheck("vpce-gw", (), endpoint_denied or {}, endpoint_denied is None)
    endpoint = EndpointPolicyEntry("vpce-gw", "gateway", "canary", BUCKET, "p/", check)
    return PoliciesSection((bucket,), (endpoint,), ())


@pytest.mark.parametrize("name,sect,v,finding", [
    ("both policies allow: RCP/SCP named",
     section({"public": "deny", "via vpce-gw in vpc-1": "allow"}), verdict("policy_denied"),
     True),
    ("no bucket policy, default endpoint policy", section({}, policy="none"),
     verdict("policy_denied"), True),
    ("the bucket policy denies this endpoint",
     section({"public": "deny", "via vpce-gw in vpc-1": "deny"}), verdict("policy_denied"),
     False),
    ("the endpoint policy denies",
     section({"via vpce-gw in vpc-1": "allow"}, endpoint_denied={"s3:PutObject": "no"}),
     verdict("policy_denied"), False),
    ("unreadable bucket policy explains nothing either way", section(None, policy="unreadable"),
     verdict("policy_denied"), False),
    ("public path: the public decision counts", section({"public": "deny"}),
     verdict("policy_denied", endpoint=None), False),
    ("no denial, no finding", section({}, policy="none"), verdict("ok"), False),
])
def test_unexplained_denials(name, sect, v, finding):
    found = unexplained_denials(sect, [v])
    assert bool(found) is finding
    if finding:
        assert "resource control policies (RCPs)" in found[0] and "(SCPs)" in found[0]
