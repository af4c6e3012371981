"""Builds the collectors a run uses from the config. Part of the CLI layer: only the CLI (and the
daemon it starts) calls this; collectors and the engine never build their own clients."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from s3_route_agent.aws import make_client
from s3_route_agent.collectors.bucket_facts import BucketFacts, BucketFactsCache, collect_bucket_facts
from s3_route_agent.collectors.inventory_cache import InventoryCache
from s3_route_agent.runs.check import CheckDeps
from s3_route_agent.collectors.dns_lookup import DnsSettings, make_resolver, resolve_host
from s3_route_agent.collectors.imds import ImdsClient, resolve_identity
from s3_route_agent.collectors.ip_ranges import load_s3_ranges
from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.model import DnsAnswer, Identity, S3Range

logger = logging.getLogger(__name__)


def build_check_deps(config: AgentConfig) -> CheckDeps:
    """Collectors for ``run_check`` as the config describes them."""
    imds = (ImdsClient(config.imds_endpoint(), timeout_seconds=config.imds.timeout_seconds,
                       attempts=config.imds.attempts,
                       token_ttl_seconds=config.imds.token_ttl_seconds)
            if config.imds.enabled else None)
    resolver = make_resolver(DnsSettings(nameservers=config.dns.nameservers, port=config.dns.port,
                                         timeout_seconds=config.dns.timeout_seconds,
                                         query_ipv6=config.dns.query_ipv6))

    def identity() -> Identity:
        return resolve_identity(imds, config.aws.region, config.identity.vpc_id,
                                config.identity.subnet_id, config.identity.instance_id)

    def resolve(host: str) -> DnsAnswer:
        return resolve_host(resolver, host, clock=time.monotonic,
                            query_ipv6=config.dns.query_ipv6)

    # One client per region and service for the life of this config: a boto3 client is
    # thread-safe and costly to build (it loads the service model), and the daemon asks for one
    # on every inventory refresh and bucket-facts lookup.
    clients: dict[tuple[str, str], Any] = {}
    clients_lock = threading.Lock()

    def client(service: str, region: str) -> Any:
        with clients_lock:
            if (service, region) not in clients:
                clients[(service, region)] = make_client(
                    service, region, config.aws.endpoint_url,
                    connect_timeout=config.aws.connect_timeout_seconds,
                    read_timeout=config.aws.read_timeout_seconds,
                    max_attempts=config.aws.max_attempts)
            return clients[(service, region)]

    def ec2_client(region: str) -> Any:
        return client("ec2", region)

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
        return collect_bucket_facts(client("s3", region), bucket)

    def bucket_cache() -> BucketFactsCache:
        return BucketFactsCache(Path(config.state_dir), ttl_seconds=config.inventory.ttl_seconds)

    return CheckDeps(identity=identity, resolve=resolve, ec2_client=ec2_client,
                     s3_ranges=s3_ranges, cache_for=cache_for, bucket_facts=bucket_facts,
                     bucket_cache=bucket_cache)
