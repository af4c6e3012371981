"""The agent's YAML configuration: each key declared once, validated before anything runs, frozen.

Every key is a field of a frozen dataclass below, declared with :func:`setting` (its default,
a one-line description and its limits) or :func:`section` (a nested mapping). Everything else is
derived from those declarations: validation (:func:`parse_config` walks the YAML node tree
against the fields' types), the defaults, the README's configuration table
(:func:`config_reference`, checked by a test) and the check that the commented example config
names every key.

Errors name the key path and the line, e.g. ``targets[1].expect (line 14): must be one of
gateway, interface, private, public, any``. An unknown key is an error, so a typo never silently
turns a check off.

Annotations use ``typing.Optional`` (not ``X | None``) so that ``typing.get_type_hints``
evaluates them on Python 3.9 too.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Iterator, Optional, Union, get_args, get_origin,
                    get_type_hints)

import yaml
from yaml.constructor import SafeConstructor

from s3_route_agent.engine.kinds import Expect
from s3_route_agent.errors import ConfigError

if TYPE_CHECKING:  # built by targets_for only: validate-config loads no model dataclass
    from s3_route_agent.engine.model import Target

logger = logging.getLogger(__name__)

DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
DEFAULT_STATE_DIR = "/var/lib/s3-route-agent"
# Where the config is read from without --config: $S3_ROUTE_AGENT_CONFIG, else this file, else
# the built-in defaults (locate_config).
CONFIG_ENV = "S3_ROUTE_AGENT_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/s3-route-agent/config.yaml"
BUILT_IN_DEFAULTS = "built-in defaults"
_REGION_PATTERN = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d+$")


# ---- declaring keys ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """What a key's declaration says beyond its type: description, bounds, a custom check."""

    doc: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    check: Optional[Callable[[Any], Optional[str]]] = None
    default_doc: Optional[str] = None     # the default as the README states it, when not literal


def setting(default: Any, doc: str, *, minimum: Optional[float] = None,
            maximum: Optional[float] = None, check: Optional[Callable[[Any], Optional[str]]] = None,
            default_doc: Optional[str] = None) -> Any:
    """Declare one config key: its default, a one-line description and its limits."""
    rule = Rule(doc, minimum, maximum, check, default_doc)
    return field(default=default, metadata={"rule": rule})


def required(doc: str, *, check: Optional[Callable[[Any], Optional[str]]] = None) -> Any:
    """Declare a key that must be given (inside a list item such as a target)."""
    return field(metadata={"rule": Rule(doc, check=check)})


def section(cls: type, doc: str) -> Any:
    """Declare a nested mapping of keys (its fields are declared in ``cls``)."""
    return field(default_factory=cls, metadata={"rule": Rule(doc)})


def _region_problem(value: str) -> Optional[str]:
    if not _REGION_PATTERN.match(value):
        return f"{value!r} is not an AWS region name (like eu-west-1)"
    if value not in known_regions():
        return f"unknown AWS region {value!r}"
    return None


def known_regions() -> frozenset[str]:
    """Regions botocore knows, across partitions (from its bundled endpoint data).

    The same set as botocore's ``Session.get_available_regions("ec2", partition)`` over
    ``get_available_partitions()``: each partition's EC2 endpoint names that are regions of that
    partition. Read from botocore's ``data/endpoints.json`` directly (about 15 ms), found with
    importlib without importing botocore: a session would load the EC2 model first (160-220 ms),
    and a warm ``check`` imports no botocore at all. Falls back to the session when the data
    file is not where botocore keeps it.
    """
    global _KNOWN_REGIONS
    if _KNOWN_REGIONS is None:
        data = _botocore_endpoint_data()
        if data is None:
            _KNOWN_REGIONS = _regions_from_session()
        else:
            _KNOWN_REGIONS = frozenset(_regions_from_endpoint_data(data))
    return _KNOWN_REGIONS


_KNOWN_REGIONS: Optional[frozenset[str]] = None


