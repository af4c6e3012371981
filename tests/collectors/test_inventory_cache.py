"""The inventory's dict round trip and the on-disk inventory cache."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from s3_route_agent.collectors.inventory_cache import CachedInventory, InventoryCache
from s3_route_agent.collectors.inventory import collect_inventory, inventory_from_dict, inventory_to_dict
from s3_route_agent.devenv.localenv.world import HubIds, WorldIds
from s3_route_agent.engine.model import (
    BlockPublicAccess,
    BlockPublicAccessExclusion,
    Inventory,
    NatGateway,
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    PrefixList,
    Route,
    RouteOrigin,
    RouteTable,
    RouteTargetKind,
    SecurityGroupRule,
    TrafficFilters,
    VpcEndpoint,
)

REGION, VPC, SUBNET = "eu-west-1", "vpc-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60718"


def synthetic_inventory(fetched_at: float = 1000.0, with_policy: bool = True) -> Inventory:
    """An inventory touching every field, every route kind and every origin."""
    routes = tuple(Route(f"10.{n}.0.0/16", f"target-{n}", kind, origin, state)
                   for n, (kind, origin, state) in enumerate(
                       zip(list(RouteTargetKind),
                           (list(RouteOrigin) * 4)[:len(RouteTargetKind)],
                           ["active", "blackhole"] * 8)))
    routes += (Route("pl-0123", "vpce-0123", RouteTargetKind.GATEWAY_ENDPOINT),
               Route("::/0", "eigw-1", RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY))
    return Inventory(
        region=REGION, vpc_id=VPC, subnet_id=SUBNET,
        route_table=RouteTable("rtb-1", VPC, "explicit", routes),
        prefix_lists=(PrefixList("pl-0123", "com.amazonaws.eu-west-1.s3", 7,
                                 ("198.51.100.0/25",)),
                      PrefixList("pl-other", "pl-other", None, ())),
        endpoints=(VpcEndpoint("vpce-0123", "Gateway", "com.amazonaws.eu-west-1.s3", "available",
                               VPC, route_table_ids=("rtb-1",),
                               policy_document='{"Statement": []}' if with_policy else None),
                   VpcEndpoint("vpce-0456", "Interface", "com.amazonaws.eu-west-1.s3",
                               "available", VPC, network_interface_ids=("eni-1",),
                               dns_names=("*.vpce-0456-abcdefgh.s3.eu-west-1.vpce.amazonaws.com",),
                               private_dns_enabled=True,
                               private_dns_only_for_inbound_resolver_endpoint=False,
                               ip_address_type="dualstack", owner_id="123456789012",
                               dns_record_ip_type="dualstack", security_group_ids=("sg-e",),
                               subnet_ids=("subnet-2",)),
                   VpcEndpoint("vpce-0789", "Interface", "com.amazonaws.us-west-2.s3",
                               "available", VPC, service_region="us-west-2")),
        interfaces=(NetworkInterface("eni-1", VPC, "subnet-2", "vpc_endpoint",
                                     "VPC Endpoint Interface vpce-0456",
                                     ("10.0.2.50", "2001:db8::50"), "vpce-0456", ("sg-e",)),
                    NetworkInterface("eni-2", "vpc-other", None, "interface", "", ("10.1.1.1",),
                                     None)),
        nat_gateways=(NatGateway("nat-1", "subnet-3", ("10.0.0.5",), ("203.0.113.200",)),),
        fetched_at=fetched_at, s3_prefix_list_id="pl-0123",
        traffic_filters=TrafficFilters(
            host_security_group_ids=("sg-h",), host_addresses=("10.0.1.10",),
            security_group_rules=(
                SecurityGroupRule("sg-h", "sgr-1", True, "tcp", 443, 443,
                                  prefix_list_id="pl-0123"),
                SecurityGroupRule("sg-e", "sgr-2", False, "-1", -1, -1,
                                  referenced_group_id="sg-h"),
                SecurityGroupRule("sg-h", "sgr-3", True, "tcp", 443, 443, cidr="::/0")),
            described_groups=("sg-h", "sg-e"),
            network_acls=(NetworkAcl("acl-1", VPC, (SUBNET, "subnet-2"), (
                NetworkAclEntry(100, True, "allow", "6", "0.0.0.0/0", 443, 443),
                NetworkAclEntry(110, False, "allow", "6", "0.0.0.0/0", 1024, 65535),
                NetworkAclEntry(32767, False, "deny", "-1", "0.0.0.0/0")), is_default=True),),
            block_public_access=BlockPublicAccess(
                "block-bidirectional", "update-complete", "allowed", "account",
                (BlockPublicAccessExclusion("exclusion-1", "allow-egress", "subnet-3",
                                            "create-complete"),)),
            problems=(("network_acls", "EC2 DescribeNetworkAcls denied"),)),
        remote_endpoints=(VpcEndpoint("vpce-hub", "Interface", "com.amazonaws.eu-west-1.s3",
                                      "available", "vpc-hub"),),
        non_s3_endpoint_ids=("vpce-ec2",))


def make_cache(tmp_path: Path, clock: Any = lambda: 1000.0, ttl: float = 900.0) -> InventoryCache:
    """A cache for the synthetic identity under ``tmp_path/state``."""
    return InventoryCache(tmp_path / "state", REGION, VPC, SUBNET, ttl_seconds=ttl, clock=clock)


# ---------------------------------------------------------------------------------------------
# dict round trip


def test_round_trip_of_every_field() -> None:
    inventory = synthetic_inventory(with_policy=False)
    restored = inventory_from_dict(json.loads(json.dumps(inventory_to_dict(inventory))))
    assert restored == inventory
    assert isinstance(restored.route_table.routes[0].target_kind, RouteTargetKind)
    assert isinstance(restored.route_table.routes[1].origin, RouteOrigin)
    assert isinstance(restored.interfaces, tuple) and isinstance(restored.endpoints[1].dns_names,
                                                                 tuple)


def test_round_trip_restores_policies_when_given() -> None:
    inventory = synthetic_inventory()
    data = json.loads(json.dumps(inventory_to_dict(inventory)))
    assert inventory_from_dict(data).endpoint("vpce-0123").policy_document is None
    assert inventory_from_dict(data, {"vpce-0123": '{"Statement": []}'}) == inventory


def test_round_trip_without_route_table() -> None:
    inventory = Inventory(REGION, VPC, SUBNET, None, (), (), ())
    assert inventory_from_dict(inventory_to_dict(inventory)) == inventory


def test_round_trip_of_a_collected_inventory(world: WorldIds, hub: HubIds, ec2_client: Any) -> None:
    inventory = collect_inventory(ec2_client, world.region, world.vpc_id, world.app_subnet_id,
                                  (hub.interface_endpoint_ip,))
    data = json.loads(json.dumps(inventory_to_dict(inventory)))
    policies = {e.id: e.policy_document for e in inventory.endpoints + inventory.remote_endpoints
                if e.policy_document}
    assert inventory_from_dict(data, policies) == inventory


# ---------------------------------------------------------------------------------------------
# the cache


def test_store_then_load(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, clock=lambda: 1060.0)
    assert cache.load() is None
    inventory = synthetic_inventory()
    assert cache.store(inventory, ["10.1.1.1", "10.9.9.9"]) is True
    cached = cache.load()
    assert isinstance(cached, CachedInventory)
    assert cached.inventory == inventory          # policy documents included
    assert cached.age_seconds == 60.0 and cached.fresh
    assert cached.looked_up_addresses == ("10.1.1.1", "10.9.9.9")
    assert cache.path.name == f"inventory-{REGION}-{VPC}-{SUBNET}.json"


def test_ttl_freshness_follows_the_clock(tmp_path: Path) -> None:
    now = [1000.0]
    cache = make_cache(tmp_path, clock=lambda: now[0], ttl=900)
    cache.store(synthetic_inventory(fetched_at=1000.0))
    now[0] = 1899.0
    assert cache.load().fresh
    now[0] = 1900.0
    cached = cache.load()
    assert not cached.fresh and cached.age_seconds == 900.0
    now[0] = 900.0                                  # clock went back: age unknown, not fresh
    assert not cache.load().fresh


def test_file_and_directory_modes(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    os.umask(old := os.umask(0o022))
    try:
        cache.store(synthetic_inventory())
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.state_dir.stat().st_mode) == 0o700
    assert [p.name for p in cache.state_dir.iterdir()] == [cache.path.name]   # no temp left


def test_rewrite_replaces_the_file(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, clock=lambda: 2000.0)
    cache.store(synthetic_inventory(fetched_at=1000.0))
    cache.store(synthetic_inventory(fetched_at=1990.0))
    assert cache.load().inventory.fetched_at == 1990.0
    assert len(list(cache.state_dir.iterdir())) == 1


@pytest.mark.parametrize("content", [
    b"{not json", b"[]", b'{"format": 2, "inventory": {"region": "eu-west-1"}}',
    b'{"format": 2, "inventory": null}', b"", b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage\xc3\x28",
    bytes(range(256)) * 4,
], ids=["not json", "a list", "no checksum", "null inventory", "empty", "binary", "all bytes"])
def test_corrupt_file_is_set_aside_and_rebuilt(tmp_path: Path, content: bytes,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Binary garbage (and any other damage) never raises: the file is renamed aside, logged
    once, and the next store writes a good one (issue 9 section 3)."""
    cache = make_cache(tmp_path)
    cache.state_dir.mkdir(mode=0o700)
    cache.path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert cache.load() is None
    assert "set aside" in caplog.text and "corrupt" in caplog.text
    aside = cache.state_dir / f"{cache.path.name}.corrupt-1000"
    assert aside.read_bytes() == content and not cache.path.exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cache.load() is None                 # nothing left to complain about
    assert caplog.text == ""
    assert cache.covers(["10.0.2.50"]) is False
    assert cache.store(synthetic_inventory()) and cache.load() is not None


