"""run_check's handling of cached facts when a refresh fails, with an injected clock.

The collectors are plain callables (as the CLI wires them); here EC2 answers "throttled", the
way a fleet exhausting the shared Describe budget sees it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from s3_route_agent.collectors.inventory_cache import InventoryCache
from s3_route_agent.runs.check import CheckDeps, run_check
from s3_route_agent.config import parse_config
from s3_route_agent.errors import InventoryError
from s3_route_agent.engine.model import (DnsAnswer, Identity, Inventory, NetworkAcl,
                                         NetworkAclEntry, PrefixList, ResolvedAddress, Route,
                                         RouteTable, RouteTargetKind, S3Range,
                                         SecurityGroupRule, Status, TrafficFilters, VpcEndpoint)

IDENTITY = Identity(region="eu-west-1", vpc_id="vpc-1", subnet_id="subnet-1", source="config")
INVENTORY = Inventory(
    "eu-west-1", "vpc-1", "subnet-1",
    RouteTable("rtb-1", "vpc-1", "explicit",
               (Route("0.0.0.0/0", "nat-1", RouteTargetKind.NAT_GATEWAY),
                Route("pl-s3", "vpce-gw", RouteTargetKind.GATEWAY_ENDPOINT))),
    (PrefixList("pl-s3", "com.amazonaws.eu-west-1.s3", 2, ("198.51.100.0/25",)),),
    (VpcEndpoint("vpce-gw", "Gateway", "com.amazonaws.eu-west-1.s3", "available", "vpc-1",
                 route_table_ids=("rtb-1",)),), (), fetched_at=1000.0, s3_prefix_list_id="pl-s3",
    # What a collected inventory carries: an egress-all group and an allow-all network ACL.
    traffic_filters=TrafficFilters(
        host_security_group_ids=("sg-1",), host_addresses=("10.0.1.10",),
        security_group_rules=(SecurityGroupRule("sg-1", "sgr-1", True, "-1", cidr="0.0.0.0/0"),),
        described_groups=("sg-1",),
        network_acls=(NetworkAcl("acl-1", "vpc-1", ("subnet-1",), (
            NetworkAclEntry(100, True, "allow", "-1", "0.0.0.0/0"),
            NetworkAclEntry(100, False, "allow", "-1", "0.0.0.0/0"))),)))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def throttled(region: str):
    raise InventoryError("throttled", "EC2 DescribeRouteTables throttled: RequestLimitExceeded")


def no_transfer(*_: object) -> None:
    raise AssertionError("these configs run no test transfer")


def deps(tmp_path: Path, clock: Clock) -> CheckDeps:
    def cache_for(ident: Identity) -> InventoryCache:
        return InventoryCache(tmp_path, ident.region, ident.vpc_id, ident.subnet_id,
                              ttl_seconds=100, clock=clock)

    return CheckDeps(
        identity=lambda: IDENTITY,
        resolve=lambda host: DnsAnswer(host, (ResolvedAddress("198.51.100.10", "ipv4", 60),)),
        ec2_client=throttled, s3_ranges=lambda: (S3Range("198.51.100.0/25", "eu-west-1"),),
        s3_client_for=no_transfer, cache_for=cache_for, clock=clock)


CONFIG = parse_config("inventory: {ttl_seconds: 100}\n"
                      "targets: [{name: r, host: 's3.{region}.amazonaws.com', expect: gateway}]\n")


@pytest.mark.parametrize("now,status", [(1050.0, Status.OK),        # fresh: no call at all
                                        (1150.0, Status.OK),        # stale, under 2 x TTL
                                        (1250.0, Status.WARNING)])  # stale, over 2 x TTL
def test_stale_facts_warn_only_after_twice_the_ttl(tmp_path, now, status):
    clock = Clock(now)
    InventoryCache(tmp_path, "eu-west-1", "vpc-1", "subnet-1", ttl_seconds=100,
                   clock=clock).store(INVENTORY)
    result = run_check(CONFIG, deps(tmp_path, clock))
    target = result.report.document["targets"][0]
    assert target["path"] == "gateway"
    assert result.status is status
    stale_noted = any("stale" in e for e in target["evidence"])
    assert stale_noted is (now > 1100.0)
    assert ("throttled" in (result.report.document["facts"]["stale"] or "")) is (now > 1100.0)


def test_no_cache_and_throttled_is_unknown(tmp_path):
    result = run_check(CONFIG, deps(tmp_path, Clock(5000.0)))
    assert result.status is Status.UNKNOWN
    assert result.report.document["errors"] == ["EC2 DescribeRouteTables throttled: RequestLimitExceeded"]


def test_ttl_jitter_shortens_life_within_the_fraction(tmp_path):
    clock = Clock(1000.0)
    cache = InventoryCache(tmp_path, "eu-west-1", "vpc-1", "subnet-1", ttl_seconds=100,
                           clock=clock, ttl_jitter_fraction=0.2, rng=lambda lo, hi: hi)
    cache.store(INVENTORY)
    clock.now = 1079.0
    assert cache.load().fresh
    clock.now = 1081.0          # past 80 s: the jittered life (100 x (1 - 0.2))
    assert not cache.load().fresh