def _regions_from_endpoint_data(data: dict[str, Any]) -> Iterator[str]:
    """Each partition's EC2 endpoints that are regions of the partition (botocore's
    ``EndpointResolver.get_available_endpoints("ec2", partition)``, ``allow_non_regional`` off)."""
    for partition in data.get("partitions", ()):
        regions = partition.get("regions", {})
        endpoints = partition.get("services", {}).get("ec2", {}).get("endpoints", {})
        yield from (name for name in endpoints if name in regions)


def _botocore_endpoint_data() -> Optional[dict[str, Any]]:
    """botocore's bundled endpoints.json (or .json.gz), located without importing botocore."""
    import importlib.util
    import json
    spec = importlib.util.find_spec("botocore")
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        for name, opener in (("endpoints.json", open), ("endpoints.json.gz", None)):
            path = Path(folder) / "data" / name
            if not path.is_file():
                continue
            try:
                if opener is None:
                    import gzip
                    with gzip.open(path, "rt", encoding="utf-8") as fh:
                        return dict(json.load(fh))
                with open(path, encoding="utf-8") as fh:
                    return dict(json.load(fh))
            except (OSError, ValueError):
                logger.debug("cannot read %s; asking a botocore session", path)
    return None


def _regions_from_session() -> frozenset[str]:
    import botocore.session  # only when the endpoint data file is not found
    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def _url_problem(value: str) -> Optional[str]:
    return None if re.match(r"^https?://[^\s/]+", value) else f"{value!r} is not an http(s) URL"


def _host_problem(value: str) -> Optional[str]:
    bad = value.replace("{region}", "r").replace("{bucket}", "b")
    if not re.match(r"^[A-Za-z0-9.-]+$", bad) or ".." in bad:
        return f"{value!r} is not a hostname (templates allowed: {{region}}, {{bucket}})"
    return None


def _prefix_problem(prefix: str) -> Callable[[str], Optional[str]]:
    return lambda value: None if value.startswith(prefix) else f"must start with {prefix}"


_PORT = dict(minimum=1, maximum=65535)
_POSITIVE = dict(minimum=0.001)


# ---- the keys ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AwsSettings:
    """AWS API settings."""

    region: Optional[str] = setting(None, "region of this host", check=_region_problem,
                                    default_doc="from IMDS, else `AWS_REGION` / "
                                                "`AWS_DEFAULT_REGION`")
    endpoint_url: Optional[str] = setting(None, "one URL for every AWS API (emulators only)",
                                          check=_url_problem)
    connect_timeout_seconds: float = setting(3.0, "botocore connect timeout", **_POSITIVE)
    read_timeout_seconds: float = setting(10.0, "botocore read timeout", **_POSITIVE)
    max_attempts: int = setting(3, "attempts per AWS call, the first included (standard retry "
                                   "mode)", minimum=1)


@dataclass(frozen=True)
class ImdsSettings:
    """Instance metadata (IMDSv2) settings."""

    enabled: bool = setting(True, "ask instance metadata (IMDSv2 only) for region, VPC, subnet",
                            default_doc="true (false when `AWS_EC2_METADATA_DISABLED=true` and "
                                        "no endpoint is set)")
    endpoint: Optional[str] = setting(
        None, "IMDS base URL", check=_url_problem,
        default_doc="`$AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`")
    timeout_seconds: float = setting(1.0, "timeout of each IMDS request", **_POSITIVE)
    attempts: int = setting(2, "attempts per IMDS request", minimum=1)
    token_ttl_seconds: int = setting(21600, "IMDSv2 session token lifetime", minimum=1,
                                     maximum=21600)


@dataclass(frozen=True)
class IdentityOverrides:
    """Config values that override what IMDS says (tests, hosts that are not EC2)."""

    instance_id: Optional[str] = setting(None, "this host's instance id", default_doc="from IMDS")
    vpc_id: Optional[str] = setting(None, "this host's VPC (with `aws.region` and `subnet_id`, "
                                          "IMDS is not asked)", check=_prefix_problem("vpc-"),
                                    default_doc="from IMDS")
    subnet_id: Optional[str] = setting(None, "this host's subnet",
                                       check=_prefix_problem("subnet-"), default_doc="from IMDS")


