"""Every S3 hostname form from the reference, parsed by labels, never by substring.

The names botocore's rules build are checked against the installed botocore in
``test_hostnames_botocore.py``; this table holds one row per form and flag, the forms the rules
never build (dash-region, website, s3-external-1) and names built to fool a substring match.
"""

from __future__ import annotations

import pytest

from s3_route_agent.engine.hostnames import HostForm, parse_s3_host

R, D, F, FD = "", "dualstack", "fips", "fips+dualstack"   # flags column
CASES = [
    # host, form, region, bucket, endpoint id, flags
    ("s3.amazonaws.com", "global", "us-east-1", None, None, R),
    ("my-bucket.s3.amazonaws.com", "global", "us-east-1", "my-bucket", None, R),
    ("us-west-2-logs.s3.amazonaws.com", "global", "us-east-1", "us-west-2-logs", None, R),
    ("eu-west-1.s3.amazonaws.com", "global", "us-east-1", "eu-west-1", None, R),
    ("s3-external-1.amazonaws.com", "global", "us-east-1", None, None, R),
    ("s3.eu-west-1.amazonaws.com", "regional", "eu-west-1", None, None, R),
    ("bucket.s3.eu-west-1.amazonaws.com", "regional", "eu-west-1", "bucket", None, R),
    ("my.dotted.bucket.s3.us-west-2.amazonaws.com", "regional", "us-west-2", "my.dotted.bucket",
     None, R),
    ("S3.EU-WEST-1.AMAZONAWS.COM.", "regional", "eu-west-1", None, None, R),
    ("bucket.s3.cn-north-1.amazonaws.com.cn", "regional", "cn-north-1", "bucket", None, R),
    ("s3-eu-west-1.amazonaws.com", "dash_region", "eu-west-1", None, None, R),
    ("bucket.s3-eu-west-1.amazonaws.com", "dash_region", "eu-west-1", "bucket", None, R),
    ("s3-fips-us-gov-west-1.amazonaws.com", "dash_region", "us-gov-west-1", None, None, F),
    # fips and dual-stack are flags on the base form (they were forms of their own before).
    ("bucket.s3.dualstack.eu-west-1.amazonaws.com", "regional", "eu-west-1", "bucket", None, D),
    ("s3-fips.us-east-1.amazonaws.com", "regional", "us-east-1", None, None, F),
    ("s3-fips.dualstack.us-east-1.amazonaws.com", "regional", "us-east-1", None, None, FD),
    ("dualstack.s3.dualstack.eu-west-1.amazonaws.com", "regional", "eu-west-1", "dualstack", None,
     D),
    ("bucket.s3-accelerate.amazonaws.com", "accelerate", None, "bucket", None, R),
    ("bucket.s3-accelerate.dualstack.amazonaws.com", "accelerate", None, "bucket", None, D),
    ("bucket.s3-accelerate.dualstack.us-east-1.amazonaws.com", "accelerate", "us-east-1",
     "bucket", None, D),
    ("s3-control.eu-west-1.amazonaws.com", "control", "eu-west-1", None, None, R),
    ("123456789012.s3-control.eu-west-1.amazonaws.com", "control", "eu-west-1", None, None, R),
    ("123456789012.s3-control-fips.us-east-1.amazonaws.com", "control", "us-east-1", None, None,
     F),
    ("123456789012.s3-control-fips.dualstack.us-east-1.amazonaws.com", "control", "us-east-1",
     None, None, FD),
    ("s3-control.dualstack.eu-west-1.amazonaws.com", "control", "eu-west-1", None, None, D),
    ("ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", "access_point", "eu-west-1",
     "ap-123456789012", None, R),
    ("ap-123456789012.s3-accesspoint-fips.us-east-1.amazonaws.com", "access_point", "us-east-1",
     "ap-123456789012", None, F),
    ("ap-123456789012.s3-accesspoint.dualstack.eu-west-1.amazonaws.com", "access_point",
     "eu-west-1", "ap-123456789012", None, D),
    ("ap-123456789012.s3-accesspoint-fips.dualstack.us-east-1.amazonaws.com", "access_point",
     "us-east-1", "ap-123456789012", None, FD),
    # The MRAP alias is "mfzwi23gnjvgw.mrap" (S3 user guide); it used to lose its ".mrap".
    ("mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", "mrap", None, "mfzwi23gnjvgw.mrap",
     None, R),
    ("bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1", None,
     "vpce-0abc123", R),
    ("my-bucket.bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     "my-bucket", "vpce-0abc123", R),
    ("accesspoint.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     None, "vpce-0abc123", R),
    ("ap-123456789012.accesspoint.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce",
     "eu-west-1", "ap-123456789012", "vpce-0abc123", R),
    ("my-bucket.control.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce",
     "eu-west-1", "my-bucket", "vpce-0abc123", R),
    ("123456789012.control.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce",
     "eu-west-1", None, "vpce-0abc123", R),
    ("bucket.vpce-0abc123-xyz12345-eu-west-1a.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     None, "vpce-0abc123", R),
    ("my.dotted.bucket.bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce",
     "eu-west-1", "my.dotted.bucket", "vpce-0abc123", R),
    ("s3express-euw1-az1.eu-west-1.amazonaws.com", "s3express", "eu-west-1", None, None, R),
    ("data--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com", "s3express", "us-east-1",
     "data--use1-az4--x-s3", None, R),
    ("data--use1-az4--x-s3.s3express-fips-use1-az4.us-east-1.amazonaws.com", "s3express",
     "us-east-1", "data--use1-az4--x-s3", None, F),
    ("data--use1-az4--x-s3.s3express-use1-az4.dualstack.us-east-1.amazonaws.com", "s3express",
     "us-east-1", "data--use1-az4--x-s3", None, D),
    ("data--use1-az4--x-s3.s3express-fips-use1-az4.dualstack.us-east-1.amazonaws.com",
     "s3express", "us-east-1", "data--use1-az4--x-s3", None, FD),
    ("data--usw2-lax1-az1--x-s3.s3express-usw2-lax1-az1.us-west-2.amazonaws.com", "s3express",
     "us-west-2", "data--usw2-lax1-az1--x-s3", None, R),
    ("ap--use1-az4--xa-s3.s3express-use1-az4.us-east-1.amazonaws.com", "s3express", "us-east-1",
     "ap--use1-az4--xa-s3", None, R),
    ("s3express-control.us-east-1.amazonaws.com", "s3express_control", "us-east-1", None, None, R),
    ("s3express-control-fips.us-east-1.amazonaws.com", "s3express_control", "us-east-1", None,
     None, F),
    ("s3express-control.dualstack.us-east-1.amazonaws.com", "s3express_control", "us-east-1",
     None, None, D),
    ("s3express-control-fips.dualstack.us-east-1.amazonaws.com", "s3express_control", "us-east-1",
     None, None, FD),
    ("s3express-control-dualstack.us-east-1.amazonaws.com", "s3express_control", "us-east-1",
     None, None, D),
    ("olap-123456789012.s3-object-lambda.eu-west-1.amazonaws.com", "object_lambda", "eu-west-1",
     "olap-123456789012", None, R),
    ("olap-123456789012.s3-object-lambda-fips.us-east-1.amazonaws.com", "object_lambda",
     "us-east-1", "olap-123456789012", None, F),
    ("s3-object-lambda.eu-west-1.amazonaws.com", "object_lambda", "eu-west-1", None, None, R),
    ("ap-123456789012.op-01234567890abcdef.s3-outposts.us-west-2.amazonaws.com", "outposts",
     "us-west-2", "ap-123456789012", None, R),
    ("s3-outposts.us-west-2.amazonaws.com", "outposts", "us-west-2", None, None, R),
    ("s3-outposts-fips.us-east-1.amazonaws.com", "outposts", "us-east-1", None, None, F),
    ("bucket.s3-website-eu-west-1.amazonaws.com", "website", "eu-west-1", "bucket", None, R),
    ("bucket.s3-website.eu-west-1.amazonaws.com", "website", "eu-west-1", "bucket", None, R),
    ("example.com", "other", None, None, None, R),
    ("s3.example.com", "other", None, None, None, R),
    ("ec2.eu-west-1.amazonaws.com", "other", None, None, None, R),
    ("s3-object-lambda.dualstack.eu-west-1.amazonaws.com", "other", None, None, None, R),
    ("amazonaws.com", "other", None, None, None, R),
    ("a..s3.eu-west-1.amazonaws.com", "other", None, None, None, R),
]


@pytest.mark.parametrize("host,form,region,bucket,endpoint,flags", CASES, ids=[c[0] for c in CASES])
def test_parse_s3_host(host, form, region, bucket, endpoint, flags):
    parsed = parse_s3_host(host)
    assert (parsed.form.value, parsed.region, parsed.bucket, parsed.endpoint_id) == \
        (form, region, bucket, endpoint)
    assert (parsed.fips, parsed.dualstack) == ("fips" in flags, "dualstack" in flags)


def test_flags_and_label():
    assert parse_s3_host("bucket.s3.dualstack.eu-west-1.amazonaws.com").dualstack
    assert parse_s3_host("s3-fips.us-east-1.amazonaws.com").fips
    assert not parse_s3_host("s3.eu-west-1.amazonaws.com").dualstack
    assert not parse_s3_host("example.com").is_s3
    assert parse_s3_host("s3-fips.dualstack.us-east-1.amazonaws.com").label == \
        "regional+fips+dualstack"
    assert parse_s3_host("s3.eu-west-1.amazonaws.com").label == "regional"


ID_CASES = [
    # host, the facts the name carries beyond form/region/bucket
    ("data--usw2-lax1-az1--x-s3.s3express-fips-usw2-lax1-az1.dualstack.us-west-2.amazonaws.com",
     dict(zone_id="usw2-lax1-az1")),
    ("s3express-apne1-az4.ap-northeast-1.amazonaws.com", dict(zone_id="apne1-az4")),
    ("ap-123456789012.op-01234567890abcdef.s3-outposts.us-west-2.amazonaws.com",
     dict(outpost_id="op-01234567890abcdef", account_id="123456789012")),
    ("alias--op-s3.ec2.s3-outposts.us-west-2.amazonaws.com",
     dict(outpost_id=None, bucket="alias--op-s3")),
    ("123456789012.s3-control.eu-west-1.amazonaws.com", dict(account_id="123456789012")),
    ("123456789012.control.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com",
     dict(account_id="123456789012", vpce_scope="control")),
    ("my-bucket.bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com",
     dict(vpce_scope="bucket", account_id=None)),
    ("ap-123456789012.accesspoint.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com",
     dict(vpce_scope="accesspoint", account_id="123456789012")),
]


@pytest.mark.parametrize("host,facts", ID_CASES, ids=[c[0] for c in ID_CASES])
def test_ids_the_name_carries(host, facts):
    parsed = parse_s3_host(host)
    assert {k: getattr(parsed, k) for k in facts} == facts


@pytest.mark.parametrize("bucket", ["us-west-2", "s3-fips", "s3-accelerate", "s3-us-west-2",
                                    "s3express-use1-az4", "accesspoint", "s3-object-lambda",
                                    "s3-outposts", "s3-external-1", "s3express-control", "ec2",
                                    "dualstack", "123456789012", "vpce-0abc123-xyz12345"])
def test_bucket_named_like_a_label_does_not_change_the_form(bucket):
    """Whole labels from the right: the bucket is whatever is left, whatever it looks like."""
    for suffix, form in ((".s3.eu-west-1.amazonaws.com", HostForm.REGIONAL),
                         (".s3.amazonaws.com", HostForm.GLOBAL),
                         (".s3.dualstack.eu-west-1.amazonaws.com", HostForm.REGIONAL),
                         (".bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com",
                          HostForm.VPCE)):
        parsed = parse_s3_host(bucket + suffix)
        assert (parsed.form, parsed.bucket) == (form, bucket), bucket + suffix
