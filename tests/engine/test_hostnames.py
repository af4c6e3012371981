"""Every S3 hostname form from the reference, parsed by labels, never by substring."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.hostnames import parse_s3_host

CASES = [
    # host, form, region, bucket, endpoint id
    ("s3.amazonaws.com", "global", "us-east-1", None, None),
    ("my-bucket.s3.amazonaws.com", "global", "us-east-1", "my-bucket", None),
    ("us-west-2-logs.s3.amazonaws.com", "global", "us-east-1", "us-west-2-logs", None),
    ("eu-west-1.s3.amazonaws.com", "global", "us-east-1", "eu-west-1", None),
    ("s3-external-1.amazonaws.com", "global", "us-east-1", None, None),
    ("s3.eu-west-1.amazonaws.com", "regional", "eu-west-1", None, None),
    ("bucket.s3.eu-west-1.amazonaws.com", "regional", "eu-west-1", "bucket", None),
    ("my.dotted.bucket.s3.us-west-2.amazonaws.com", "regional", "us-west-2", "my.dotted.bucket", None),
    ("S3.EU-WEST-1.AMAZONAWS.COM.", "regional", "eu-west-1", None, None),
    ("s3-eu-west-1.amazonaws.com", "dash_region", "eu-west-1", None, None),
    ("bucket.s3-eu-west-1.amazonaws.com", "dash_region", "eu-west-1", "bucket", None),
    ("bucket.s3.dualstack.eu-west-1.amazonaws.com", "dualstack", "eu-west-1", "bucket", None),
    ("s3-fips.us-east-1.amazonaws.com", "fips", "us-east-1", None, None),
    ("s3-fips.dualstack.us-east-1.amazonaws.com", "fips", "us-east-1", None, None),
    ("bucket.s3-accelerate.amazonaws.com", "accelerate", None, "bucket", None),
    ("bucket.s3-accelerate.dualstack.amazonaws.com", "accelerate", None, "bucket", None),
    ("s3-control.eu-west-1.amazonaws.com", "control", "eu-west-1", None, None),
    ("123456789012.s3-control.eu-west-1.amazonaws.com", "control", "eu-west-1", None, None),
    ("ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", "access_point", "eu-west-1",
     "ap-123456789012", None),
    ("mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", "mrap", None, "mfzwi23gnjvgw", None),
    ("bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1", None,
     "vpce-0abc123"),
    ("my-bucket.bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     "my-bucket", "vpce-0abc123"),
    ("accesspoint.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     None, "vpce-0abc123"),
    ("bucket.vpce-0abc123-xyz12345-eu-west-1a.s3.eu-west-1.vpce.amazonaws.com", "vpce", "eu-west-1",
     None, "vpce-0abc123"),
    ("s3express-euw1-az1.eu-west-1.amazonaws.com", "s3express", "eu-west-1", None, None),
    ("bucket.s3-website-eu-west-1.amazonaws.com", "website", "eu-west-1", "bucket", None),
    ("bucket.s3-website.eu-west-1.amazonaws.com", "website", "eu-west-1", "bucket", None),
    ("example.com", "other", None, None, None),
    ("s3.example.com", "other", None, None, None),
    ("ec2.eu-west-1.amazonaws.com", "other", None, None, None),
]


@pytest.mark.parametrize("host,form,region,bucket,endpoint", CASES, ids=[c[0] for c in CASES])
def test_parse_s3_host(host, form, region, bucket, endpoint):
    parsed = parse_s3_host(host)
    assert (parsed.form, parsed.region, parsed.bucket, parsed.endpoint_id) == \
        (form, region, bucket, endpoint)


def test_flags():
    assert parse_s3_host("bucket.s3.dualstack.eu-west-1.amazonaws.com").dualstack
    assert parse_s3_host("s3-fips.us-east-1.amazonaws.com").fips
    assert not parse_s3_host("s3.eu-west-1.amazonaws.com").dualstack
    assert not parse_s3_host("example.com").is_s3
