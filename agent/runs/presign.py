"""Presigned-URL audit: would a presigned URL made on this host keep S3 traffic private?

For a bucket and key it presigns GET and PUT URLs twice:

* ``default``: a boto3 client built the way an application on this host builds one — a plain
  ``boto3.session.Session`` and ``session.client("s3", region_name=R)`` with no overrides, so
  botocore's normal configuration chain applies (``AWS_S3_US_EAST_1_REGIONAL_ENDPOINT``,
  ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, the ``s3`` section of ``~/.aws/config``,
  ``AWS_USE_DUALSTACK_ENDPOINT``, ``AWS_USE_FIPS_ENDPOINT``, ...);
* ``recommended``: the same session with an explicit :func:`recommended_config`.

Each URL's host is classified by :func:`s3_route_agent.engine.hostnames.parse_s3_host` (whole labels, never a
region substring: a bucket named ``us-west-2-logs`` cannot fool it), its signature version is
read from the query string, and its host goes through the same collectors and verdict engine as
``check`` (``s3_route_agent.runs.check.run_check``), so the audit says which path a client using that URL from
this host would take. The smallest client-config change that turns the default URL into the
recommended one is found by presigning candidate configurations, and printed as Python code.

Presigning needs no network and no real credentials: the clients sign with placeholder keys, and
every URL is redacted (:func:`redact_url`) before it reaches any output.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
from botocore.config import Config

from s3_route_agent import __version__
from s3_route_agent.runs.check import CheckDeps, CheckResult, run_check
from s3_route_agent.config import AgentConfig, TargetSpec
from s3_route_agent.engine.forms import S3EXPRESS_FORMS, gateway_service
from s3_route_agent.engine.hostnames import GLOBAL_ENDPOINT_REGION, HostForm, S3HostForm, parse_s3_host
from s3_route_agent.engine.model import (PRIVATE_PATHS, Expect, PathKind, Status, TargetVerdict,
                                         VpcEndpoint)
from s3_route_agent.report.text import identity_line

logger = logging.getLogger(__name__)

# Query parameters that carry a signature, a credential or a session token. SigV2 query auth:
# AWSAccessKeyId, Signature (S3 user guide, "Authenticating requests: query string
# authentication", https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html);
# SigV4: X-Amz-Credential, X-Amz-Signature, X-Amz-Security-Token (S3 API reference,
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
SECRET_QUERY_PARAMETERS = frozenset({"signature", "x-amz-signature", "x-amz-credential",
                                     "x-amz-security-token", "awsaccesskeyid"})
REDACTED = "REDACTED"

# Placeholder keys: the audit looks only at the URL's shape, so it never touches this host's
# secrets (and never asks the instance role, which would be a metadata call).
_PLACEHOLDER_CREDENTIALS = {"aws_access_key_id": "AKIAPRESIGNAUDIT0000",
                            "aws_secret_access_key": "presign-audit-placeholder-secret"}

METHODS = (("GET", "get_object"), ("PUT", "put_object"))

# Environment variables botocore reads that change where a presigned URL points (botocore
# configprovider.py; AWS SDKs and Tools reference guide, "Service-specific endpoints",
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
HOST_ENVIRONMENT_SETTINGS = ("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "AWS_ENDPOINT_URL",
                             "AWS_ENDPOINT_URL_S3", "AWS_USE_DUALSTACK_ENDPOINT",
                             "AWS_USE_FIPS_ENDPOINT", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                             "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION")

# Finding codes and how bad each one is when the path itself is fine.
SEVERITY = {"global_endpoint": "warning", "sigv2": "warning", "path_style": "warning",
            "region_mismatch": "warning", "accelerate": "critical", "fips": "warning",
            "dualstack": "info", "not_private": "critical", "unresolved": "critical",
            "path_unknown": "unknown", "endpoint_from_environment": "info",
            "not_s3": "warning", "s3express": "info", "object_lambda": "warning",
            "outposts": "info"}


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or worth knowing) about a presigned URL."""

    code: str
    severity: str                    # "info", "warning", "critical" or "unknown"
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"code": self.code, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class ClientSetup:
    """How one S3 client is built: its name, region, endpoint URL and explicit Config options."""

    name: str                        # "default" or "recommended" (or "candidate" in the search)
    region: str
    endpoint_url: str | None = None
    options: tuple[tuple[str, Any], ...] = ()   # Config(**dict(options)); "s3" holds a dict

    def config(self) -> Config | None:
        """The botocore Config, or None when the client takes none (the host's chain only)."""
        return Config(**dict(self.options)) if self.options else None


