"""The agent's YAML configuration: parsed, validated before anything runs, frozen.

Errors name the key path and the line, e.g. ``targets[1].expect (line 14): must be one of
gateway, interface, private, public, any``. An unknown key is an error, so a typo never silently
turns a check off.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from s3_route_agent.errors import ConfigError
from s3_route_agent.engine.model import Expect, Target

logger = logging.getLogger(__name__)

DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
DEFAULT_STATE_DIR = "/var/lib/s3-route-agent"
_REGION_PATTERN = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class AwsSettings:
    """AWS API settings."""

    region: str | None = None
    endpoint_url: str | None = None
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    max_attempts: int = 3


@dataclass(frozen=True)
class ImdsSettings:
    """Instance metadata (IMDSv2) settings."""

    enabled: bool = True
    endpoint: str | None = None       # None: AWS_EC2_METADATA_SERVICE_ENDPOINT, else the default
    timeout_seconds: float = 1.0
    attempts: int = 2
    token_ttl_seconds: int = 21600


@dataclass(frozen=True)
class IdentityOverrides:
    """Config values that override what IMDS says (tests, hosts that are not EC2)."""

    instance_id: str | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None


@dataclass(frozen=True)
class DnsConfig:
    """DNS resolver settings."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout_seconds: float = 2.0
    query_ipv6: bool = True


@dataclass(frozen=True)
class S3RangesConfig:
    """Where S3's address ranges (ip-ranges.json format) come from."""

    file: str | None = None
    download: bool = False
    url: str = "https://ip-ranges.amazonaws.com/ip-ranges.json"
    max_age_hours: float = 24.0


@dataclass(frozen=True)
class TransferConfig:
    """Test-transfer settings (the transfer itself comes with live evidence)."""

    enabled: bool = False
    bucket: str | None = None
    prefix: str = "s3-route-agent/canary/"
    size_bytes: int = 1024 * 1024
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class OracleConfig:
    """The path oracle (issue 4 section 4): a bucket whose policy (``oracle-policy``) makes S3
    itself say which path a request took; read by the transfer step when ``bucket`` is set."""

    bucket: str | None = None
    prefix: str = "oracle/"


@dataclass(frozen=True)
class ProbeConfig:
    """Packet probes (scapy, extra ``probe``): SYN traceroute and a sniffer during the transfer."""

    enabled: bool = False
    port: int = 443
    max_hops: int = 8
    timeout_seconds: float = 1.0


@dataclass(frozen=True)
class ProxyConfig:
    """Proxies as botocore's ``Config(proxies=...)`` gives them; when set, they replace the
    environment's HTTP(S)_PROXY and NO_PROXY is not consulted (botocore.endpoint)."""

    http: str | None = None
    https: str | None = None


@dataclass(frozen=True)
class FlowLogsConfig:
    """Flow-log corroboration (issue 4 section 6, opt-in): where the flow logs are, query bounds."""

    enabled: bool = False
    log_group: str | None = None
    log_format: str | None = None     # None: s3_route_agent.collectors.flow_logs.DEFAULT_LOG_FORMAT
    margin_seconds: int = 120
    limit: int = 50
    max_wait_seconds: int = 1800


@dataclass(frozen=True)
class InventoryConfig:
    """EC2 inventory cache settings."""

    ttl_seconds: float = 900.0
    ttl_jitter_fraction: float = 0.1


@dataclass(frozen=True)
class DaemonConfig:
    """``run`` settings: the cycle schedule and per-step timeouts (issue 5 section 1)."""

    interval_seconds: float = 300.0
    jitter_seconds: float = 60.0       # stable per-host phase in [0, jitter) spreads the fleet
    step_timeout_seconds: float = 30.0  # identity, each DNS name, S3 ranges
    cycle_timeout_seconds: float = 120.0
    stop_timeout_seconds: float = 8.0   # SIGTERM: give up the current step after this (< 10 s)


@dataclass(frozen=True)
class FileOutput:
    """JSON Lines file sink: one report per line, rotated by size."""

    path: str | None = None
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5


