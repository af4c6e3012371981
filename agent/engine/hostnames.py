"""Parse an S3 hostname into its form (regional, legacy global, vpce, MRAP, ...), never by substring.

Forms follow the S3 user guide (VirtualHosting, dual-stack endpoints, Multi-Region Access Points,
PrivateLink for S3) and the AWS General Reference "Amazon S3 endpoints". A bucket named
``us-west-2-logs`` must not make ``us-west-2-logs.s3.amazonaws.com`` look regional, so every rule
here matches whole labels from the right-hand end of the name.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# Region names: "eu-west-1", "us-gov-west-1", "ap-southeast-5", "il-central-1", ...
_REGION = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d+$")
_VPCE_LABEL = re.compile(r"^(vpce-[0-9a-f]+)-[0-9a-z]+(-[a-z]{2}(-[a-z]+)+-\d+[a-z])?$")
_S3EXPRESS_ZONE = re.compile(r"^s3express-([a-z0-9]+-az\d+)$")

# The legacy global endpoint answers from us-east-1 (S3 user guide, "Legacy global endpoint").
GLOBAL_ENDPOINT_REGION = "us-east-1"



class HostForm(str, enum.Enum):
    """The form of an S3 hostname (how the name routes: a region, an endpoint, CloudFront...)."""

    GLOBAL = "global"                # s3.amazonaws.com: the legacy global name (us-east-1)
    REGIONAL = "regional"            # s3.REGION.amazonaws.com
    DASH_REGION = "dash_region"      # s3-REGION.amazonaws.com (legacy)
    DUALSTACK = "dualstack"          # s3.dualstack.REGION.amazonaws.com
    FIPS = "fips"                    # s3-fips.REGION.amazonaws.com
    ACCELERATE = "accelerate"        # BUCKET.s3-accelerate.amazonaws.com (CloudFront edges)
    VPCE = "vpce"                    # an interface endpoint's own name (…vpce.amazonaws.com)
    ACCESS_POINT = "access_point"    # NAME-ACCOUNT.s3-accesspoint.REGION.amazonaws.com
    MRAP = "mrap"                    # ALIAS.mrap.accesspoint.s3-global.amazonaws.com
    CONTROL = "control"              # s3-control.REGION.amazonaws.com
    S3EXPRESS = "s3express"          # s3express-ZONE.REGION.amazonaws.com, s3express-control
    WEBSITE = "website"              # s3-website[-.]REGION.amazonaws.com
    OTHER = "other"                  # not an S3 name


@dataclass(frozen=True)
class S3HostForm:
    """What an S3 hostname is: its form, region, bucket and endpoint id where the name says."""

    host: str
    form: HostForm
    region: str | None = None        # the region the name routes to, when the name says
    bucket: str | None = None        # virtual-hosted bucket, when the name carries one
    endpoint_id: str | None = None   # vpce id for interface-endpoint names
    dualstack: bool = False
    fips: bool = False

    @property
    def is_s3(self) -> bool:
        """True when the name is an S3 name at all."""
        return self.form is not HostForm.OTHER


def _is_region(label: str) -> bool:
    return bool(_REGION.match(label))


def parse_s3_host(host: str) -> S3HostForm:
    """Classify ``host`` by matching whole labels from the right (see module docstring)."""
    name = host.strip().rstrip(".").lower()
    if ":" in name and not name.startswith("["):
        name = name.split(":", 1)[0]
    labels = name.split(".")
    suffix = None
    for candidate in ("amazonaws.com.cn", "amazonaws.com"):
        parts = candidate.split(".")
        if labels[-len(parts):] == parts:
            suffix = candidate
            labels = labels[: -len(parts)]
            break
    if suffix is None or not labels:
        return S3HostForm(host=name, form=HostForm.OTHER)

    def prefix(n: int) -> str | None:
        """The labels left of the last ``n`` service labels, joined (a bucket name may have dots)."""
        rest = labels[: len(labels) - n]
        return ".".join(rest) if rest else None

    # Interface endpoint names: [bucket.|accesspoint.|control.]vpce-ID-SUFFIX[-AZ].s3.REGION.vpce
    if len(labels) >= 4 and labels[-1] == "vpce" and labels[-3] == "s3" and _is_region(labels[-2]):
        match = _VPCE_LABEL.match(labels[-4])
        if match:
            rest = labels[:-4]
            bucket = None
            if rest and rest[-1] == "bucket":
                bucket = ".".join(rest[:-1]) or None
            return S3HostForm(host=name, form=HostForm.VPCE, region=labels[-2], bucket=bucket,
                              endpoint_id=match.group(1))
        return S3HostForm(host=name, form=HostForm.OTHER)

    # Multi-Region Access Point: ALIAS.mrap.accesspoint.s3-global.amazonaws.com
    if labels[-3:] == ["mrap", "accesspoint", "s3-global"] and len(labels) >= 4:
        return S3HostForm(host=name, form=HostForm.MRAP, bucket=prefix(3))

    # Transfer acceleration: BUCKET.s3-accelerate[.dualstack].amazonaws.com (CloudFront edges).
    if labels[-1] == "s3-accelerate" and len(labels) >= 2:
        return S3HostForm(host=name, form=HostForm.ACCELERATE, bucket=prefix(1))
    if labels[-2:] == ["s3-accelerate", "dualstack"] and len(labels) >= 3:
        return S3HostForm(host=name, form=HostForm.ACCELERATE, bucket=prefix(2), dualstack=True)

    # Legacy global: [BUCKET.]s3.amazonaws.com and [BUCKET.]s3-external-1.amazonaws.com.
    if labels[-1] in ("s3", "s3-external-1"):
        return S3HostForm(host=name, form=HostForm.GLOBAL, region=GLOBAL_ENDPOINT_REGION, bucket=prefix(1))

    if len(labels) >= 2 and _is_region(labels[-1]):
        region = labels[-1]
        service = labels[-2]
        if service == "s3":
            return S3HostForm(host=name, form=HostForm.REGIONAL, region=region, bucket=prefix(2))
        if service == "dualstack" and len(labels) >= 3:
            if labels[-3] == "s3":
                return S3HostForm(host=name, form=HostForm.DUALSTACK, region=region, bucket=prefix(3),
                                  dualstack=True)
            if labels[-3] == "s3-fips":
                return S3HostForm(host=name, form=HostForm.FIPS, region=region, bucket=prefix(3),
                                  dualstack=True, fips=True)
            if labels[-3] == "s3-accesspoint":
                return S3HostForm(host=name, form=HostForm.ACCESS_POINT, region=region,
                                  bucket=prefix(3), dualstack=True)
            if labels[-3] in ("s3-control", "s3-control-fips"):
                return S3HostForm(host=name, form=HostForm.CONTROL, region=region, dualstack=True,
                                  fips=labels[-3].endswith("fips"))
        if service == "s3-fips":
            return S3HostForm(host=name, form=HostForm.FIPS, region=region, bucket=prefix(2), fips=True)
        if service in ("s3-accesspoint", "s3-accesspoint-fips"):
            return S3HostForm(host=name, form=HostForm.ACCESS_POINT, region=region, bucket=prefix(2),
                              fips=service.endswith("fips"))
        if service in ("s3-control", "s3-control-fips"):
            return S3HostForm(host=name, form=HostForm.CONTROL, region=region,
                              fips=service.endswith("fips"))
        if service == "s3express-control" or _S3EXPRESS_ZONE.match(service):
            return S3HostForm(host=name, form=HostForm.S3EXPRESS, region=region, bucket=prefix(2))
        if service == "s3-website":
            return S3HostForm(host=name, form=HostForm.WEBSITE, region=region, bucket=prefix(2))
    last = labels[-1]
    # Dash-region legacy names: [BUCKET.]s3-REGION.amazonaws.com; website: s3-website-REGION.
    if last.startswith("s3-website-") and _is_region(last[len("s3-website-"):]):
        return S3HostForm(host=name, form=HostForm.WEBSITE, region=last[len("s3-website-"):],
                          bucket=prefix(1))
    if last.startswith("s3-fips-") and _is_region(last[len("s3-fips-"):]):
        return S3HostForm(host=name, form=HostForm.FIPS, region=last[len("s3-fips-"):],
                          bucket=prefix(1), fips=True)
    if last.startswith("s3-") and _is_region(last[3:]):
        return S3HostForm(host=name, form=HostForm.DASH_REGION, region=last[3:], bucket=prefix(1))
    return S3HostForm(host=name, form=HostForm.OTHER)