@dataclass(frozen=True)
class UrlShape:
    """What a presigned URL is, read from the URL alone (no DNS, no facts)."""

    url: str                         # redacted
    host: str
    form: S3HostForm
    signature: str                   # "sigv2", "sigv4", "sigv4a" or "unsigned"
    addressing: str                  # "virtual" or "path"
    object_path: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What two URLs must share to send a request the same way."""
        return (self.host, self.signature, self.addressing, self.object_path)


@dataclass(frozen=True)
class PresignedUrl:
    """One audited URL: its shape, the path its host takes from here, and the findings."""

    config: str
    method: str
    shape: UrlShape
    verdict: TargetVerdict | None
    findings: tuple[Finding, ...]
    status: Status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the contract of ``presign --format json``)."""
        verdict = self.verdict
        return {"config": self.config, "method": self.method, "url": self.shape.url,
                "host": self.shape.host, "form": self.shape.form.form.value,
                "fips": self.shape.form.fips, "dualstack": self.shape.form.dualstack,
                "region": self.shape.form.region, "bucket_in_host": self.shape.form.bucket,
                "endpoint_id": self.shape.form.endpoint_id,
                "signature": self.shape.signature, "addressing": self.shape.addressing,
                "path": verdict.path.value if verdict else PathKind.UNKNOWN.value,
                "status": self.status.name, "reason": verdict.reason if verdict else None,
                "findings": [f.code for f in self.findings],
                "finding_details": [f.to_dict() for f in self.findings],
                "addresses": [a.to_dict() for a in verdict.addresses] if verdict else [],
                "evidence": list(verdict.evidence) if verdict else []}


@dataclass(frozen=True)
class PresignAudit:
    """The audit's result: every URL, the fix, the status (= exit code) and the report."""

    urls: tuple[PresignedUrl, ...]
    fix: "ConfigFix | None"
    status: Status
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigFix:
    """The smallest set of client options that makes the default URLs match the recommended."""

    options: tuple[tuple[str, Any], ...]
    endpoint_url: str | None
    region: str
    python: str
    verified: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"options": {k: v for k, v in self.options}, "endpoint_url": self.endpoint_url,
                "region": self.region, "python": self.python, "verified": self.verified,
                "note": self.note}


# --- reading a URL ----------------------------------------------------------------------------