@dataclass(frozen=True)
class DnsConfig:
    """DNS resolver settings."""

    nameservers: tuple[str, ...] = setting((), "resolver addresses",
                                           default_doc="the system resolver")
    port: int = setting(53, "resolver port", **_PORT)
    timeout_seconds: float = setting(2.0, "timeout of each lookup", **_POSITIVE)
    query_ipv6: bool = setting(True, "ask AAAA as well as A")


@dataclass(frozen=True)
class S3RangesConfig:
    """Where S3's address ranges (ip-ranges.json format) come from."""

    file: Optional[str] = setting(None, "local ip-ranges.json (relative: to the config's folder)")
    download: bool = setting(False, "download ip-ranges.json (cached in `state_dir`)")
    url: str = setting("https://ip-ranges.amazonaws.com/ip-ranges.json", "where to download it",
                       check=_url_problem)
    max_age_hours: float = setting(24.0, "age after which the download is refreshed",
                                   **_POSITIVE)


@dataclass(frozen=True)
class TargetSpec:
    """A configured target before templates are filled in."""

    name: str = required("target name (unique)")
    host: str = required("hostname to check; `{region}` and `{bucket}` are filled in",
                         check=_host_problem)
    expect: Optional[Expect] = setting(None, "expected path", default_doc="`default_expect`")
    bucket: Optional[str] = setting(None, "bucket the name serves")


@dataclass(frozen=True)
class TransferConfig:
    """Test-transfer settings (the transfer itself comes with live evidence)."""

    enabled: bool = setting(False, "run the live test transfer (PUT, GET, DELETE a canary)")
    bucket: Optional[str] = setting(None, "canary bucket")
    prefix: str = setting("s3-route-agent/canary/", "canary key prefix")
    size_bytes: int = setting(1024 * 1024, "canary size", minimum=1)
    timeout_seconds: float = setting(30.0, "timeout of each transfer request", **_POSITIVE)
    stale_canary_seconds: float = setting(3600.0, "canaries under the prefix older than this "
                                                  "are deleted (at start and before each "
                                                  "transfer)", minimum=10)


@dataclass(frozen=True)
class OracleConfig:
    """The path oracle (issue 4 section 4): a bucket whose policy (``oracle-policy``) makes S3
    itself say which path a request took; read by the transfer step when ``bucket`` is set."""

    bucket: Optional[str] = setting(None, "path-oracle bucket (`oracle-policy` prints its policy)")
    prefix: str = setting("oracle/", "path-oracle key prefix")


@dataclass(frozen=True)
class ProbeConfig:
    """Packet probes (scapy, extra ``probe``): SYN traceroute and a sniffer during the transfer."""

    enabled: bool = setting(False, "packet probes (extra `probe`, CAP_NET_RAW)")
    port: int = setting(443, "TCP port of the SYN traceroute", **_PORT)
    max_hops: int = setting(8, "traceroute hops at most", minimum=1, maximum=30)
    timeout_seconds: float = setting(1.0, "wait per hop", **_POSITIVE)


@dataclass(frozen=True)
class ProxyConfig:
    """Proxies as botocore's ``Config(proxies=...)`` gives them; when set, they replace the
    environment's HTTP(S)_PROXY and NO_PROXY is not consulted (botocore.endpoint)."""

    http: Optional[str] = setting(None, "proxy for http:// (as botocore's `Config(proxies=…)`)",
                                  default_doc="from the environment")
    https: Optional[str] = setting(None, "proxy for https://; replaces HTTPS_PROXY",
                                   default_doc="from the environment")