def test_file_of_another_format_is_replaced_not_set_aside(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.state_dir.mkdir(mode=0o700)
    cache.path.write_text('{"format": 1, "inventory": {}}')
    assert cache.load() is None
    assert [p.name for p in cache.state_dir.iterdir()] == [cache.path.name]


def _edit_cache(cache: InventoryCache, old: str, new: str, rechecksum: bool) -> None:
    from s3_route_agent.statefile import with_checksum
    text = cache.path.read_text()
    assert old in text
    document = json.loads(text.replace(old, new))
    if rechecksum:
        document = with_checksum({k: v for k, v in document.items() if k != "sha256"})
    cache.path.write_text(json.dumps(document))


@pytest.mark.parametrize("rechecksum", [False, True], ids=["checksum", "cidr parse"])
def test_a_flipped_cidr_is_never_trusted(tmp_path: Path, rechecksum: bool,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """``/25`` turned into ``/97`` in the cache (issue 9 section 4): the checksum over the content
    catches it; with a checksum made to match, the CIDR parse does. Either way the file is set
    aside and the inventory refetched, never used."""
    cache = make_cache(tmp_path)
    cache.store(synthetic_inventory())
    _edit_cache(cache, '"198.51.100.0/25"', '"198.51.100.0/97"', rechecksum)
    with caplog.at_level(logging.WARNING):
        assert cache.load() is None
    assert ("does not parse" if rechecksum else "checksum mismatch") in caplog.text
    assert not cache.path.exists()


def test_a_changed_route_target_fails_the_checksum(tmp_path: Path) -> None:
    """A change that still parses (a route's target) is caught by the checksum alone."""
    cache = make_cache(tmp_path)
    cache.store(synthetic_inventory())
    _edit_cache(cache, '"vpce-0123"', '"igw-0123"', rechecksum=False)
    assert cache.load() is None


def test_unreadable_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = make_cache(tmp_path)
    cache.path.mkdir(parents=True)                  # a directory where the file should be
    with caplog.at_level(logging.WARNING, logger="s3_route_agent.collectors.inventory_cache"):
        assert cache.load() is None
    assert "ignoring inventory cache" in caplog.text


def test_file_of_another_subnet_is_ignored(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.store(synthetic_inventory())
    other = InventoryCache(cache.state_dir, REGION, VPC, "subnet-other")
    os.replace(cache.path, other.path)
    assert other.load() is None


def test_failed_write_is_reported_not_raised(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    cache = make_cache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="s3_route_agent.collectors.inventory_cache"):
        assert cache.store(synthetic_inventory()) is False
    assert "cannot write inventory cache" in caplog.text


def test_store_refuses_another_identity(tmp_path: Path) -> None:
    cache = InventoryCache(tmp_path, REGION, VPC, "subnet-other")
    with pytest.raises(ValueError):
        cache.store(synthetic_inventory())


def test_an_inventory_without_filters_or_for_other_groups_does_not_cover(
        tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.store(dataclasses.replace(synthetic_inventory(), traffic_filters=None), ["10.9.9.9"])
    assert not cache.covers(["10.9.9.9"])            # written before filters were collected
    cache.store(synthetic_inventory(), ["10.9.9.9"])
    assert cache.covers(["10.9.9.9"], ("sg-h",))
    assert not cache.covers(["10.9.9.9"], ("sg-other",))   # IMDS now names other groups
    assert cache.covers(["10.9.9.9"], ())            # no groups from IMDS: the cached ones stand


def test_covers_looked_up_and_held_addresses(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.store(synthetic_inventory(), ["10.9.9.9"])
    assert cache.covers(["10.9.9.9"])               # looked up, nothing found
    assert cache.covers(["10.0.2.50", "10.1.1.1"])  # held by known ENIs
    assert cache.covers(["2001:db8::77"])           # IPv6 is never looked up
    assert cache.covers([])
    assert not cache.covers(["10.9.9.9", "10.8.8.8"])


def test_warm_run_needs_no_call(world: WorldIds, hub: HubIds, ec2_client: Any,
                                tmp_path: Path) -> None:
    calls: list[str] = []
    ec2_client.meta.events.register("before-call.ec2.*",
                                    lambda model, **_: calls.append(model.name))
    addresses = (hub.interface_endpoint_ip, world.interface_endpoint_ip)
    now = [5000.0]
    cache = InventoryCache(tmp_path, world.region, world.vpc_id, world.app_subnet_id,
                           clock=lambda: now[0])
    inventory = collect_inventory(ec2_client, world.region, world.vpc_id, world.app_subnet_id,
                                  addresses, clock=lambda: now[0])
    cache.store(inventory, addresses)
    cold = len(calls)
    now[0] += 60
    cached = cache.load()
    assert cached.fresh and cache.covers(addresses) and cached.inventory == inventory
    # Route tables, prefix lists and their entries, endpoints, the endpoint ENIs, the address
    # lookup, the hub's endpoint, NAT gateways, security group rules, network ACLs, BPA.
    assert len(calls) == cold == 11
