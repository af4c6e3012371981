"""Table tests of the policy evaluator: AWS documentation examples for aws:SourceVpce /
aws:SourceVpc and endpoint policies, the seeds' policies, and each condition operator.

moto ignores policy conditions, so these are decided here from tables (no server involved).
"""

from __future__ import annotations

import json

import pytest

from s3_route_agent.engine.iam_policy import (ALLOW, DENY, IMPLICIT_DENY, PolicyError, Request, condition_holds,
                          context_for, endpoint_allows, endpoint_request, evaluate, load_policy,
                          source_enforcement)

OBJ = "arn:aws:s3:::awsexamplebucket1/photo.jpg"
BUCKET_ARN = "arn:aws:s3:::awsexamplebucket1"
ROLE = "arn:aws:iam::111122223333:role/agent"

# S3 user guide, "Controlling access from VPC endpoints with bucket policies"
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html)
DOC_SPECIFIC_VPCE = {
    "Version": "2012-10-17", "Id": "Policy1415115909152",
    "Statement": [{"Sid": "Access-to-specific-VPCE-only", "Principal": "*", "Action": "s3:*",
                   "Effect": "Deny",
                   "Resource": ["arn:aws:s3:::awsexamplebucket1",
                                "arn:aws:s3:::awsexamplebucket1/*"],
                   "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}]}
DOC_SPECIFIC_VPC = {
    "Version": "2012-10-17", "Id": "Policy1415115909153",
    "Statement": [{"Sid": "Access-to-specific-VPC-only", "Principal": "*", "Action": "s3:*",
                   "Effect": "Deny",
                   "Resource": ["arn:aws:s3:::awsexamplebucket1",
                                "arn:aws:s3:::awsexamplebucket1/*"],
                   "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-111bbb22"}}}]}
# PrivateLink guide, gateway endpoints for S3, "Restrict access to a specific bucket"
# (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html#edit-vpc-endpoint-policy-s3)
DOC_ENDPOINT_SPECIFIC_BUCKET = {
    "Statement": [{"Sid": "Access-to-specific-bucket-only", "Principal": "*",
                   "Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow",
                   "Resource": ["arn:aws:s3:::my_secure_bucket",
                                "arn:aws:s3:::my_secure_bucket/*"]}]}
# Same guide, "Restrict access to buckets in a specific account" (s3:ResourceAccount).
DOC_ENDPOINT_ACCOUNT = {
    "Statement": [{"Sid": "Access-to-bucket-in-specific-account-only", "Principal": "*",
                   "Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Deny",
                   "Resource": "arn:aws:s3:::*/*",
                   "Condition": {"StringNotEquals": {"s3:ResourceAccount": "111122223333"}}}]}
# The seeds (../shared/seeds/002): a Deny keyed on "aws:sourceVpce" (note the case), an endpoint
# policy allowing only reads, and a cross-account Allow through one endpoint.
SEED_DENY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::my-secure-bucket", "arn:aws:s3:::my-secure-bucket/*"],
    "Condition": {"StringNotEquals": {"aws:sourceVpce": "vpce-0123456789abcdef0"}}}]}
SEED_ENDPOINT = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": ["arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/*"]}]}
SEED_CROSS_ACCOUNT = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
    "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": ["arn:aws:s3:::account-b-bucket", "arn:aws:s3:::account-b-bucket/*"],
    "Condition": {"StringEquals": {"aws:sourceVpce": "vpce-id-in-account-a"}}}]}

VIA = lambda vpce, vpc=None: {"aws:SourceVpce": vpce, **({"aws:SourceVpc": vpc} if vpc else {})}  # noqa: E731
PUBLIC = {"aws:SourceIp": "203.0.113.7"}

CASES = [
    # (id, policy, action, resource, principal, context, expected effect)
    ("doc vpce: through the named endpoint", DOC_SPECIFIC_VPCE, "s3:GetObject", OBJ, ROLE,
     VIA("vpce-1a2b3c4d"), IMPLICIT_DENY),
    ("doc vpce: through another endpoint", DOC_SPECIFIC_VPCE, "s3:GetObject", OBJ, ROLE,
     VIA("vpce-99999999"), DENY),
    ("doc vpce: public (key absent -> negated operator true)", DOC_SPECIFIC_VPCE, "s3:GetObject",
     OBJ, ROLE, PUBLIC, DENY),
    ("doc vpce: bucket-level action", DOC_SPECIFIC_VPCE, "s3:ListBucket", BUCKET_ARN, ROLE,
     PUBLIC, DENY),
    ("doc vpce: other bucket untouched", DOC_SPECIFIC_VPCE, "s3:GetObject",
     "arn:aws:s3:::otherbucket/x", ROLE, PUBLIC, IMPLICIT_DENY),
    ("doc vpc: endpoint in the named VPC", DOC_SPECIFIC_VPC, "s3:PutObject", OBJ, ROLE,
     VIA("vpce-1", "vpc-111bbb22"), IMPLICIT_DENY),
    ("doc vpc: endpoint in another VPC", DOC_SPECIFIC_VPC, "s3:PutObject", OBJ, ROLE,
     VIA("vpce-1", "vpc-999"), DENY),
    ("doc vpc: public", DOC_SPECIFIC_VPC, "s3:PutObject", OBJ, ROLE, PUBLIC, DENY),
    ("doc endpoint policy: allowed bucket", DOC_ENDPOINT_SPECIFIC_BUCKET, "s3:GetObject",
     "arn:aws:s3:::my_secure_bucket/k", ROLE, VIA("vpce-1"), ALLOW),
    ("doc endpoint policy: action not listed", DOC_ENDPOINT_SPECIFIC_BUCKET, "s3:DeleteObject",
     "arn:aws:s3:::my_secure_bucket/k", ROLE, VIA("vpce-1"), IMPLICIT_DENY),
    ("doc endpoint policy: other bucket", DOC_ENDPOINT_SPECIFIC_BUCKET, "s3:GetObject",
     "arn:aws:s3:::elsewhere/k", ROLE, VIA("vpce-1"), IMPLICIT_DENY),
    ("doc endpoint account: bucket of another account", DOC_ENDPOINT_ACCOUNT, "s3:GetObject",
     "arn:aws:s3:::b/k", ROLE, {**VIA("vpce-1"), "s3:ResourceAccount": "999988887777"}, DENY),
    ("doc endpoint account: bucket of the account", DOC_ENDPOINT_ACCOUNT, "s3:GetObject",
     "arn:aws:s3:::b/k", ROLE, {**VIA("vpce-1"), "s3:ResourceAccount": "111122223333"},
     IMPLICIT_DENY),
    ("seed deny: key written aws:sourceVpce, public", SEED_DENY, "s3:GetObject",
     "arn:aws:s3:::my-secure-bucket/x", ROLE, PUBLIC, DENY),
    ("seed deny: through the endpoint", SEED_DENY, "s3:GetObject",
     "arn:aws:s3:::my-secure-bucket/x", ROLE, VIA("vpce-0123456789abcdef0"), IMPLICIT_DENY),
    ("seed endpoint: read allowed", SEED_ENDPOINT, "s3:GetObject", "arn:aws:s3:::my-bucket/x",
     ROLE, VIA("vpce-1"), ALLOW),
    ("seed endpoint: list allowed", SEED_ENDPOINT, "s3:ListBucket", "arn:aws:s3:::my-bucket",
     ROLE, VIA("vpce-1"), ALLOW),
    ("seed endpoint: write not allowed", SEED_ENDPOINT, "s3:PutObject", "arn:aws:s3:::my-bucket/x",
     ROLE, VIA("vpce-1"), IMPLICIT_DENY),
    ("seed cross-account: account A through its endpoint", SEED_CROSS_ACCOUNT, "s3:GetObject",
     "arn:aws:s3:::account-b-bucket/x", "arn:aws:iam::444455556666:role/app",
     VIA("vpce-id-in-account-a"), ALLOW),
    ("seed cross-account: account A from the internet", SEED_CROSS_ACCOUNT, "s3:GetObject",
     "arn:aws:s3:::account-b-bucket/x", "arn:aws:iam::444455556666:role/app", PUBLIC,
     IMPLICIT_DENY),
    ("seed cross-account: another account", SEED_CROSS_ACCOUNT, "s3:GetObject",
     "arn:aws:s3:::account-b-bucket/x", "arn:aws:iam::777777777777:role/app",
     VIA("vpce-id-in-account-a"), IMPLICIT_DENY),
    ("action wildcard is case-insensitive", {"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "S3:get*", "Resource": "*"}]},
     "s3:GetObject", OBJ, ROLE, {}, ALLOW),
    ("resource match is case-sensitive", {"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": "arn:aws:s3:::AWSEXAMPLEBUCKET1/*"}]}, "s3:GetObject", OBJ, ROLE, {},
     IMPLICIT_DENY),
    ("? matches one character", {"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObjec?",
        "Resource": "arn:aws:s3:::awsexamplebucket?/*"}]}, "s3:GetObject", OBJ, ROLE, {}, ALLOW),
    ("NotAction", {"Statement": [{
        "Effect": "Deny", "Principal": "*", "NotAction": ["s3:GetObject"], "Resource": "*"}]},
     "s3:PutObject", OBJ, ROLE, {}, DENY),
    ("NotAction excludes", {"Statement": [{
        "Effect": "Deny", "Principal": "*", "NotAction": "s3:Get*", "Resource": "*"}]},
     "s3:GetObject", OBJ, ROLE, {}, IMPLICIT_DENY),
    ("NotResource", {"Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "NotResource": "arn:aws:s3:::awsexamplebucket1/*"}]}, "s3:GetObject", OBJ, ROLE, {},
     IMPLICIT_DENY),
    ("deny beats allow", {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]},
     "s3:GetObject", OBJ, ROLE, {}, DENY),
    ("principal by account id", {"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:*",
        "Resource": "*"}]}, "s3:GetObject", OBJ, ROLE, {}, ALLOW),
    ("principal by exact role", {"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/other"]},
        "Action": "s3:*", "Resource": "*"}]}, "s3:GetObject", OBJ, ROLE, {}, IMPLICIT_DENY),
    ("service principal does not cover a role", {"Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:*", "Resource": "*"}]}, "s3:PutObject", OBJ, ROLE, {}, IMPLICIT_DENY),
]


@pytest.mark.parametrize("policy,action,resource,principal,context,effect",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluate(policy, action, resource, principal, context, effect):
    decision = evaluate(json.dumps(policy), Request(action, resource, principal, context))
    assert decision.effect == effect
    assert decision.explain()


R = lambda **ctx: Request("s3:GetObject", OBJ, ROLE, ctx)  # noqa: E731
OPERATOR_CASES = [
    # (id, operator, key, policy value, request, expected)
    ("StringEquals match", "StringEquals", "aws:SourceVpce", "vpce-1", R(**{"aws:SourceVpce": "vpce-1"}), True),
    ("StringEquals is case-sensitive", "StringEquals", "aws:SourceVpce", "VPCE-1", R(**{"aws:SourceVpce": "vpce-1"}), False),
    ("StringEquals absent key", "StringEquals", "aws:SourceVpce", "vpce-1", R(), False),
    ("StringEquals list is OR", "StringEquals", "aws:SourceVpce", ["vpce-2", "vpce-1"], R(**{"aws:SourceVpce": "vpce-1"}), True),
    ("key name is case-insensitive", "StringEquals", "AWS:SOURCEVPCE", "vpce-1", R(**{"aws:SourceVpce": "vpce-1"}), True),
    ("StringNotEquals differs", "StringNotEquals", "aws:SourceVpce", "vpce-1", R(**{"aws:SourceVpce": "vpce-2"}), True),
    ("StringNotEquals absent key is true", "StringNotEquals", "aws:SourceVpce", "vpce-1", R(), True),
    ("StringNotEquals list: matches one", "StringNotEquals", "aws:SourceVpce", ["vpce-1", "vpce-2"], R(**{"aws:SourceVpce": "vpce-2"}), False),
    ("StringEqualsIgnoreCase", "StringEqualsIgnoreCase", "aws:SourceVpce", "VPCE-1", R(**{"aws:SourceVpce": "vpce-1"}), True),
    ("StringLike wildcard", "StringLike", "aws:SourceVpce", "vpce-1a2b*", R(**{"aws:SourceVpce": "vpce-1a2b3c4d"}), True),
    ("StringLike no match", "StringLike", "aws:SourceVpce", "vpce-9*", R(**{"aws:SourceVpce": "vpce-1a2b3c4d"}), False),
    ("StringNotLike", "StringNotLike", "aws:SourceVpc", "vpc-1*", R(**{"aws:SourceVpc": "vpc-222"}), True),
    ("StringNotLike absent key is true", "StringNotLike", "aws:SourceVpc", "vpc-1*", R(), True),
    ("StringEqualsIfExists absent key", "StringEqualsIfExists", "aws:SourceVpce", "vpce-1", R(), True),
    ("StringEqualsIfExists present, differs", "StringEqualsIfExists", "aws:SourceVpce", "vpce-1", R(**{"aws:SourceVpce": "vpce-2"}), False),
    ("StringNotEqualsIfExists absent key", "StringNotEqualsIfExists", "aws:SourceVpce", "vpce-1", R(), True),
    ("StringNotEqualsIfExists present, equal", "StringNotEqualsIfExists", "aws:SourceVpce", "vpce-1", R(**{"aws:SourceVpce": "vpce-1"}), False),
    ("StringLikeIfExists absent", "StringLikeIfExists", "aws:SourceVpc", "vpc-*", R(), True),
    ("ForAnyValue: one matches", "ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], R(**{"aws:TagKeys": ["x", "b"]}), True),
    ("ForAnyValue: absent is false", "ForAnyValue:StringEquals", "aws:TagKeys", ["a"], R(), False),
    ("ForAnyValue:StringLike", "ForAnyValue:StringLike", "aws:TagKeys", ["env*"], R(**{"aws:TagKeys": ["team", "environment"]}), True),
    ("ForAllValues: all match", "ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], R(**{"aws:TagKeys": ["a", "b"]}), True),
    ("ForAllValues: one outside", "ForAllValues:StringEquals", "aws:TagKeys", ["a"], R(**{"aws:TagKeys": ["a", "c"]}), False),
    ("ForAllValues: absent is true", "ForAllValues:StringEquals", "aws:TagKeys", ["a"], R(), True),
    ("ForAllValues:StringNotEquals", "ForAllValues:StringNotEquals", "aws:TagKeys", ["a"], R(**{"aws:TagKeys": ["b", "c"]}), True),
    ("Null true: key absent", "Null", "aws:SourceVpce", "true", R(), True),
    ("Null true: key present", "Null", "aws:SourceVpce", "true", R(**{"aws:SourceVpce": "vpce-1"}), False),
    ("Null false: key present", "Null", "aws:SourceVpce", "false", R(**{"aws:SourceVpce": "vpce-1"}), True),
    ("IpAddress", "IpAddress", "aws:SourceIp", "203.0.113.0/24", R(**{"aws:SourceIp": "203.0.113.7"}), True),
    ("IpAddress absent (through an endpoint)", "IpAddress", "aws:SourceIp", "0.0.0.0/0", R(**{"aws:SourceVpce": "vpce-1"}), False),
    ("NotIpAddress absent is true", "NotIpAddress", "aws:SourceIp", "10.0.0.0/8", R(), True),
    ("Bool", "Bool", "aws:SecureTransport", True, R(**{"aws:SecureTransport": "true"}), True),
    ("ArnLike", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::111122223333:role/*", R(**{"aws:PrincipalArn": ROLE}), True),
]


@pytest.mark.parametrize("operator,key,value,request_,expected", [c[1:] for c in OPERATOR_CASES],
                         ids=[c[0] for c in OPERATOR_CASES])
def test_condition_operators(operator, key, value, request_, expected):
    assert condition_holds(operator, key, value, request_) is expected


def test_unsupported_operator_is_reported_not_guessed():
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                             "Resource": "*", "Condition": {"DateGreaterThan": {
                                 "aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}
    decision = evaluate(policy, Request("s3:GetObject", OBJ, ROLE, {}))
    assert decision.effect == IMPLICIT_DENY
    assert decision.unsupported == ("condition operator DateGreaterThan",)


def test_malformed_policies():
    with pytest.raises(PolicyError):
        load_policy("{not json")
    with pytest.raises(PolicyError):
        load_policy({"Version": "2012-10-17"})
    assert load_policy({"Statement": {"Effect": "Allow"}})["Statement"] == [{"Effect": "Allow"}]


# --- the two questions ------------------------------------------------------------------------

@pytest.mark.parametrize("policy,bucket,endpoints,enforced,vpces,vpcs", [
    (DOC_SPECIFIC_VPCE, "awsexamplebucket1", [], True, ("vpce-1a2b3c4d",), ()),
    (DOC_SPECIFIC_VPC, "awsexamplebucket1", [("vpce-9", "vpc-111bbb22")], True, (),
     ("vpc-111bbb22",)),
    (SEED_DENY, "my-secure-bucket", [], True, ("vpce-0123456789abcdef0",), ()),
    (SEED_CROSS_ACCOUNT, "account-b-bucket", [], False, ("vpce-id-in-account-a",), ()),
    (DOC_ENDPOINT_SPECIFIC_BUCKET, "my_secure_bucket", [], False, (), ()),
    (None, "b", [], False, (), ()),
], ids=["doc vpce", "doc vpc", "seed deny", "seed allow-only (not enforcement)",
        "no source keys", "no policy"])
def test_source_enforcement(policy, bucket, endpoints, enforced, vpces, vpcs):
    result = source_enforcement(json.dumps(policy) if policy else None, bucket, ROLE,
                                endpoints=endpoints)
    assert result.enforced is enforced
    assert result.vpce_ids == vpces and result.vpc_ids == vpcs
    assert result.evidence
    if enforced:  # enforcement means a request from outside any endpoint is refused
        assert result.decisions["public"] in (DENY, IMPLICIT_DENY)


def test_source_enforcement_names_this_vpcs_endpoint_outcome():
    result = source_enforcement(json.dumps(DOC_SPECIFIC_VPCE), "awsexamplebucket1", ROLE,
                                endpoints=[("vpce-mine", "vpc-1")])
    assert result.decisions["via vpce-mine in vpc-1"] == DENY      # not the endpoint it names
    assert result.decisions["via vpce-1a2b3c4d"] == IMPLICIT_DENY  # falls to IAM, no deny


@pytest.mark.parametrize("policy,bucket,allowed,denied", [
    (None, "canary", ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"), ()),
    (SEED_ENDPOINT, "my-bucket", ("s3:GetObject", "s3:ListBucket"),
     ("s3:PutObject", "s3:DeleteObject")),
    (DOC_ENDPOINT_SPECIFIC_BUCKET, "my_secure_bucket", ("s3:PutObject", "s3:GetObject"),
     ("s3:DeleteObject", "s3:ListBucket")),
    (DOC_ENDPOINT_SPECIFIC_BUCKET, "canary", (),
     ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket")),
], ids=["default policy", "seed read-only", "doc specific bucket", "doc, other bucket"])
def test_endpoint_allows_canary(policy, bucket, allowed, denied):
    check = endpoint_allows(json.dumps(policy) if policy else None, "vpce-1", bucket,
                            principal=ROLE)
    assert check.allowed == allowed
    assert tuple(check.denied) == denied
    assert check.default_policy is (policy is None)
    assert check.allows_all is (not denied)


def test_endpoint_policy_listing_limited_to_the_canary_prefix_allows_the_sweep():
    from s3_route_agent.engine.iam_policy import endpoint_allows
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:PutObject", "s3:GetObject",
                                                         "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::b/s3-route-agent/canary/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::b",
         "Condition": {"StringLike": {"s3:prefix": "s3-route-agent/canary/*"}}}]}
    check = endpoint_allows(json.dumps(policy), "vpce-1", "b")
    assert "s3:ListBucket" in check.allowed and not check.denied
    other = endpoint_allows(json.dumps(policy), "vpce-1", "b", prefix="elsewhere/")
    assert "s3:ListBucket" in other.denied


# --- network-perimeter keys added since 2024 (issue 10 section 4) -------------------------------

PERIMETER_BUCKET = "perimeter-bucket"


def _deny_unless(key: str, value: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyOurs", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{PERIMETER_BUCKET}/*",
        "Condition": {"StringNotEquals": {key: value}}}]}


@pytest.mark.parametrize("key,value,owner,effect", [
    ("aws:VpceAccount", "111122223333", "111122223333", "allow"),
    ("aws:VpceAccount", "111122223333", "444455556666", "deny"),
    ("aws:SourceVpcArn", "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-1", "111122223333",
     "allow"),
    ("aws:SourceVpcArn", "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-2", "111122223333", "deny"),
])
def test_endpoint_owner_and_vpc_arn_keys(key, value, owner, effect):
    enforcement = source_enforcement(_deny_unless(key, value), PERIMETER_BUCKET,
                                     endpoints=[("vpce-1", "vpc-1")], owners={"vpce-1": owner},
                                     region="eu-west-1")
    assert enforcement.decisions["via vpce-1 in vpc-1"] == ("implicit_deny" if effect == "allow"
                                                            else "deny")
    assert enforcement.decisions["public"] == "deny"   # the key is absent on the public path


@pytest.mark.parametrize("key", ["aws:VpceOrgID", "aws:VpceOrgPaths"])
def test_organization_keys_through_an_endpoint_are_not_guessed(key):
    policy = {"Statement": [
        {"Sid": "All", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        *_deny_unless(key, "o-abc")["Statement"]]}
    check = endpoint_allows(policy, "vpce-1", PERIMETER_BUCKET, prefix="", vpc_id="vpc-1",
                            vpce_account="111122223333", region="eu-west-1",
                            actions=("s3:GetObject",))
    # The Deny may or may not apply: the Allow is not confirmed.
    assert check.allowed == () and "not confirmed" in check.denied["s3:GetObject"]
    assert key in check.denied["s3:GetObject"]
    decision = evaluate(_deny_unless(key, "o-abc"), endpoint_request(
        "s3:GetObject", f"arn:aws:s3:::{PERIMETER_BUCKET}/k", None,
        context_for("vpce-1", "vpc-1", vpce_account="111122223333", region="eu-west-1")))
    assert any(key in item and "not known" in item for item in decision.unsupported)
    # Without an endpoint the keys are absent, not unknown: the negated condition holds.
    public = evaluate(_deny_unless(key, "o-abc"), endpoint_request(
        "s3:GetObject", f"arn:aws:s3:::{PERIMETER_BUCKET}/k", None, context_for(None, None)))
    assert public.effect == DENY and public.unsupported == ()


def test_endpoint_context_carries_the_new_keys():
    context = context_for("vpce-1", "vpc-1", vpce_account="111122223333", region="eu-west-1")
    assert context["aws:VpceAccount"] == "111122223333"
    assert context["aws:SourceVpcArn"] == "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-1"
    request = endpoint_request("s3:GetObject", "arn:aws:s3:::b/k", None, context)
    assert set(request.unknown_keys) == {"aws:VpceOrgID", "aws:VpceOrgPaths"}
