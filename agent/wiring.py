"""Builds what a run uses from the config: every AWS client, the collectors, the sinks and the
flow-log step. Part of the CLI layer: only the CLI (and the daemon it starts) calls this;
collectors, live evidence, sinks and the engine never build their own clients."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from s3_route_agent.aws import make_client
from s3_route_agent.collectors.imds import ImdsClient, identity_from_imds
from s3_route_agent.config import AgentConfig
from s3_route_agent.errors import AgentError

if TYPE_CHECKING:
    # Imported where built: a command that builds no check (validate-config, init, --help) loads
    # none of the check's collectors, and a check without observation, flow logs or sinks loads
    # none of those.
    from s3_route_agent.collectors.bucket_facts import BucketFactsCache
    from s3_route_agent.collectors.connections import HostObserver, TrafficCollectors
    from s3_route_agent.collectors.flow_logs import CycleCorroboration
    from s3_route_agent.collectors.inventory_cache import InventoryCache
    from s3_route_agent.engine.evidence import TransferPlan
    from s3_route_agent.engine.model import BucketFacts, DnsAnswer, Identity, S3Range
    from s3_route_agent.runs.check import CheckDeps
    from s3_route_agent.sinks import FanOut

logger = logging.getLogger(__name__)


class AwsClients:
    """The AWS clients of one config: one per service and region for the life of the config (a
    boto3 client is thread-safe and costly to build: it loads the service model, and the daemon
    asks on every inventory refresh), and a fresh S3 client per transfer step."""

    def __init__(self, config: AgentConfig) -> None:
        """Clients with ``config.aws``'s endpoint, timeouts and attempts."""
        self._aws = config.aws
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def _shared_session(self) -> Any:
        """One botocore Session for every client of this config (call with the lock held).

        A botocore Session loads the endpoint data and caches every model it reads, so a second
        client from the same Session costs a fraction of the first (a Session per client loaded
        endpoints.json again: about 80 ms each). Sessions are not thread-safe: clients are only
        built here, under the lock; the clients themselves are thread-safe. (The transfer's
        clients are built as a boto3 user builds them: :meth:`s3_for_plan`.)
        """
        if self._session is None:
            import botocore.session  # not before the first client: a warm run builds none
            self._session = botocore.session.get_session()
        return self._session

    def get(self, service: str, region: str) -> Any:
        """The ``service`` client for ``region`` (built once)."""
        with self._lock:
            if (service, region) not in self._clients:
                aws = self._aws
                self._clients[(service, region)] = make_client(
                    service, region, aws.endpoint_url,
                    connect_timeout=aws.connect_timeout_seconds,
                    read_timeout=aws.read_timeout_seconds, max_attempts=aws.max_attempts,
                    session=self._shared_session())
            return self._clients[(service, region)]

    def s3_for_plan(self, plan: TransferPlan, timeout: float) -> Any:
        """A new S3 client for one step of the test transfer or the oracle through ``plan``'s
        hostname (a new connection per step, so each step shows every phase)."""
        from s3_route_agent.aws import make_s3_client_for_endpoint
        return make_s3_client_for_endpoint(plan.endpoint_url, plan.signing_region,
                                           plan.addressing_style, timeout)