@dataclass(frozen=True)
class FlowLogsConfig:
    """Flow-log corroboration (issue 4 section 6, opt-in): where the flow logs are, query bounds."""

    enabled: bool = setting(False, "corroborate test transfers with VPC Flow Logs")
    log_group: Optional[str] = setting(None, "CloudWatch Logs group of the VPC's flow logs")
    log_format: Optional[str] = setting(None, "the flow logs' format string",
                                        default_doc="the default format plus `${traffic-path} "
                                                    "${pkt-dst-aws-service}`")
    margin_seconds: int = setting(120, "query window beyond the transfer, each side", minimum=0)
    limit: int = setting(50, "rows per query at most", minimum=1, maximum=10000)
    max_wait_seconds: int = setting(1800, "give up on records not arrived by then", minimum=60)


@dataclass(frozen=True)
class ObserveConfig:
    """The host's own S3 traffic (issue 11): each check and cycle judges the live TCP
    connections to S3 (agent/engine/observed.py), with no extra AWS call."""

    enabled: bool = setting(True, "judge the host's live TCP connections to S3 each check and "
                                  "cycle (sock_diag, else /proc/net/tcp)")
    expect: Expect = setting(Expect.PRIVATE, "expected path of the host's S3 flows; a flow of "
                                             "the host's software off it is CRITICAL")
    nat_price_per_gb: Optional[float] = setting(
        None, "NAT gateway data-processing price (USD per GB) of the cost estimate", minimum=0,
        default_doc="the region's public price (aws.amazon.com/vpc/pricing)")
    discovered_targets: int = setting(5, "names the host was seen resolving, added to the "
                                         "default targets at most", minimum=0, maximum=50)


@dataclass(frozen=True)
class InventoryConfig:
    """EC2 inventory cache settings."""

    # Four hours: with the route check below, a host makes about 6 EC2 calls an hour instead
    # of 28 (README, "Cost per run and the fleet's API budget", says what can go unseen).
    ttl_seconds: float = setting(14400.0, "EC2 facts cached this long in `state_dir`",
                                 minimum=0)
    route_check_seconds: float = setting(
        900.0, "while the facts are cached, one DescribeRouteTables call this often; a changed "
        "route table refreshes them all (0: no check)", minimum=0)
    ttl_jitter_fraction: float = setting(0.1, "each refresh's life shortened by a random part "
                                              "of up to this fraction", minimum=0, maximum=0.5)


def _stop_timeout_problem(value: float) -> Optional[str]:
    return "must be below 10 (systemd waits; the issue allows 10 s)" if value >= 10 else None


@dataclass(frozen=True)
class DaemonConfig:
    """``run`` settings: the cycle schedule and per-step timeouts (issue 5 section 1)."""

    interval_seconds: float = setting(300.0, "one check per interval", **_POSITIVE)
    jitter_seconds: float = setting(60.0, "stable per-host offset under this spreads a fleet's "
                                          "cycles", minimum=0)
    step_timeout_seconds: float = setting(30.0, "timeout of each step (identity, each DNS name, "
                                                "S3 ranges, flow logs)", **_POSITIVE)
    cycle_timeout_seconds: float = setting(120.0, "a cycle running longer is abandoned (UNKNOWN)",
                                           **_POSITIVE)
    stop_timeout_seconds: float = setting(8.0, "on SIGTERM the current step is given up after "
                                               "this", **_POSITIVE, check=_stop_timeout_problem)


@dataclass(frozen=True)
class FileOutput:
    """JSON Lines file sink: one report per line, rotated by size."""

    path: Optional[str] = setting(None, "JSON Lines file, one report per line")
    max_bytes: int = setting(10 * 1024 * 1024, "rotate beyond this size", minimum=4096)
    backups: int = setting(5, "rotated files kept", minimum=1)