@dataclass(frozen=True)
class CloudWatchLogsOutput:
    """CloudWatch Logs sink (PutLogEvents) with an on-disk spool."""

    enabled: bool = False
    log_group: str = "/s3-route-agent/reports"
    log_stream: str | None = None      # default: the instance id, else the host name
    create: bool = True
    spool_dir: str | None = None       # default: STATE_DIR/spool/cloudwatch-logs
    spool_max_bytes: int = 50 * 1024 * 1024
    retry_max_seconds: float = 300.0


@dataclass(frozen=True)
class EmfOutput:
    """CloudWatch embedded metric format lines (to a file the CloudWatch agent ships, or stdout)."""

    enabled: bool = False
    path: str | None = None            # None: stdout
    namespace: str = "S3RouteAgent"
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 2


@dataclass(frozen=True)
class PrometheusOutput:
    """node_exporter textfile collector sink."""

    path: str | None = None            # e.g. /var/lib/node_exporter/textfile_collector/s3_route_agent.prom


@dataclass(frozen=True)
class OutputsConfig:
    """Where reports go; every enabled sink receives every report."""

    stdout: bool = False
    file: FileOutput = field(default_factory=FileOutput)
    cloudwatch_logs: CloudWatchLogsOutput = field(default_factory=CloudWatchLogsOutput)
    emf: EmfOutput = field(default_factory=EmfOutput)
    prometheus: PrometheusOutput = field(default_factory=PrometheusOutput)


