"""Parse an S3 hostname into its form (regional, legacy global, vpce, MRAP, ...), never by substring.

A bucket named ``us-west-2-logs`` must not make ``us-west-2-logs.s3.amazonaws.com`` look
regional, so every rule here matches whole labels from the right-hand end of the name, after the
``amazonaws.com`` (or ``amazonaws.com.cn``) suffix. ``form`` is the base form; FIPS and dual-stack
are flags on it (``s3-fips.dualstack.R`` is ``regional`` with ``fips`` and ``dualstack``), because
they change the name of every family (S3, access points, S3 Control, S3 Express) the same way.

The label rules, with the AWS page that defines each name (checked with the docs search):

* ``[B.]s3.R``, ``[B.]s3-fips.R``, ``[B.]s3[-fips].dualstack.R`` regional: S3 user guide,
  "Virtual hosting of general purpose buckets",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html; "Using Amazon S3
  dual-stack endpoints", https://docs.aws.amazon.com/AmazonS3/latest/userguide/dual-stack-endpoints.html;
  AWS General Reference, "Amazon Simple Storage Service endpoints and quotas" (the per-region
  ``s3-fips.R`` and ``s3-fips.dualstack.R`` names), https://docs.aws.amazon.com/general/latest/gr/s3.html.
* ``[B.]s3`` (and ``s3-external-1``) legacy global, ``[B.]s3-R`` / ``s3-fips-R`` dash-region:
  VirtualHosting.html, "Legacy global endpoint" and "Legacy: s3-Region".
* ``B.s3-accelerate[.dualstack]``: S3 user guide, "Getting started with Amazon S3 Transfer
  Acceleration", https://docs.aws.amazon.com/AmazonS3/latest/userguide/transfer-acceleration-getting-started.html.
  botocore's rules add ``B.s3-accelerate.dualstack.us-east-1`` for the aws-global region.
* ``[RES.][bucket.|accesspoint.|control.]vpce-ID-SFX[-AZ].s3.R.vpce``: S3 user guide, "AWS
  PrivateLink for Amazon S3" (endpoint-specific DNS names; replace ``*`` with ``bucket``,
  ``accesspoint`` or ``control``),
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html.
* ``NAME-ACCOUNT.s3-accesspoint[-fips][.dualstack].R``: S3 API reference, "Making requests using
  the REST API", https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAPI.html, and the endpoint
  table of gr/s3.html.
* ``ALIAS.mrap.accesspoint.s3-global``: S3 user guide, "Making requests through a Multi-Region
  Access Point" (the alias is ``mfzwi23gnjvgw.mrap``),
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/MultiRegionAccessPointRequests.html.
* ``[NAME-ACCOUNT.]s3-object-lambda[-fips].R``: S3 user guide, "Using Amazon S3 Object Lambda
  Access Points" (ARNs use the service ``s3-object-lambda``),
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/olap-use.html.
* ``NAME-ACCOUNT.op-ID.s3-outposts.R``, ``ALIAS.(op-ID|ec2).s3-outposts.R``,
  ``s3-outposts[-fips].R``: S3 user guide, "Accessing S3 on Outposts using VPC-only access
  points", https://docs.aws.amazon.com/AmazonS3/latest/userguide/WorkingWithS3Outposts.html.
* ``[ACCOUNT.]s3-control[-fips][.dualstack].R``: gr/s3.html (S3 Control endpoints); the
  ``ACCOUNT.`` label is S3 Control's host prefix.
* ``B.s3express[-fips]-ZONE[.dualstack].R`` (zonal) and ``s3express-control[-fips][.dualstack].R``
  (regional): S3 user guide, "Regional and Zonal endpoints for directory buckets in an
  Availability Zone", https://docs.aws.amazon.com/AmazonS3/latest/userguide/endpoint-directory-buckets-AZ.html
  (whose table spells the dual-stack regional name ``s3express-control-dualstack.R``: both
  spellings are accepted); Local Zone ids such as ``usw2-lax1-az1``: "Concepts for directory
  buckets in Local Zones", https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-lzs-for-directory-buckets.html.
* ``[B.]s3-website[-.]R``: S3 user guide, "Website endpoints",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/WebsiteEndpoints.html.

``tests/engine/test_hostnames_botocore.py`` checks every rule against the names the installed
botocore's own endpoint rulesets build.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from typing import Callable

logger = logging.getLogger(__name__)

# Region names: "eu-west-1", "us-gov-west-1", "ap-southeast-5", "il-central-1", ...
_REGION = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d+$")
# vpce-<hex id>-<dns suffix>[-<AZ name>]: "vpce-0a1b2c3d-5e6f", "vpce-0a1b2c3d-5e6f-us-east-1a".
_VPCE_LABEL = re.compile(r"^(vpce-[0-9a-f]+)-[0-9a-z]+(-[a-z]{2}(-[a-z]+)+-\d+[a-z])?$")
# A zonal S3 Express label: "s3express-use1-az4", "s3express-fips-usw2-lax1-az1". The rules take
# the zone id from the bucket name by length and botocore's own tests use ids without "az"
# ("abcd-ab1"), so any dash-joined alphanumerics of two parts or more are a zone. A zone never
# starts with "control": "s3express-control-fips" would otherwise read as zone "control-fips".
_S3EXPRESS_ZONAL = re.compile(r"^s3express-(?P<fips>fips-)?(?!control)"
                              r"(?P<zone>[a-z0-9]+(?:-[a-z0-9]+)+)$")
_OUTPOST_LABEL = re.compile(r"^op-[0-9a-f]{17}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_NAME_ACCOUNT = re.compile(r"^[a-z0-9-]+-(\d{12})$")
_SUFFIXES = (("amazonaws", "com", "cn"), ("amazonaws", "com"))
_VPCE_SCOPES = ("bucket", "accesspoint", "control")

# The legacy global endpoint s3.amazonaws.com answers from us-east-1 (S3 user guide, "Legacy
# global endpoint"). A virtual-hosted name on it (BUCKET.s3.amazonaws.com) is different: DNS
# answers with the bucket's region for buckets of regions launched before 2019-03-20.
GLOBAL_ENDPOINT_REGION = "us-east-1"


class HostForm(str, enum.Enum):
    """The base form of an S3 hostname: how the name routes. FIPS and dual-stack are flags."""

    GLOBAL = "global"                    # [B.]s3.amazonaws.com: the legacy global name
    REGIONAL = "regional"                # [B.]s3[-fips][.dualstack].REGION
    DASH_REGION = "dash_region"          # [B.]s3-REGION, s3-fips-REGION (legacy)
    ACCELERATE = "accelerate"            # B.s3-accelerate[.dualstack] (CloudFront edges)
    VPCE = "vpce"                        # an interface endpoint's own name (…vpce.amazonaws.com)
    ACCESS_POINT = "access_point"        # NAME-ACCOUNT.s3-accesspoint[-fips][.dualstack].REGION
    OBJECT_LAMBDA = "object_lambda"      # [NAME-ACCOUNT.]s3-object-lambda[-fips].REGION
    OUTPOSTS = "outposts"                # NAME-ACCOUNT.op-ID.s3-outposts.REGION, s3-outposts[-fips]
    MRAP = "mrap"                        # ALIAS.mrap.accesspoint.s3-global
    CONTROL = "control"                  # [ACCOUNT.]s3-control[-fips][.dualstack].REGION
    S3EXPRESS = "s3express"              # B.s3express[-fips]-ZONE[.dualstack].REGION (zonal)
    S3EXPRESS_CONTROL = "s3express_control"  # s3express-control[-fips][.dualstack].REGION
    WEBSITE = "website"                  # [B.]s3-website[-.]REGION
    OTHER = "other"                      # not an S3 name


@dataclass(frozen=True)
class S3HostForm:
    """What an S3 hostname is: its form and flags, region, bucket and ids where the name says."""

    host: str
    form: HostForm
    region: str | None = None        # the region the name routes to, when the name says
    bucket: str | None = None        # the virtual-hosted bucket (or NAME-ACCOUNT, alias) label(s)
    endpoint_id: str | None = None   # vpce id for interface-endpoint names
    dualstack: bool = False
    fips: bool = False
    zone_id: str | None = None       # S3 Express zone id ("use1-az4", "usw2-lax1-az1")
    outpost_id: str | None = None    # "op-…" when an S3 on Outposts name carries it
    account_id: str | None = None    # access point / Object Lambda / S3 Control account
    vpce_scope: str | None = None    # "bucket", "accesspoint" or "control" on vpce names

    @property
    def is_s3(self) -> bool:
        """True when the name is an S3 name at all."""
        return self.form is not HostForm.OTHER

    @property
    def label(self) -> str:
        """The form with its flags, for people: ``regional``, ``access_point+fips+dualstack``."""
        return (self.form.value + ("+fips" if self.fips else "")
                + ("+dualstack" if self.dualstack else ""))


def _is_region(label: str) -> bool:
    return bool(_REGION.match(label))


def _account_of(prefix: str | None) -> str | None:
    """The account id at the end of an access-point style ``NAME-ACCOUNT`` label."""
    match = _NAME_ACCOUNT.match(prefix or "")
    return match.group(1) if match else None


def parse_s3_host(host: str) -> S3HostForm:
    """Classify ``host`` by matching whole labels from the right (see module docstring)."""
    name = host.strip().rstrip(".").lower()
    if ":" in name and not name.startswith("["):
        name = name.split(":", 1)[0]
    labels = name.split(".")
    for suffix in _SUFFIXES:
        if tuple(labels[-len(suffix):]) == suffix:
            labels = labels[: -len(suffix)]
            break
    else:
        return S3HostForm(host=name, form=HostForm.OTHER)
    if not labels or not all(labels):
        return S3HostForm(host=name, form=HostForm.OTHER)
    count = len(labels)

    def left(n: int) -> str | None:
        """The labels left of the rightmost ``n``, joined (a bucket name may have dots)."""
        rest = labels[: count - n]
        return ".".join(rest) if rest else None

    # Interface endpoint names: [RES.][bucket.|accesspoint.|control.]VPCE-LABEL.s3.REGION.vpce.
    # Region from the name, not the client. What is left of one scope label is the bucket,
    # access point (NAME-ACCOUNT) or, on control., an account.
    if count >= 4 and labels[-1] == "vpce" and labels[-3] == "s3" and _is_region(labels[-2]):
        match = _VPCE_LABEL.match(labels[-4])
        if not match:
            return S3HostForm(host=name, form=HostForm.OTHER)
        rest, scope = labels[:-4], None
        if rest and rest[-1] in _VPCE_SCOPES:
            rest, scope = rest[:-1], rest[-1]
        prefix = ".".join(rest) or None
        common = dict(host=name, form=HostForm.VPCE, region=labels[-2],
                      endpoint_id=match.group(1), vpce_scope=scope)
        if scope == "control" and prefix and _ACCOUNT.match(prefix):
            # S3 Control puts ACCOUNT. in front of control.vpce-…: 12 digits are an account (a
            # 12-digit bucket sent to an S3 control endpoint is legal but improbable).
            return S3HostForm(account_id=prefix, **common)
        return S3HostForm(bucket=prefix, **common,
                          account_id=_account_of(prefix) if scope == "accesspoint" else None)

    # Multi-Region Access Point: ALIAS.mrap.accesspoint.s3-global; the alias includes ".mrap".
    if count >= 4 and labels[-3:] == ["mrap", "accesspoint", "s3-global"]:
        return S3HostForm(host=name, form=HostForm.MRAP, bucket=left(2))

    # Transfer acceleration: B.s3-accelerate[.dualstack], and the aws-global dual-stack name
    # B.s3-accelerate.dualstack.us-east-1 that botocore builds.
    if count >= 2 and labels[-1] == "s3-accelerate":
        return S3HostForm(host=name, form=HostForm.ACCELERATE, bucket=left(1))
    if count >= 3 and labels[-2:] == ["s3-accelerate", "dualstack"]:
        return S3HostForm(host=name, form=HostForm.ACCELERATE, bucket=left(2), dualstack=True)
    if count >= 4 and labels[-3:-1] == ["s3-accelerate", "dualstack"] and _is_region(labels[-1]):
        return S3HostForm(host=name, form=HostForm.ACCELERATE, region=labels[-1],
                          bucket=left(3), dualstack=True)

    # Legacy global: [B.]s3.amazonaws.com and [B.]s3-external-1.amazonaws.com.
    if labels[-1] in ("s3", "s3-external-1"):
        return S3HostForm(host=name, form=HostForm.GLOBAL, region=GLOBAL_ENDPOINT_REGION,
                          bucket=left(1))

    if count >= 2 and _is_region(labels[-1]):
        return _regional_family(name, labels, left)

    # Dash-region legacy names: [B.]s3-REGION, s3-fips-REGION; website: s3-website-REGION.
    last = labels[-1]
    for prefix, form, fips in (("s3-website-", HostForm.WEBSITE, False),
                               ("s3-fips-", HostForm.DASH_REGION, True),
                               ("s3-", HostForm.DASH_REGION, False)):
        if last.startswith(prefix) and _is_region(last[len(prefix):]):
            return S3HostForm(host=name, form=form, region=last[len(prefix):], bucket=left(1),
                              fips=fips)
    return S3HostForm(host=name, form=HostForm.OTHER)


def _regional_family(name: str, labels: list[str], left: Callable[[int], str | None]
                     ) -> S3HostForm:
    """Region-last names: ``[PREFIX.]SERVICE[-fips][.dualstack].REGION``.

    The service label is the one left of the region, or of ``dualstack``; a ``-fips`` suffix on
    it is the FIPS flag of every family (gr/s3.html lists s3-fips, s3-accesspoint-fips,
    s3-control-fips; botocore's rules build s3-object-lambda-fips, s3-outposts-fips and
    s3express-control-fips the same way).
    """
    count = len(labels)
    region = labels[-1]
    dualstack = labels[-2] == "dualstack"
    index = count - 3 if dualstack else count - 2      # the service label
    if index < 0:
        return S3HostForm(host=name, form=HostForm.OTHER)
    service, used = labels[index], count - index          # labels consumed from the right
    base, fips = ((service[: -len("-fips")], True) if service.endswith("-fips")
                  else (service, False))
    flags = dict(host=name, region=region, dualstack=dualstack, fips=fips)

    if base == "s3":
        return S3HostForm(form=HostForm.REGIONAL, bucket=left(used), **flags)
    if base == "s3-accesspoint":
        return S3HostForm(form=HostForm.ACCESS_POINT, bucket=left(used),
                          account_id=_account_of(left(used)), **flags)
    if base == "s3-control":
        # ACCOUNT.s3-control…: the prefix is an account, never a bucket.
        return S3HostForm(form=HostForm.CONTROL, account_id=left(used), **flags)
    if base == "s3-object-lambda" and not dualstack:     # Object Lambda has no dual-stack names
        return S3HostForm(form=HostForm.OBJECT_LAMBDA, bucket=left(used),
                          account_id=_account_of(left(used)), **flags)
    if base == "s3-outposts" and not dualstack:          # dual-stack Outposts names are *.api.aws
        outpost = None
        if index >= 1 and (labels[index - 1] == "ec2" or _OUTPOST_LABEL.match(labels[index - 1])):
            outpost = labels[index - 1] if labels[index - 1] != "ec2" else None
            used += 1
        # A bare s3-outposts[-fips].REGION is the management endpoint (the outpost id travels
        # in a header); with a prefix it is an access point NAME-ACCOUNT or a bucket-style alias.
        return S3HostForm(form=HostForm.OUTPOSTS, bucket=left(used), outpost_id=outpost,
                          account_id=_account_of(left(used)), **flags)
    if base == "s3express-control":
        return S3HostForm(form=HostForm.S3EXPRESS_CONTROL, **flags)
    if service == "s3express-control-dualstack" and not dualstack:
        # The user guide's AZ table spells the dual-stack regional name this way.
        return S3HostForm(host=name, form=HostForm.S3EXPRESS_CONTROL, region=region,
                          dualstack=True)
    zonal = _S3EXPRESS_ZONAL.match(service)
    if zonal:
        return S3HostForm(host=name, form=HostForm.S3EXPRESS, region=region, bucket=left(used),
                          dualstack=dualstack, fips=bool(zonal.group("fips")),
                          zone_id=zonal.group("zone"))
    if service == "s3-website" and not dualstack:
        return S3HostForm(host=name, form=HostForm.WEBSITE, region=region, bucket=left(used))
    return S3HostForm(host=name, form=HostForm.OTHER)