def redact_url(url: str) -> str:
    """``url`` with every signature, credential and token value replaced by ``REDACTED``."""
    parts = urlsplit(url)
    query = [(k, REDACTED if k.lower() in SECRET_QUERY_PARAMETERS else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    netloc = parts.netloc.rsplit("@", 1)[-1]  # user-info in a URL is a credential too
    return urlunsplit((parts.scheme, netloc, parts.path,
                       urlencode(query, quote_via=quote, safe="/"), parts.fragment))


def signature_version_of(url: str) -> str:
    """``sigv4`` / ``sigv4a`` (X-Amz-Algorithm), ``sigv2`` (AWSAccessKeyId + Signature) or ``unsigned``.

    SigV4 query auth names its algorithm in X-Amz-Algorithm: AWS4-HMAC-SHA256, or
    AWS4-ECDSA-P256-SHA256 for SigV4A (S3 API reference, "Authenticating Requests: Using Query
    Parameters"); SigV2 query auth carries AWSAccessKeyId, Expires and Signature.
    """
    params = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    algorithm = params.get("x-amz-algorithm", "")
    if algorithm == "AWS4-ECDSA-P256-SHA256":
        return "sigv4a"
    if algorithm.startswith("AWS4"):
        return "sigv4"
    if "awsaccesskeyid" in params and "signature" in params:
        return "sigv2"
    return "unsigned"


def url_shape(url: str, bucket: str) -> UrlShape:
    """Classify a presigned URL: host form, signature, addressing style (redacted URL kept)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    form = parse_s3_host(host)
    segments = [s for s in parts.path.split("/") if s]
    # Virtual-hosted style carries the bucket in the host; path style as the first path segment
    # (S3 user guide, "Virtual hosting of buckets",
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html).
    if form.bucket == bucket.lower():
        addressing = "virtual"
    elif segments and segments[0] == bucket:
        addressing = "path"
    else:
        addressing = "virtual"
    return UrlShape(url=redact_url(url), host=host, form=form,
                    signature=signature_version_of(url), addressing=addressing,
                    object_path=parts.path)


# --- building clients -------------------------------------------------------------------------

def recommended_options() -> tuple[tuple[str, Any], ...]:
    """Client options that keep presigned URLs on the regional, SigV4, virtual-hosted name.

    * ``signature_version='s3v4'``: botocore still presigns S3 with SigV2 by default, which S3
      no longer accepts for buckets created after 2020-06-24 (S3 user guide, "Signature Version 2
      turned off", https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingAWSSDK.html).
    * ``addressing_style='virtual'``: botocore presigns on the legacy global name unless told to
      use virtual hosting (measured, botocore 1.44.5; boto3 #2728, #3015, #4696); path style is
      deprecated (AWS News Blog, "Amazon S3 Path Deprecation Plan").
    * ``us_east_1_regional_endpoint='regional'``: without it us-east-1 uses s3.amazonaws.com.
    * acceleration, dual-stack and FIPS explicitly off: acceleration is CloudFront (always
      public), and FIPS and dual-stack names are not covered by interface-endpoint private DNS.
    * ``ignore_configured_endpoint_urls``: an AWS_ENDPOINT_URL(_S3) set on the host must not
      silently move the URL (SDK reference, "Service-specific endpoints").
    """
    return (("signature_version", "s3v4"),
            ("s3", {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional",
                    "use_accelerate_endpoint": False, "use_dualstack_endpoint": False}),
            ("use_dualstack_endpoint", False),
            ("use_fips_endpoint", False),
            ("ignore_configured_endpoint_urls", True))


def host_session() -> boto3.session.Session:
    """A Session that reads this host's configuration chain, signing with placeholder keys."""
    return boto3.session.Session(**_PLACEHOLDER_CREDENTIALS)


def presign(setup: ClientSetup, bucket: str, key: str, expires_seconds: int = 300,
            session_factory: Callable[[], boto3.session.Session] = host_session,
            ) -> dict[str, str]:
    """Presigned URLs (unredacted, stays in memory) per HTTP method for ``setup``. No network."""
    session = session_factory()
    kwargs: dict[str, Any] = {"region_name": setup.region}
    if setup.endpoint_url:
        kwargs["endpoint_url"] = setup.endpoint_url
    config = setup.config()
    if config is not None:
        kwargs["config"] = config
    client = session.client("s3", **kwargs)
    return {method: client.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key},
                                                  ExpiresIn=expires_seconds)
            for method, operation in METHODS}


def host_settings(environ: Mapping[str, str] | None = None,
                  session_factory: Callable[[], boto3.session.Session] = host_session,
                  ) -> dict[str, Any]:
    """The settings on this host that change a presigned URL: env vars and the config file's s3."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {"environment": {k: env[k] for k in HOST_ENVIRONMENT_SETTINGS if k in env}}
    try:
        scoped = session_factory()._session.get_scoped_config()  # the active profile's section
    except Exception as exc:  # noqa: BLE001 - a broken profile is a fact, not a crash
        out["config_file_error"] = f"{type(exc).__name__}: {exc}"
        return out
    keys = ("s3", "endpoint_url", "use_dualstack_endpoint", "use_fips_endpoint",
            "s3_us_east_1_regional_endpoint", "signature_version", "region",
            "ignore_configured_endpoint_urls")
    out["config_file"] = {k: scoped[k] for k in keys if k in scoped}
    return out


# --- findings ---------------------------------------------------------------------------------

def shape_findings(shape: UrlShape, bucket_region: str, vpc_region: str | None,
                   environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings that come from the URL alone."""
    env = os.environ if environ is None else environ
    form = shape.form
    found: list[Finding] = []

    def add(code: str, message: str, severity: str | None = None) -> None:
        found.append(Finding(code, severity or SEVERITY[code], message))

    if form.form is HostForm.GLOBAL:
        # The legacy global name resolves to us-east-1 (S3 user guide, "Legacy global endpoint",
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html#VirtualHostingBackwardsCompatibility);
        # a gateway endpoint carries only its own region's S3 and interface-endpoint private DNS
        # does not cover the global name (PrivateLink for S3, "Private DNS").
        # With the bucket in the name it follows the bucket's region instead (same page,
        # "Virtual-hosted-style requests for other Regions").
        answers = (f"follows the bucket's region, {GLOBAL_ENDPOINT_REGION} until S3 updates its "
                   "DNS record" if form.bucket else f"answers from {GLOBAL_ENDPOINT_REGION}")
        add("global_endpoint", f"{shape.host} is the legacy global S3 name ({answers}); use the "
            f"regional name s3.{bucket_region}.amazonaws.com.")
    if shape.signature == "sigv2":
        add("sigv2", "The URL is signed with Signature Version 2 (AWSAccessKeyId/Signature); S3 "
            "refuses SigV2 for buckets created after 2020-06-24: set signature_version='s3v4'.")
    if shape.addressing == "path":
        if form.form is HostForm.VPCE:
            # Path-style requests are how an interface endpoint's bucket name is used (S3 user
            # guide, "AWS PrivateLink for Amazon S3": endpoint-specific DNS names).
            add("path_style", f"Path-style URL on interface endpoint name {shape.host}: "
                "supported there.", severity="info")
        else:
            add("path_style", "The URL is path-style (bucket in the path); S3 is deprecating path "
                "style: set s3={'addressing_style': 'virtual'}.")
    if form.form is HostForm.ACCELERATE:
        # Transfer Acceleration enters AWS at CloudFront edge locations over the internet (S3
        # user guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/transfer-acceleration.html).
        add("accelerate", f"{shape.host} is a Transfer Acceleration name: CloudFront edges, "
            "always the public path; set s3={'use_accelerate_endpoint': False}.")
    if form.fips:
        # "AWS PrivateLink for Amazon S3 does not support ... FIPS endpoints" (S3 user guide,
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html#privatelink-limitations):
        # FIPS access point and control names included.
        add("fips", f"{shape.host} is a FIPS name: interface-endpoint private DNS does not cover "
            "FIPS names (PrivateLink for S3).")
    if form.form in S3EXPRESS_FORMS:
        add("s3express", f"{shape.host} is an S3 Express One Zone name: only a gateway endpoint "
            f"for {gateway_service(form, form.region or bucket_region)} carries it, not the S3 "
            "gateway endpoint.")
    if form.form is HostForm.OBJECT_LAMBDA:
        add("object_lambda", f"{shape.host} is an Object Lambda Access Point name: no gateway "
            "endpoint carries it (its ranges are not in the S3 prefix list).")
    if form.form is HostForm.OUTPOSTS:
        add("outposts", f"{shape.host} is an S3 on Outposts name: its data goes through the S3 on "
            "Outposts endpoint in the VPC, never a gateway endpoint or PrivateLink.")
    if form.dualstack and form.form is not HostForm.ACCELERATE:
        add("dualstack", f"{shape.host} is a dual-stack name: AAAA answers go over IPv6 routes, "
            "which a gateway endpoint carries only with IpAddressType dualstack.")
    if not form.is_s3:
        add("not_s3", f"{shape.host} is not an S3 name (a custom endpoint URL?).")
    # The region label of B.s3-accelerate.dualstack.us-east-1 names no destination: CloudFront.
    url_region = form.region if form.form is not HostForm.ACCELERATE else None
    if url_region and url_region != bucket_region:
        add("region_mismatch", f"{shape.host} routes to {url_region}, but the bucket's region is "
            f"{bucket_region}.")
    elif url_region and vpc_region and url_region != vpc_region and form.form is not HostForm.VPCE:
        add("region_mismatch", f"{shape.host} routes to {url_region}, not this VPC's "
            f"{vpc_region}: a gateway endpoint only carries S3 of its own region.")
    if any(env.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")):
        add("endpoint_from_environment", "AWS_ENDPOINT_URL(_S3) is set on this host: the default "
            "client's URLs point where it says.")
    return found


def verdict_findings(verdict: TargetVerdict | None) -> list[Finding]:
    """Findings that come from the path the URL's host takes from this host."""
    if verdict is None:
        return [Finding("path_unknown", SEVERITY["path_unknown"], "no verdict for this host")]
    if verdict.path is PathKind.UNRESOLVED:
        return [Finding("unresolved", SEVERITY["unresolved"], verdict.reason)]
    if verdict.path is PathKind.UNKNOWN:
        return [Finding("path_unknown", SEVERITY["path_unknown"], verdict.reason)]
    if verdict.path not in PRIVATE_PATHS:
        return [Finding("not_private", SEVERITY["not_private"],
                        f"{verdict.target.host} takes the {verdict.path.value} path from this "
                        f"host: {verdict.reason}.")]
    return []


def url_status(verdict: TargetVerdict | None, findings: Iterable[Finding]) -> Status:
    """The engine's status for the host, raised by the findings' severities."""
    statuses = [verdict.status if verdict else Status.UNKNOWN]
    for finding in findings:
        statuses.append({"warning": Status.WARNING, "critical": Status.CRITICAL,
                         "unknown": Status.UNKNOWN}.get(finding.severity, Status.OK))
    return Status.worst(statuses)


# --- the smallest fix -------------------------------------------------------------------------

def _flatten(options: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """One knob per item: ("s3", {...}) becomes ("s3.addressing_style", ...) and so on."""
    knobs: list[tuple[str, Any]] = []
    for name, value in options:
        if name == "s3":
            knobs.extend((f"s3.{k}", v) for k, v in value.items())
        else:
            knobs.append((name, value))
    return knobs


def _unflatten(knobs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    out: dict[str, Any] = {}
    for name, value in knobs:
        if name.startswith("s3."):
            out.setdefault("s3", {})[name[3:]] = value
        else:
            out[name] = value
    return tuple(out.items())


def python_for(region: str, endpoint_url: str | None, options: Iterable[tuple[str, Any]]) -> str:
    """Python code that builds the client with these options."""
    options = tuple(options)
    lines = ["import boto3"]
    args = [repr("s3"), f"region_name={region!r}"]
    if endpoint_url:
        args.append(f"endpoint_url={endpoint_url!r}")
    if options:
        lines.append("from botocore.config import Config")
        config_args = ", ".join(f"{k}={v!r}" for k, v in options)
        args.append(f"config=Config({config_args})")
    lines.append("")
    lines.append(f"s3 = boto3.client({', '.join(args)})")
    return "\n".join(lines)


def smallest_fix(default: ClientSetup, recommended: ClientSetup, bucket: str, key: str,
                 session_factory: Callable[[], boto3.session.Session] = host_session,
                 ) -> ConfigFix:
    """The fewest recommended options that make the default client presign like the recommended.

    Found by presigning: candidate subsets are tried smallest first, each applied on top of the
    host's own configuration chain, until GET and PUT URLs match the recommended client's host,
    signature, addressing and path. An endpoint URL the recommended client uses is always part of
    the fix (it decides the host).
    """
    target = {m: url_shape(u, bucket).key
              for m, u in presign(recommended, bucket, key, session_factory=session_factory).items()}
    knobs = _flatten(recommended.options)
    endpoint_url = recommended.endpoint_url
    for size in range(len(knobs) + 1):
        for subset in itertools.combinations(knobs, size):
            options = _unflatten(subset)
            candidate = ClientSetup("candidate", recommended.region, endpoint_url, options)
            try:
                urls = presign(candidate, bucket, key, session_factory=session_factory)
            except Exception as exc:  # noqa: BLE001 - an invalid combination is just not a fix
                logger.debug("candidate %s failed: %s", options, exc)
                continue
            if all(url_shape(u, bucket).key == target[m] for m, u in urls.items()):
                note = ("no change needed: the host's configuration already presigns like the "
                        "recommended one" if not options and endpoint_url == default.endpoint_url
                        else "verified by presigning with this configuration on this host")
                return ConfigFix(options, endpoint_url, recommended.region,
                                 python_for(recommended.region, endpoint_url, options), True, note)
    return ConfigFix(recommended.options, recommended.endpoint_url, recommended.region,
                     python_for(recommended.region, recommended.endpoint_url,
                                recommended.options), False,
                     "no smaller configuration reproduces the recommended URL; use all of it")


# --- the audit --------------------------------------------------------------------------------

def interface_endpoint_url(endpoint: VpcEndpoint) -> str | None:
    """``https://bucket.vpce-….s3.REGION.vpce.amazonaws.com`` for an S3 interface endpoint.

    The endpoint-specific name without an Availability Zone is the regional one (S3 user guide,
    "AWS PrivateLink for Amazon S3", https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html:
    ``endpoint_url='https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com'``).
    """
    names = sorted((n.removeprefix("*.") for n in endpoint.dns_names
                    if parse_s3_host(n.removeprefix("*.")).form is HostForm.VPCE), key=len)
    return f"https://bucket.{names[0]}" if names else None


def _check_hosts(config: AgentConfig, deps: CheckDeps, hosts: Iterable[str],
                 expect: Expect) -> CheckResult:
    """Run ``check`` (same collectors, same engine) with exactly these hosts as targets.

    The audit judges URLs, it moves no data: the test transfer (and with it the oracle) and the
    packet probes are switched off whatever the config says.
    """
    specs = tuple(TargetSpec(name=f"url-{i + 1}", host=h, expect=expect)
                  for i, h in enumerate(dict.fromkeys(hosts)))
    return run_check(replace(config, targets=specs,
                             transfer=replace(config.transfer, enabled=False),
                             probe=replace(config.probe, enabled=False)), deps)


def run_presign_audit(config: AgentConfig, deps: CheckDeps, bucket: str, key: str,
                      region: str | None = None, endpoint_url: str | None = None,
                      vpce_id: str | None = None, expect: Expect | None = None,
                      session_factory: Callable[[], boto3.session.Session] = host_session,
                      environ: Mapping[str, str] | None = None) -> PresignAudit:
    """Presign, classify, route and judge; never raises for a collector failure.

    A first ``check`` run on the regional name gathers the facts (identity, inventory, and
    whether the regional name is private from here); with ``vpce_id`` it also supplies that
    endpoint's DNS name. A second run (inventory from the cache) judges every URL's host.
    """
    env = os.environ if environ is None else environ
    expect = expect or config.default_expect
    run_id = uuid.uuid4().hex
    errors: list[str] = []
    first_region = region or config.aws.region or "{region}"
    probe = _check_hosts(config, deps, [f"s3.{first_region}.amazonaws.com"], expect)
    facts = probe.facts
    if facts is None or facts.identity is None:
        status = Status.UNKNOWN
        report = _report(run_id, bucket, key, region, (), None, status, list(probe.errors),
                         None, probe, env, session_factory)
        return PresignAudit((), None, status, report)
    vpc_region = facts.identity.region
    bucket_region = region or vpc_region
    inventory = facts.inventory

    if vpce_id:
        endpoint = inventory.endpoint(vpce_id) if inventory else None
        endpoint_url = interface_endpoint_url(endpoint) if endpoint else None
        if endpoint_url is None:
            message = (f"{vpce_id} is not an S3 interface endpoint of this VPC with a DNS name "
                       "(DescribeVpcEndpoints)")
            report = _report(run_id, bucket, key, bucket_region, (), None, Status.UNKNOWN,
                             [message], facts, probe, env, session_factory)
            return PresignAudit((), None, Status.UNKNOWN, report)

    # The recommended endpoint: what the caller named, else the regional name when it is private
    # from here, else an S3 interface endpoint of the VPC (its endpoint-specific name).
    recommended_endpoint = endpoint_url
    regional_private = bool(probe.verdicts) and probe.verdicts[0].path in PRIVATE_PATHS
    if recommended_endpoint is None and not regional_private and inventory is not None:
        for candidate in inventory.s3_endpoints(bucket_region, "interface"):
            if candidate.is_available:
                recommended_endpoint = interface_endpoint_url(candidate)
                if recommended_endpoint:
                    break

    default = ClientSetup("default", bucket_region, endpoint_url)
    recommended = ClientSetup("recommended", bucket_region, recommended_endpoint,
                              recommended_options())
    shapes: list[tuple[str, str, UrlShape]] = []
    for setup in (default, recommended):
        try:
            for method, url in presign(setup, bucket, key, session_factory=session_factory).items():
                shapes.append((setup.name, method, url_shape(url, bucket)))
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed AWS_ENDPOINT_URL on the host
            errors.append(f"cannot presign with the {setup.name} client: "
                          f"{type(exc).__name__}: {redact_url(str(exc))}")
    if not shapes:
        report = _report(run_id, bucket, key, bucket_region, (), None, Status.UNKNOWN, errors,
                         facts, probe, env, session_factory)
        return PresignAudit((), None, Status.UNKNOWN, report)

    checked = _check_hosts(config, deps, [s.host for _, _, s in shapes], expect)
    by_host = {v.target.host: v for v in checked.verdicts}
    errors.extend(e for e in checked.errors if e not in errors)
    urls: list[PresignedUrl] = []
    for name, method, shape in shapes:
        verdict = by_host.get(shape.host)
        findings = shape_findings(shape, bucket_region, vpc_region, env) + verdict_findings(verdict)
        urls.append(PresignedUrl(name, method, shape, verdict, tuple(findings),
                                 url_status(verdict, findings)))
    fix = None
    try:
        fix = smallest_fix(default, recommended, bucket, key, session_factory)
    except Exception as exc:  # noqa: BLE001 - the audit stands without a fix
        errors.append(f"cannot compute the fix: {type(exc).__name__}: {exc}")
    status = Status.worst([u.status for u in urls])
    report = _report(run_id, bucket, key, bucket_region, tuple(urls), fix, status, errors,
                     checked.facts or facts, checked, env, session_factory)
    return PresignAudit(tuple(urls), fix, status, report)


def _report(run_id: str, bucket: str, key: str, region: str | None,
            urls: tuple[PresignedUrl, ...], fix: ConfigFix | None, status: Status,
            errors: list[str], facts: Any, check: CheckResult | None, env: Mapping[str, str],
            session_factory: Callable[[], boto3.session.Session]) -> dict[str, Any]:
    """The presign report document."""
    bad = [u for u in urls if u.status is not Status.OK]
    if errors and not urls:
        summary = f"{status.name}: {errors[0]}"
    elif bad:
        worst = max(bad, key=lambda u: [Status.OK, Status.WARNING, Status.UNKNOWN,
                                        Status.CRITICAL].index(u.status))
        summary = (f"{status.name}: {worst.config} {worst.method} URL on {worst.shape.host} "
                   f"({worst.shape.form.label}, {worst.shape.signature}) -> "
                   f"{worst.verdict.path.value if worst.verdict else 'unknown'}: "
                   f"{', '.join(f.code for f in worst.findings if f.severity != 'info')}")
    else:
        summary = f"{status.name}: every presigned URL stays on a private path"
    identity = facts.identity.to_dict() if facts is not None and facts.identity else None
    return {
        "schema_version": "1.0", "command": "presign", "run_id": run_id,
        "agent": {"name": "s3-route-agent", "version": __version__},
        "identity": identity, "status": status.name, "exit_code": int(status),
        "summary": summary, "bucket": bucket, "key": key, "region": region,
        "host_settings": host_settings(env, session_factory),
        "urls": [u.to_dict() for u in urls],
        "fix": fix.to_dict() if fix else None,
        "check": check.report.document if check else None,
        "errors": [" ".join(str(e).split()) for e in errors],
    }


def render_presign_text(report: dict[str, Any]) -> str:
    """The audit for people: one line per URL, its findings, then the fix as code."""
    lines = [f"presign audit of s3://{report['bucket']}/{report['key']} "
             f"(region {report['region'] or '-'}): overall {report['status']}"]
    ident = report.get("identity")
    if ident:
        lines.append(identity_line(ident.get("instance_id"), ident["region"], ident["vpc_id"],
                                   ident["subnet_id"]))
    settings = report.get("host_settings") or {}
    shown = {**settings.get("environment", {}), **{f"~/.aws/config {k}": v for k, v in
                                                   settings.get("config_file", {}).items()}}
    if shown:
        lines.append("host settings: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for error in report["errors"]:
        lines.append(f"error: {error}")
    for url in report["urls"]:
        lines.append("")
        form = url["form"] + ("+fips" if url.get("fips") else "") + (
            "+dualstack" if url.get("dualstack") else "")
        lines.append(f"{url['status']:<8} {url['config']:<11} {url['method']:<4} {form:<12} "
                     f"{url['signature']:<6} {url['addressing']:<7} -> {url['path']}")
        lines.append(f"  {url['url']}")
        for finding in url["finding_details"]:
            lines.append(f"  [{finding['severity']}] {finding['code']}: {finding['message']}")
        for sentence in url["evidence"]:
            lines.append(f"  - {sentence}")
        for address in url["addresses"]:
            for sentence in address["evidence"]:
                lines.append(f"  - {sentence}")
    fix = report.get("fix")
    if fix:
        lines.append("")
        lines.append(f"smallest client-config fix ({fix['note']}):")
        lines.extend(f"    {line}" if line else "" for line in fix["python"].splitlines())
    return "\n".join(lines)