@dataclass(frozen=True)
class TargetSpec:
    """A configured target before templates are filled in."""

    name: str
    host: str
    expect: Expect
    bucket: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration."""

    aws: AwsSettings = field(default_factory=AwsSettings)
    imds: ImdsSettings = field(default_factory=ImdsSettings)
    identity: IdentityOverrides = field(default_factory=IdentityOverrides)
    dns: DnsConfig = field(default_factory=DnsConfig)
    s3_ranges: S3RangesConfig = field(default_factory=S3RangesConfig)
    buckets: tuple[str, ...] = ()
    targets: tuple[TargetSpec, ...] = ()
    default_expect: Expect = Expect.PRIVATE
    transfer: TransferConfig = field(default_factory=TransferConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    proxies: ProxyConfig = field(default_factory=ProxyConfig)
    inventory: InventoryConfig = field(default_factory=InventoryConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    flow_logs: FlowLogsConfig = field(default_factory=FlowLogsConfig)
    state_dir: str = DEFAULT_STATE_DIR
    source: str | None = None

    def imds_endpoint(self, environ: dict[str, str] | None = None) -> str:
        """The IMDS base URL: config, else AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254."""
        env = os.environ if environ is None else environ
        return (self.imds.endpoint or env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                or DEFAULT_IMDS_ENDPOINT).rstrip("/")


def targets_for(config: AgentConfig, region: str) -> tuple[Target, ...]:
    """Concrete targets: configured ones with ``{region}``/``{bucket}`` filled in, else defaults.

    Defaults: the regional and the legacy global name, and per bucket its virtual-hosted regional
    and legacy global names (the legacy global name is the usual silent bypass).
    """
    specs: list[TargetSpec] = list(config.targets)
    if not specs:
        specs = [TargetSpec("regional", "s3.{region}.amazonaws.com", config.default_expect),
                 TargetSpec("global", "s3.amazonaws.com", config.default_expect)]
        for bucket in config.buckets:
            specs.append(TargetSpec(f"{bucket}-regional", "{bucket}.s3.{region}.amazonaws.com",
                                    config.default_expect, bucket))
            specs.append(TargetSpec(f"{bucket}-global", "{bucket}.s3.amazonaws.com",
                                    config.default_expect, bucket))
    out: list[Target] = []
    for spec in specs:
        buckets = [spec.bucket] if spec.bucket else (list(config.buckets) or [None])
        if "{bucket}" not in spec.host:
            buckets = [spec.bucket]
        for bucket in buckets:
            host = spec.host.replace("{region}", region).replace("{bucket}", bucket or "")
            name = spec.name if len(buckets) == 1 else f"{spec.name}-{bucket}"
            out.append(Target(name=name, host=host.lower(), expect=spec.expect, bucket=bucket))
    return tuple(out)


# --- validation -------------------------------------------------------------------------------

class _Spec(abc.ABC):
    """A node type in the config schema."""

    @abc.abstractmethod
    def check(self, node: yaml.Node, where: str) -> Any:
        """Validate ``node`` found at key path ``where`` and return its Python value."""


def _fail(node: yaml.Node | None, where: str, message: str) -> ConfigError:
    line = f" (line {node.start_mark.line + 1})" if node is not None else ""
    return ConfigError("invalid_config", f"{where}{line}: {message}")


class _Scalar(_Spec):
    def __init__(self, kind: type | tuple[type, ...], *, nullable: bool = False,
                 choices: tuple[str, ...] = (), minimum: float | None = None,
                 check: Callable[[Any], str | None] | None = None) -> None:
        self.kind, self.nullable, self.choices = kind, nullable, choices
        self.minimum, self.extra = minimum, check

    def check(self, node: yaml.Node, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _fail(node, where, f"must be a {self._name()}, not a "
                        f"{'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
        try:
            value = yaml.safe_load(yaml.serialize(node))
        except (yaml.YAMLError, ValueError) as exc:  # an unknown or mismatched tag (!foo, !!int x)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise _fail(node, where, f"cannot read value {node.tag!r}: {problem}") from None
        if value is None:
            if self.nullable:
                return None
            raise _fail(node, where, f"must be a {self._name()}, not empty")
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise _fail(node, where, f"must be a {self._name()}, not {str(value).lower()}")
        if not isinstance(value, kinds):
            raise _fail(node, where, f"must be a {self._name()}, not {value!r}")
        if self.choices and value not in self.choices:
            raise _fail(node, where, f"must be one of {', '.join(self.choices)}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(node, where, f"must be a finite {self._name()}, not {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise _fail(node, where, f"must be at least {self.minimum:g}, not {value!r}")
        if self.extra is not None:
            problem = self.extra(value)
            if problem:
                raise _fail(node, where, problem)
        return value

    def _name(self) -> str:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        names = {str: "string", int: "whole number", float: "number", bool: "boolean (true/false)"}
        return " or ".join(names[k] for k in kinds if k in names)


class _List(_Spec):
    def __init__(self, item: _Spec) -> None:
        self.item = item

    def check(self, node: yaml.Node, where: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(node, where, "must be a list")
        return [self.item.check(child, f"{where}[{i}]") for i, child in enumerate(node.value)]


class _Map(_Spec):
    def __init__(self, fields: dict[str, _Spec], required: tuple[str, ...] = ()) -> None:
        self.fields, self.required = fields, required

    def check(self, node: yaml.Node, where: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            node_items: list[tuple[yaml.Node, yaml.Node]] = []
        elif not isinstance(node, yaml.MappingNode):
            raise _fail(node, where or "config", "must be a mapping of keys to values")
        else:
            node_items = node.value
        out: dict[str, Any] = {}
        for key_node, value_node in node_items:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(key_node, where or "config", "unknown key (a key must be a name)")
            key = key_node.value
            path = f"{where}.{key}" if where else str(key)
            if key not in self.fields:
                known = ", ".join(sorted(self.fields))
                raise _fail(key_node, path, f"unknown key (known here: {known})")
            if key in out:
                raise _fail(key_node, path, "given twice")
            out[key] = self.fields[key].check(value_node, path)
        for key in self.required:
            if key not in out:
                raise _fail(node if node_items else None, f"{where}.{key}" if where else key,
                            "is required")
        return out


def _region_problem(value: str) -> str | None:
    if not _REGION_PATTERN.match(value):
        return f"{value!r} is not an AWS region name (like eu-west-1)"
    if value not in known_regions():
        return f"unknown AWS region {value!r}"
    return None


def known_regions() -> frozenset[str]:
    """Regions botocore knows, across partitions (from its bundled endpoint data)."""
    import botocore.session  # local import: only config validation needs it
    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def _url_problem(value: str) -> str | None:
    return None if re.match(r"^https?://[^\s/]+", value) else f"{value!r} is not an http(s) URL"


def _host_problem(value: str) -> str | None:
    bad = value.replace("{region}", "r").replace("{bucket}", "b")
    if not re.match(r"^[A-Za-z0-9.-]+$", bad) or ".." in bad:
        return f"{value!r} is not a hostname (templates allowed: {{region}}, {{bucket}})"
    return None


_EXPECTS = tuple(e.value for e in Expect)
_POSITIVE = dict(minimum=0.001)

_SCHEMA = _Map({
    "aws": _Map({
        "region": _Scalar(str, nullable=True, check=_region_problem),
        "endpoint_url": _Scalar(str, nullable=True, check=_url_problem),
        "connect_timeout_seconds": _Scalar(float, **_POSITIVE),
        "read_timeout_seconds": _Scalar(float, **_POSITIVE),
        "max_attempts": _Scalar(int, minimum=1),
    }),
    "imds": _Map({
        "enabled": _Scalar(bool),
        "endpoint": _Scalar(str, nullable=True, check=_url_problem),
        "timeout_seconds": _Scalar(float, **_POSITIVE),
        "attempts": _Scalar(int, minimum=1),
        "token_ttl_seconds": _Scalar(int, minimum=1,
                                     check=lambda v: "must be at most 21600" if v > 21600 else None),
    }),
    "identity": _Map({
        "instance_id": _Scalar(str, nullable=True),
        "vpc_id": _Scalar(str, nullable=True,
                          check=lambda v: None if v.startswith("vpc-") else "must start with vpc-"),
        "subnet_id": _Scalar(str, nullable=True,
                             check=lambda v: None if v.startswith("subnet-") else "must start with subnet-"),
    }),
    "dns": _Map({
        "nameservers": _List(_Scalar(str)),
        "port": _Scalar(int, minimum=1, check=lambda v: "must be at most 65535" if v > 65535 else None),
        "timeout_seconds": _Scalar(float, **_POSITIVE),
        "query_ipv6": _Scalar(bool),
    }),
    "s3_ranges": _Map({
        "file": _Scalar(str, nullable=True),
        "download": _Scalar(bool),
        "url": _Scalar(str, check=_url_problem),
        "max_age_hours": _Scalar(float, **_POSITIVE),
    }),
    "buckets": _List(_Scalar(str)),
    "targets": _List(_Map({
        "name": _Scalar(str),
        "host": _Scalar(str, check=_host_problem),
        "expect": _Scalar(str, choices=_EXPECTS),
        "bucket": _Scalar(str, nullable=True),
    }, required=("name", "host"))),
    "default_expect": _Scalar(str, choices=_EXPECTS),
    "transfer": _Map({
        "enabled": _Scalar(bool),
        "bucket": _Scalar(str, nullable=True),
        "prefix": _Scalar(str),
        "size_bytes": _Scalar(int, minimum=1),
        "timeout_seconds": _Scalar(float, **_POSITIVE),
    }),
    "oracle": _Map({
        "bucket": _Scalar(str, nullable=True),
        "prefix": _Scalar(str),
    }),
    "probe": _Map({
        "enabled": _Scalar(bool),
        "port": _Scalar(int, minimum=1, check=lambda v: "must be at most 65535" if v > 65535 else None),
        "max_hops": _Scalar(int, minimum=1, check=lambda v: "must be at most 30" if v > 30 else None),
        "timeout_seconds": _Scalar(float, **_POSITIVE),
    }),
    "proxies": _Map({
        "http": _Scalar(str, nullable=True),
        "https": _Scalar(str, nullable=True),
    }),
    "inventory": _Map({"ttl_seconds": _Scalar(float, minimum=0),
                       "ttl_jitter_fraction": _Scalar(
                           float, minimum=0,
                           check=lambda v: "must be at most 0.5" if v > 0.5 else None)}),
    "flow_logs": _Map({
        "enabled": _Scalar(bool), "log_group": _Scalar(str, nullable=True),
        "log_format": _Scalar(str, nullable=True), "margin_seconds": _Scalar(int, minimum=0),
        "limit": _Scalar(int, minimum=1, check=lambda v: "must be at most 10000" if v > 10000
                         else None),
        "max_wait_seconds": _Scalar(int, minimum=60)}),
    "daemon": _Map({
        "interval_seconds": _Scalar(float, **_POSITIVE),
        "jitter_seconds": _Scalar(float, minimum=0),
        "step_timeout_seconds": _Scalar(float, **_POSITIVE),
        "cycle_timeout_seconds": _Scalar(float, **_POSITIVE),
        "stop_timeout_seconds": _Scalar(float, **_POSITIVE, check=lambda v: (
            "must be below 10 (systemd waits; the issue allows 10 s)" if v >= 10 else None)),
    }),
    "outputs": _Map({
        "stdout": _Scalar(bool),
        "file": _Map({"path": _Scalar(str, nullable=True), "max_bytes": _Scalar(int, minimum=4096),
                      "backups": _Scalar(int, minimum=1)}),
        "cloudwatch_logs": _Map({
            "enabled": _Scalar(bool), "log_group": _Scalar(str),
            "log_stream": _Scalar(str, nullable=True), "create": _Scalar(bool),
            "spool_dir": _Scalar(str, nullable=True),
            "spool_max_bytes": _Scalar(int, minimum=4096),
            "retry_max_seconds": _Scalar(float, **_POSITIVE)}),
        "emf": _Map({"enabled": _Scalar(bool), "path": _Scalar(str, nullable=True),
                     "namespace": _Scalar(str), "max_bytes": _Scalar(int, minimum=4096),
                     "backups": _Scalar(int, minimum=1)}),
        "prometheus": _Map({"path": _Scalar(str, nullable=True)}),
    }),
    "state_dir": _Scalar(str),
})


def parse_config(text: str, source: str = "<config>") -> AgentConfig:
    """Parse and validate YAML text; raises ConfigError "SOURCE: key.path (line N): problem"."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("invalid_config", f"{source}: malformed YAML{where}: {problem}") from None
    try:
        raw: dict[str, Any] = _SCHEMA.check(node, "") if node is not None else {}
        return _build(raw, source)
    except ConfigError as exc:
        raise ConfigError(exc.kind, f"{source}: {exc.message}") from None


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
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