@dataclass(frozen=True)
class CloudWatchLogsOutput:
    """CloudWatch Logs sink (PutLogEvents) with an on-disk spool."""

    enabled: bool = setting(False, "send reports with PutLogEvents (spooled on disk first)")
    log_group: str = setting("/s3-route-agent/reports", "log group")
    log_stream: Optional[str] = setting(None, "log stream",
                                        default_doc="the instance id, else the host name")
    create: bool = setting(True, "create the group and stream when missing")
    spool_dir: Optional[str] = setting(None, "spool directory",
                                       default_doc="`STATE_DIR/spool/cloudwatch-logs`")
    spool_max_bytes: int = setting(50 * 1024 * 1024, "spool bound; the oldest reports go first",
                                   minimum=4096)
    retry_max_seconds: float = setting(300.0, "longest backoff after a failed send", **_POSITIVE)
    endpoint_url: Optional[str] = setting(None, "CloudWatch Logs endpoint URL (an interface "
                                                "endpoint's, an emulator)", check=_url_problem,
                                          default_doc="`aws.endpoint_url`, else the region's")
    timeout_seconds: float = setting(5.0, "connect and read timeout of each send (one attempt: "
                                          "the spool retries)", **_POSITIVE)
    stop_flush_seconds: float = setting(2.0, "on stop, sending is given up after this; the rest "
                                             "stays spooled for the next start", minimum=0,
                                        maximum=9)


@dataclass(frozen=True)
class EmfOutput:
    """CloudWatch embedded metric format lines (to a file the CloudWatch agent ships, or stdout)."""

    enabled: bool = setting(False, "write CloudWatch metrics as EMF lines")
    path: Optional[str] = setting(None, "EMF file (shipped by the CloudWatch agent)",
                                  default_doc="stdout")
    namespace: str = setting("S3RouteAgent", "metric namespace")
    max_bytes: int = setting(10 * 1024 * 1024, "rotate beyond this size", minimum=4096)
    backups: int = setting(2, "rotated files kept", minimum=1)


@dataclass(frozen=True)
class PrometheusOutput:
    """node_exporter textfile collector sink."""

    path: Optional[str] = setting(None, "node_exporter textfile (`*.prom`), replaced atomically")


@dataclass(frozen=True)
class OutputsConfig:
    """Where reports go; every enabled sink receives every report."""

    stdout: bool = setting(False, "one JSON report per line on stdout",
                           default_doc="false (stdout alone when no sink is enabled)")
    file: FileOutput = section(FileOutput, "JSON Lines file sink")
    cloudwatch_logs: CloudWatchLogsOutput = section(CloudWatchLogsOutput, "CloudWatch Logs sink")
    emf: EmfOutput = section(EmfOutput, "EMF metrics sink")
    prometheus: PrometheusOutput = section(PrometheusOutput, "Prometheus textfile sink")


@dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration."""

    aws: AwsSettings = section(AwsSettings, "AWS API settings")
    imds: ImdsSettings = section(ImdsSettings, "instance metadata")
    identity: IdentityOverrides = section(IdentityOverrides, "overrides of what IMDS says")
    dns: DnsConfig = section(DnsConfig, "DNS")
    s3_ranges: S3RangesConfig = section(S3RangesConfig, "S3 address ranges, to name the region "
                                                        "of a public address")
    buckets: tuple[str, ...] = setting((), "buckets your software uses")
    targets: tuple[TargetSpec, ...] = setting((), "hostnames to check",
                                              default_doc="see below the table")
    default_expect: Expect = setting(Expect.PRIVATE, "expected path of targets that name none")
    transfer: TransferConfig = section(TransferConfig, "live test transfer")
    oracle: OracleConfig = section(OracleConfig, "path oracle")
    probe: ProbeConfig = section(ProbeConfig, "packet probes")
    proxies: ProxyConfig = section(ProxyConfig, "proxies")
    inventory: InventoryConfig = section(InventoryConfig, "EC2 inventory cache")
    daemon: DaemonConfig = section(DaemonConfig, "the `run` schedule")
    outputs: OutputsConfig = section(OutputsConfig, "sinks for `run`")
    flow_logs: FlowLogsConfig = section(FlowLogsConfig, "flow-log corroboration")
    observe: ObserveConfig = section(ObserveConfig, "the host's own S3 traffic")
    state_dir: str = setting(DEFAULT_STATE_DIR, "cache and state (relative: to the config's "
                                                "folder)")
    # Where the config was read from: set by parse_config, not a key.
    source: Optional[str] = field(default=None, metadata={"key": False})

    def imds_disabled_by_environment(self, environ: Optional[dict[str, str]] = None) -> bool:
        """True when AWS_EC2_METADATA_DISABLED=true and no IMDS endpoint is named (config or
        AWS_EC2_METADATA_SERVICE_ENDPOINT): the SDKs' switch for "no instance metadata here"
        then keeps the agent off 169.254.169.254 too, as it keeps botocore's credential chain.
        An endpoint named explicitly (an emulator) is still asked."""
        env = os.environ if environ is None else environ
        return (env.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true"
                and not self.imds.endpoint
                and not env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"))

    def imds_endpoint(self, environ: Optional[dict[str, str]] = None) -> str:
        """The IMDS base URL: config, else AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254."""
        env = os.environ if environ is None else environ
        return (self.imds.endpoint or env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                or DEFAULT_IMDS_ENDPOINT).rstrip("/")


def targets_for(config: AgentConfig, region: str) -> tuple[Target, ...]:
    """Concrete targets: configured ones with ``{region}``/``{bucket}`` filled in, else defaults.

    Defaults: the regional and the legacy global name, and per bucket its virtual-hosted regional
    and legacy global names (the legacy global name is the usual silent bypass).
    """
    from s3_route_agent.engine.model import Target
    specs: list[TargetSpec] = list(config.targets)
    origin = "config" if specs else "default"
    if not specs:
        specs = [TargetSpec("regional", "s3.{region}.amazonaws.com"),
                 TargetSpec("global", "s3.amazonaws.com")]
        for bucket in config.buckets:
            specs.append(TargetSpec(f"{bucket}-regional", "{bucket}.s3.{region}.amazonaws.com",
                                    bucket=bucket))
            specs.append(TargetSpec(f"{bucket}-global", "{bucket}.s3.amazonaws.com",
                                    bucket=bucket))
    out: list[Target] = []
    for spec in specs:
        buckets = [spec.bucket] if spec.bucket else (list(config.buckets) or [None])
        if "{bucket}" not in spec.host:
            buckets = [spec.bucket]
        for bucket in buckets:
            host = spec.host.replace("{region}", region).replace("{bucket}", bucket or "")
            name = spec.name if len(buckets) == 1 else f"{spec.name}-{bucket}"
            out.append(Target(name=name, host=host.lower(),
                              expect=spec.expect or config.default_expect, bucket=bucket,
                              origin=origin))
    return tuple(out)


# ---- what the declarations give ------------------------------------------------------------------

@dataclass(frozen=True)
class KeyInfo:
    """One declared key: its dotted path, type, default and rule."""

    path: str
    type_name: str
    default: Any
    rule: Rule


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    # Cached: evaluating the string annotations is the slow part of walking a config.
    return get_type_hints(cls)


def _keys(cls: type) -> Iterator[dataclasses.Field]:
    return (f for f in dataclasses.fields(cls) if f.metadata.get("key", True))


def _optional_inner(hint: Any) -> tuple[Any, bool]:
    """(the type, nullable) of a hint that may be Optional[...]."""
    if get_origin(hint) is Union:
        inner = [a for a in get_args(hint) if a is not type(None)]
        return inner[0], True
    return hint, False


def declared_keys(cls: type = AgentConfig, prefix: str = "") -> Iterator[KeyInfo]:
    """Every leaf key under ``cls``, depth first in declaration order (``targets[].name``...)."""
    hints = _hints(cls)
    for f in _keys(cls):
        hint, _ = _optional_inner(hints[f.name])
        path = f"{prefix}{f.name}"
        rule: Rule = f.metadata["rule"]
        if dataclasses.is_dataclass(hint):
            yield from declared_keys(hint, path + ".")
            continue
        item = get_args(hint)[0] if get_origin(hint) is tuple else None
        if item is not None and dataclasses.is_dataclass(item):
            yield from declared_keys(item, path + "[].")
            continue
        default = (f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING)
        yield KeyInfo(path, _type_name(hints[f.name]), default, rule)


def _type_name(hint: Any) -> str:
    hint, nullable = _optional_inner(hint)
    if get_origin(hint) is tuple:
        name = f"list of {_type_name(get_args(hint)[0])}s"
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        name = " / ".join(e.value for e in hint)
    else:
        name = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(hint, "?")
    return name + (" or null" if nullable else "")


def _default_text(key: KeyInfo) -> str:
    if key.rule.default_doc:
        return key.rule.default_doc
    value = key.default
    if value is dataclasses.MISSING:
        return "required"
    if value is None:
        return "—"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[]" if not value else ", ".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def config_reference() -> str:
    """The README's configuration table (one row per key), made from the declarations."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key in declared_keys():
        rows.append(f"| `{key.path}` | {_default_text(key)} | {key.rule.doc} |")
    return "\n".join(rows)