def environment_region() -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION (the SDKs' variables), else None."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def host_region(config: AgentConfig) -> str | None:
    """The region from the config, for clients needed before IMDS is asked (sinks)."""
    return config.aws.region or environment_region()


def build_check_deps(config: AgentConfig, clients: AwsClients | None = None) -> CheckDeps:
    """Collectors for ``run_check`` as the config describes them."""
    from s3_route_agent.collectors.bucket_facts import BucketFactsCache, collect_bucket_facts
    from s3_route_agent.collectors.dns_lookup import DnsSettings, make_resolver, resolve_host
    from s3_route_agent.collectors.host_ports import read_ephemeral_port_range
    from s3_route_agent.collectors.imds import resolve_identity
    from s3_route_agent.collectors.inventory_cache import InventoryCache
    from s3_route_agent.collectors.ip_ranges import load_s3_ranges
    from s3_route_agent.runs.check import CheckDeps

    clients = clients or AwsClients(config)
    imds = build_imds_client(config)
    resolver = make_resolver(DnsSettings(nameservers=config.dns.nameservers, port=config.dns.port,
                                         timeout_seconds=config.dns.timeout_seconds,
                                         query_ipv6=config.dns.query_ipv6))

    def identity() -> Identity:
        return resolve_identity(imds, config.aws.region, config.identity.vpc_id,
                                config.identity.subnet_id, config.identity.instance_id,
                                environ_region=environment_region())

    def resolve(host: str) -> DnsAnswer:
        return resolve_host(resolver, host, clock=time.monotonic,
                            query_ipv6=config.dns.query_ipv6)

    def ec2_client(region: str) -> Any:
        return clients.get("ec2", region)

    def s3_ranges() -> tuple[S3Range, ...]:
        return load_s3_ranges(config.s3_ranges.file, config.s3_ranges.download,
                              config.s3_ranges.url, config.state_dir,
                              config.s3_ranges.max_age_hours)

    def cache_for(ident: Identity) -> InventoryCache:
        return InventoryCache(Path(config.state_dir), ident.region, ident.vpc_id,
                              ident.subnet_id, ttl_seconds=config.inventory.ttl_seconds,
                              ttl_jitter_fraction=config.inventory.ttl_jitter_fraction)

    def bucket_facts(bucket: str, region: str) -> BucketFacts:
        # GetBucketLocation answers from any region; botocore follows S3's region redirect for
        # GetBucketPolicy of a bucket elsewhere (botocore S3RegionRedirectorv2).
        return collect_bucket_facts(clients.get("s3", region), bucket)

    def bucket_cache() -> BucketFactsCache:
        return BucketFactsCache(Path(config.state_dir), ttl_seconds=config.inventory.ttl_seconds)

    return CheckDeps(identity=identity, resolve=resolve, ec2_client=ec2_client,
                     s3_ranges=s3_ranges, s3_client_for=clients.s3_for_plan,
                     cache_for=cache_for, bucket_facts=bucket_facts, bucket_cache=bucket_cache,
                     # The host's traffic is looked at only with observe.enabled (run_check).
                     traffic=build_traffic(config) if config.observe.enabled else None,
                     ephemeral_ports=read_ephemeral_port_range)


def build_traffic(config: AgentConfig, observer: HostObserver | None = None) -> TrafficCollectors:
    """What observing the host's S3 traffic uses: the observer (``observer``, else one in this
    process's network namespace), the state file in ``state_dir`` and, with probes enabled, the
    DNS sniffer (on port 53 and the configured resolver port)."""
    from s3_route_agent.collectors.connections import HostObserver, ObservedStateFile
    from s3_route_agent.collectors.connections import TrafficCollectors
    sniffer = None
    if config.probe.enabled:
        from s3_route_agent.collectors.dns_sniffer import DnsSniffer
        sniffer = DnsSniffer(ports=(53, config.dns.port))
    return TrafficCollectors(observer=observer or HostObserver(),
                             state_file=ObservedStateFile(config.state_dir), sniffer=sniffer)


def build_report_sinks(config: AgentConfig) -> FanOut:
    """The sinks ``config.outputs`` enables; the CloudWatch Logs client comes from here.

    The sink's client is its own: ``outputs.cloudwatch_logs.endpoint_url`` and
    ``timeout_seconds``, one attempt per send (the spool retries with backoff), so one send to
    an endpoint that accepts and never answers ends within that timeout.
    """
    from s3_route_agent.sinks import build_sinks
    region = host_region(config) or "us-east-1"
    cw = config.outputs.cloudwatch_logs

    def logs_client() -> Any:
        return make_client("logs", region, cw.endpoint_url or config.aws.endpoint_url,
                           connect_timeout=cw.timeout_seconds, read_timeout=cw.timeout_seconds,
                           max_attempts=1)
    return build_sinks(config, logs_client=logs_client)


def build_flow_logs(config: AgentConfig,
                    clients: AwsClients | None = None) -> CycleCorroboration | None:
    """The per-run flow-log step (``flow_logs.enabled``), or None."""
    if not config.flow_logs.enabled:
        return None
    from s3_route_agent.collectors.flow_logs import CycleCorroboration
    clients = clients or AwsClients(config)
    return CycleCorroboration.from_config(config, logs_client=lambda region: clients.get(
        "logs", region))


def build_imds_client(config: AgentConfig, attempts: int | None = None) -> ImdsClient | None:
    """The IMDSv2 client of ``config``: None when ``imds.enabled`` is false, or when
    AWS_EC2_METADATA_DISABLED=true names no endpoint (see ``imds_disabled_by_environment``)."""
    if not config.imds.enabled or config.imds_disabled_by_environment():
        return None
    return ImdsClient(config.imds_endpoint(), timeout_seconds=config.imds.timeout_seconds,
                      attempts=attempts or config.imds.attempts,
                      token_ttl_seconds=config.imds.token_ttl_seconds)


def region_for(config: AgentConfig) -> tuple[str | None, str | None]:
    """This host's region and where it came from, in the order a check uses: ``aws.region``
    ("config"), else IMDS ("imds"), else AWS_REGION / AWS_DEFAULT_REGION ("environment")."""
    if config.aws.region:
        return config.aws.region, "config"
    imds = build_imds_client(config, attempts=1)
    if imds is not None:
        try:
            found = imds.get(imds.token(), "placement/region")
            if found:
                return found, "imds"
        except AgentError as exc:
            logger.info("region: %s", exc.message)
    region = environment_region()
    return (region, "environment") if region else (None, None)


class Wiring:
    """What the CLI and the daemon build per config, in one object so that an entry point can be
    given another (tests send transfers to a local server this way, without patching modules)."""

    def region_for(self, config: AgentConfig) -> tuple[str | None, str | None]:
        """This host's region and its source (see :func:`region_for`)."""
        return region_for(config)

    def observed_state(self, config: AgentConfig) -> TrafficCollectors | None:
        """The observed names kept in ``state_dir`` (no look at the host's sockets), or None
        when observation is off."""
        if not config.observe.enabled:
            return None
        from s3_route_agent.collectors.connections import ObservedStateFile, TrafficCollectors
        return TrafficCollectors(observer=None,  # type: ignore[arg-type] - state only
                                 state_file=ObservedStateFile(config.state_dir))

    def imds_identity(self) -> Callable[[], Identity]:
        """What ``init`` asks instance metadata: the default IMDS endpoint
        (AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254), one attempt."""
        client = build_imds_client(AgentConfig(), attempts=1)
        assert client is not None
        return lambda: identity_from_imds(client)

    def check_deps(self, config: AgentConfig) -> CheckDeps:
        """The collectors of ``run_check``."""
        return build_check_deps(config)

    def report_sinks(self, config: AgentConfig) -> FanOut:
        """The report sinks."""
        return build_report_sinks(config)

    def flow_logs(self, config: AgentConfig) -> CycleCorroboration | None:
        """The flow-log step, or None."""
        return build_flow_logs(config)