def _build(raw: dict[str, Any], source: str) -> AgentConfig:
    def section(name: str, cls: type, **convert: Callable[[Any], Any]) -> Any:
        values = dict(raw.get(name) or {})
        for key, fn in convert.items():
            if key in values and values[key] is not None:
                values[key] = fn(values[key])
        return cls(**values)

    targets = tuple(TargetSpec(name=t["name"], host=t["host"],
                               expect=Expect(t.get("expect") or raw.get("default_expect")
                                             or Expect.PRIVATE.value),
                               bucket=t.get("bucket"))
                    for t in raw.get("targets") or [])
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError("invalid_config", f"targets: duplicate name(s) {', '.join(duplicates)}")
    return AgentConfig(
        aws=section("aws", AwsSettings),
        imds=section("imds", ImdsSettings),
        identity=section("identity", IdentityOverrides),
        dns=section("dns", DnsConfig, nameservers=tuple),
        s3_ranges=section("s3_ranges", S3RangesConfig),
        buckets=tuple(raw.get("buckets") or ()),
        targets=targets,
        default_expect=Expect(raw.get("default_expect", Expect.PRIVATE.value)),
        transfer=section("transfer", TransferConfig),
        oracle=section("oracle", OracleConfig),
        probe=section("probe", ProbeConfig),
        proxies=section("proxies", ProxyConfig),
        inventory=section("inventory", InventoryConfig),
        daemon=section("daemon", DaemonConfig),
        flow_logs=section("flow_logs", FlowLogsConfig),
        outputs=_outputs(raw.get("outputs") or {}),
        state_dir=raw.get("state_dir", DEFAULT_STATE_DIR),
        source=source,
    )


def _outputs(raw: dict[str, Any]) -> OutputsConfig:
    """The ``outputs`` section (nested sink sections) as an OutputsConfig."""
    return OutputsConfig(stdout=bool(raw.get("stdout", False)),
                         file=FileOutput(**(raw.get("file") or {})),
                         cloudwatch_logs=CloudWatchLogsOutput(**(raw.get("cloudwatch_logs") or {})),
                         emf=EmfOutput(**(raw.get("emf") or {})),
                         prometheus=PrometheusOutput(**(raw.get("prometheus") or {})))