# ---- validation ----------------------------------------------------------------------------------

def _fail(node: Optional[yaml.Node], where: str, message: str) -> ConfigError:
    line = f" (line {node.start_mark.line + 1})" if node is not None else ""
    return ConfigError("invalid_config", f"{where}{line}: {message}")


_SCALAR_NAMES = {str: "string", int: "whole number", float: "number",
                 bool: "boolean (true/false)"}


def _scalar(node: yaml.Node, where: str, kind: type, nullable: bool, rule: Rule) -> Any:
    """One scalar value of type ``kind`` (float accepts whole numbers), checked by ``rule``."""
    name = _SCALAR_NAMES[kind]
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(node, where, f"must be a {name}, not a "
                    f"{'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
    try:
        # The node's tag is already resolved; build its value as safe_load would.
        value = SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:  # an unknown or mismatched tag (!foo, !!int x)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _fail(node, where, f"cannot read value {node.tag!r}: {problem}") from None
    if value is None:
        if nullable:
            return None
        raise _fail(node, where, f"must be a {name}, not empty")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and kind is not bool:
        raise _fail(node, where, f"must be a {name}, not {str(value).lower()}")
    if not isinstance(value, kind):
        raise _fail(node, where, f"must be a {name}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(node, where, f"must be a finite {name}, not {value!r}")
    if rule.minimum is not None and value < rule.minimum:
        raise _fail(node, where, f"must be at least {rule.minimum:g}, not {value!r}")
    if rule.maximum is not None and value > rule.maximum:
        raise _fail(node, where, f"must be at most {rule.maximum:g}")
    if rule.check is not None:
        problem = rule.check(value)
        if problem:
            raise _fail(node, where, problem)
    return value


def _value(node: yaml.Node, where: str, hint: Any, rule: Rule) -> Any:
    """The Python value of ``node`` for a key of type ``hint``."""
    hint, nullable = _optional_inner(hint)
    if dataclasses.is_dataclass(hint):
        return _mapping(node, where, hint)
    if get_origin(hint) is tuple:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(node, where, "must be a list")
        item = get_args(hint)[0]
        return tuple(_value(child, f"{where}[{i}]", item, rule)
                     for i, child in enumerate(node.value))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [e.value for e in hint]
        text = _scalar(node, where, str, nullable, rule)
        if text is None:
            return None
        if text not in choices:
            raise _fail(node, where, f"must be one of {', '.join(choices)}, not {text!r}")
        return hint(text)
    return _scalar(node, where, hint, nullable, rule)


def _mapping(node: yaml.Node, where: str, cls: type) -> Any:
    """An instance of the dataclass ``cls`` from a YAML mapping (absent keys take defaults)."""
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        items: list[tuple[yaml.Node, yaml.Node]] = []
    elif not isinstance(node, yaml.MappingNode):
        raise _fail(node, where or "config", "must be a mapping of keys to values")
    else:
        items = node.value
    fields = {f.name: f for f in _keys(cls)}
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key_node, value_node in items:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _fail(key_node, where or "config", "unknown key (a key must be a name)")
        key = key_node.value
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise _fail(key_node, path, f"unknown key (known here: {', '.join(sorted(fields))})")
        if key in values:
            raise _fail(key_node, path, "given twice")
        values[key] = _value(value_node, path, hints[key], fields[key].metadata["rule"])
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            raise _fail(node if items else None, f"{where}.{name}" if where else name,
                        "is required")
    return cls(**values)


# libyaml's loader when PyYAML was built with it (about ten times faster); its nodes carry the
# same start marks, so errors still name the line.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(text: str, source: str = "<config>") -> AgentConfig:
    """Parse and validate YAML text; raises ConfigError "SOURCE: key.path (line N): problem"."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("invalid_config", f"{source}: malformed YAML{where}: {problem}") from None
    try:
        config = _mapping(node, "", AgentConfig) if node is not None else AgentConfig()
    except ConfigError as exc:
        raise ConfigError(exc.kind, f"{source}: {exc.message}") from None
    names = [t.name for t in config.targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError("invalid_config",
                          f"{source}: targets: duplicate name(s) {', '.join(duplicates)}")
    return replace(config, source=source)


def load_config(path: Union[str, os.PathLike[str]]) -> AgentConfig:
    """Read and validate a config file; raises ConfigError (one line) on any problem.

    Relative paths in the file (s3_ranges.file, state_dir) are taken from the file's folder.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("invalid_config", f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("invalid_config", f"cannot read config {path}: not UTF-8 text "
                          f"(byte {exc.start})") from None
    config = parse_config(text, str(path))
    base = Path(path).resolve().parent
    ranges_file = config.s3_ranges.file
    if ranges_file and not os.path.isabs(ranges_file):
        config = replace(config, s3_ranges=replace(config.s3_ranges, file=str(base / ranges_file)))
    if not os.path.isabs(config.state_dir):
        config = replace(config, state_dir=str(base / config.state_dir))
    return config


@dataclass(frozen=True)
class ConfigLocation:
    """Where a run's config comes from: a file (``path``) or the built-in defaults (None)."""

    path: Optional[str]
    how: str      # "--config", "$S3_ROUTE_AGENT_CONFIG", the default path, or "built-in defaults"


def locate_config(explicit: Optional[str] = None,
                  environ: Optional[dict[str, str]] = None) -> ConfigLocation:
    """The config a run uses: ``--config`` (``explicit``), else ``$S3_ROUTE_AGENT_CONFIG``,
    else :data:`DEFAULT_CONFIG_PATH` when that file exists, else the built-in defaults.

    A file named by --config or the variable must exist (a typo is an error, not defaults)."""
    env = os.environ if environ is None else environ
    if explicit:
        return ConfigLocation(explicit, "--config")
    if env.get(CONFIG_ENV):
        return ConfigLocation(env[CONFIG_ENV], f"${CONFIG_ENV}")
    if os.path.lexists(DEFAULT_CONFIG_PATH):
        return ConfigLocation(DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_PATH)
    return ConfigLocation(None, BUILT_IN_DEFAULTS)


def load_effective_config(explicit: Optional[str] = None,
                          environ: Optional[dict[str, str]] = None) -> AgentConfig:
    """The validated config of :func:`locate_config`'s choice; ConfigError on any problem."""
    where = locate_config(explicit, environ)
    if where.path is None:
        return AgentConfig(source=BUILT_IN_DEFAULTS)
    if where.how == f"${CONFIG_ENV}" and not os.path.lexists(where.path):
        raise ConfigError("invalid_config", f"cannot read config {where.path} (from "
                          f"${CONFIG_ENV}): no such file")
    return load_config(where.path)
